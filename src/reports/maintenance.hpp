// The maintenance job: expiry of discovered addresses, the day's count of licensed users, then
// on Thursdays the weekly reports.
// `serve` runs it every `interval`; `mailroster maintain --at TIME` runs it once for a given
// instant. A report is recorded as sent only after the relay said 250, so a failed send is
// retried on the next run, and a sent one is never sent again, across restarts too.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/network.hpp"
#include "lifecycle/discovery_service.hpp"
#include "smtp/client.hpp"
#include "store/store.hpp"

namespace mailroster::reports {

// The shortest audit retention a configuration or `audit prune` may ask for: a day, so that a
// slip of the unit ("400s") cannot empty the trail.
inline constexpr std::chrono::hours kMinAuditRetention{24};
// The shortest mail log retention: an hour.
inline constexpr std::chrono::hours kMinMailLogRetention{1};

struct MaintenanceSettings {
  core::Destination relay{core::Endpoint{"127.0.0.1", 25}};  // where reports are submitted
  std::string from = "mailroster@localhost";
  std::string hostname = "localhost";
  std::chrono::seconds interval{600};
  // Audit events older than this are removed on each run ([audit] retention); nullopt: kept.
  std::optional<std::chrono::seconds> audit_retention;
  // Mail log entries older than this are removed on each run ([mail_log] retention).
  std::chrono::seconds mail_log_retention{std::chrono::hours(24 * 7)};
};

struct MaintenanceResult {
  bool skipped = false;  // another node holds the scheduler lease
  lifecycle::ExpiryRun expiry;
  std::vector<std::string> reports_sent;    // company names
  std::vector<std::string> reports_failed;  // "company: reason"
  std::size_t audit_pruned = 0;             // events past the audit retention, removed
  std::size_t mail_log_pruned = 0;          // mail log entries past their retention, removed
  std::vector<core::LicenseUsage> usage;    // each company's licensed users, counted now
};

// Submits one message through the relay at `relay`, from `from` (the weekly reports, serve's
// and the CLI's password mails); an empty string on success (the relay said 250 to the data
// for at least one recipient), else why it failed. The relay is a copy: a reload may change
// the settings it came from while the submission waits.
boost::asio::awaitable<std::string> submit(smtp::ClientPool& pool, core::Destination relay,
                                           const std::string& from,
                                           const std::vector<std::string>& recipients,
                                           const std::string& message);

class Maintenance {
 public:
  // store_work: where the store is called (serve: a thread of its own, so that the I/O thread
  // the relay client shares with SMTP never waits while an import or a sync holds the store);
  // the run itself, and the relay client, stay on the coroutine's executor.
  Maintenance(store::Store& store, lifecycle::DiscoveryService& discovery, smtp::ClientPool& pool,
              MaintenanceSettings settings, boost::asio::any_io_executor store_work);
  // Runs only when may_run(), asked on the store executor, says so (serve: while this node
  // holds the scheduler lease, Store::hold_lease).
  void only_while(std::function<bool()> may_run) { may_run_ = std::move(may_run); }
  // A reload (SIGHUP): where the next reports are submitted.
  void set_relay(core::Destination relay) { settings_.relay = std::move(relay); }
  // A reload: how long the mail log is kept, from the next run on.
  void set_mail_log_retention(std::chrono::seconds retention) {
    settings_.mail_log_retention = retention;
  }
  boost::asio::awaitable<MaintenanceResult> run(core::TimePoint now);

 private:
  // f() on the store_work executor; the caller resumes where it was.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F>> on_store(F f);
  store::Store& store_;
  lifecycle::DiscoveryService& discovery_;
  smtp::ClientPool& pool_;
  MaintenanceSettings settings_;
  boost::asio::any_io_executor store_work_;
  std::function<bool()> may_run_;
};

}  // namespace mailroster::reports
