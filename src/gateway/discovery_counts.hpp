// SMTP Discovery's counts of clean mail, from both gateways: each delivery to an address that
// is not a user's, each message a non-user sends out. They wait here (add, on the I/O thread)
// and are written in batches (flush, on serve's queue of store writes): everything that came
// while the last batch was written goes in one transaction
// (lifecycle::DiscoveryService::record_clean). A transaction per count kept PostgreSQL at about
// 400 counts a second, below what the gateway delivers: the queue grew for as long as the mail
// came. Counts the database cannot take now (busy with another write, its disk full, gone:
// lifecycle::Counted::again) wait here too, at most max_waiting (past that the oldest are
// dropped, and counted), and are tried again when serve's timer sees retry_due(): a full disk
// lost every count of the mail it delivered.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "admin/metrics.hpp"
#include "gateway/failing_writes.hpp"
#include "lifecycle/discovery_service.hpp"

namespace mailroster::gateway {

class DiscoveryCounts {
 public:
  using Writer =
      std::function<std::vector<lifecycle::Counted>(const std::vector<lifecycle::CleanMail>&)>;
  // batch: at most this many counts in one transaction (the store's write waits meanwhile).
  DiscoveryCounts(Writer write, admin::Metrics& metrics, std::size_t batch = 1000,
                  std::size_t max_waiting = 100'000);

  // Adds one. True when nothing else was waiting: the caller then has flush() run (one
  // already asked for writes what comes before it starts).
  bool add(lifecycle::CleanMail mail);
  // Writes what waits when it starts, `batch` at a time; logs what each count did. What comes
  // meanwhile is another flush's, asked for by its first add: behind whatever else the
  // caller's queue had meanwhile (one flush writing until nothing waited kept the mail log's
  // writes, on the same queue, waiting for as long as the mail came).
  void flush();
  // Added and not yet written: waiting, or in the batch being written.
  std::size_t pending() const;
  // Counts wait that the last flush could not write, and no flush has started since: the
  // caller has flush() run (add() does not ask while they wait).
  bool retry_due() const;
  // Failing while the last flush kept counts to try again.
  const FailingWrites& writes() const { return writes_; }

 private:
  void report(const std::vector<lifecycle::CleanMail>& mails,
              const std::vector<lifecycle::Counted>& counted);
  // Puts the counts to try again before what came meanwhile, within max_waiting.
  void keep(std::vector<lifecycle::CleanMail> again, const std::string& why);
  Writer write_;
  admin::Metrics& metrics_;
  std::size_t batch_;
  std::size_t max_waiting_;
  mutable std::mutex mutex_;
  std::vector<lifecycle::CleanMail> waiting_;
  std::size_t writing_ = 0;
  bool retry_due_ = false;
  FailingWrites writes_{"discovery counts", "they wait"};
};

}  // namespace mailroster::gateway
