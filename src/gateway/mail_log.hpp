// The mail log's writer. The gateways hand it an entry (core::MailLogEntry) for each recipient
// they decide: every RCPT refused, and each message's outcome per recipient. serve writes what
// waits every second, as one statement, on a queue off the SMTP path, so a slow database never
// slows mail. While the database cannot take them, entries wait (at most max_pending: past
// that the oldest are dropped, and counted), and go with the next write that succeeds.
// Entries of no company (company 0: relay denied) are kept at most max_unrouted a minute (by
// their time), the rest counted: a client that takes the gateway for an open relay cannot
// fill the database through it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "core/network.hpp"
#include "smtp/protocol.hpp"

namespace mailroster::smtp {
struct SessionInfo;
struct Transaction;
}  // namespace mailroster::smtp

namespace mailroster::gateway {

class MailLog {
 public:
  explicit MailLog(std::size_t max_pending = 100'000, std::size_t max_unrouted = 1'000)
      : max_pending_(max_pending), max_unrouted_(max_unrouted) {}

  // Off: record() keeps nothing ([mail_log] enabled; a reload may change it).
  void set_enabled(bool on) { enabled_ = on; }
  bool enabled() const { return enabled_; }

  // Keeps an entry to write; its texts made printable (control characters as spaces; not UTF-8:
  // its non-ASCII bytes as '?'), so that every reader and JSON can show them.
  void record(core::MailLogEntry entry);
  // Hands what waits to `write` as one batch (serve: Store::add_mail_log); how many entries it
  // took. When it throws, the entries wait for the next call and the exception goes on.
  using Writer = std::function<void(const std::vector<core::MailLogEntry>&)>;
  std::size_t flush(const Writer& write);

  std::size_t pending() const;
  std::uint64_t written() const { return written_; }
  std::uint64_t dropped() const { return dropped_; }
  std::uint64_t unrouted_dropped() const { return unrouted_dropped_; }

 private:
  void keep_within_bound();  // with mutex_ held
  const std::size_t max_pending_;
  const std::size_t max_unrouted_;
  std::atomic<bool> enabled_{true};
  mutable std::mutex mutex_;
  std::deque<core::MailLogEntry> pending_;
  core::TimePoint unrouted_minute_{};  // the start of the minute being counted
  std::size_t unrouted_in_minute_ = 0;
  std::atomic<std::uint64_t> unrouted_dropped_{0};
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

// An entry of the session and transaction, decided at `stage` with `reply` (its result:
// delivered, deferred or rejected by the reply's code).
core::MailLogEntry mail_log_entry(std::string direction, std::string stage,
                                  const smtp::SessionInfo& session, const smtp::Transaction& tx,
                                  core::TimePoint at, const smtp::Reply& reply);

// A message's outcome (stage "data"), the entry each of its recipients' is copied from: also
// its id, its result (the reply's when empty; "spam" is the gateway's word), its size and the
// destination's server that answered, if one did.
core::MailLogEntry message_entry(std::string direction, const smtp::SessionInfo& session,
                                 const smtp::Transaction& tx, core::TimePoint at,
                                 const smtp::Reply& reply, std::string queue_id, std::string result,
                                 std::size_t size, const std::optional<core::Endpoint>& server);

}  // namespace mailroster::gateway
