// Which users have mail (Store::record_mail: "last mail" on the Users page, and the users with
// none for months, who are licensed all the same). The gateways say so for each clean message
// delivered to a user or one of its aliases, and each one a user sends out (seen, on the I/O
// thread); serve hands what waits to the store every second, off the SMTP path, as the mail
// log's entries. A user is passed on at most once an hour: "last mail" is to the hour, and a
// busy mailbox costs one write an hour, not one a message. While the database cannot take
// them, the users wait for the next write.
#pragma once

#include <absl/container/flat_hash_set.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "core/clock.hpp"
#include "core/model.hpp"

namespace mailroster::gateway {

class MailActivity {
 public:
  explicit MailActivity(const core::Clock& clock) : clock_(clock) {}

  // This user had mail just now.
  void seen(core::Id user);
  // Hands the users seen since the last flush, and now, to `write`; how many it took. When it
  // throws, they wait for the next call and the exception goes on.
  using Writer = std::function<void(const std::vector<core::Id>&, core::TimePoint)>;
  std::size_t flush(const Writer& write);
  std::size_t pending() const;

 private:
  const core::Clock& clock_;
  mutable std::mutex mutex_;
  std::int64_t hour_ = -1;                   // of the users in this_hour_
  absl::flat_hash_set<core::Id> this_hour_;  // passed on (or waiting) this hour
  std::vector<core::Id> pending_;
};

}  // namespace mailroster::gateway
