#include "reports/maintenance.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

#include "core/address.hpp"
#include "core/discovery.hpp"
#include "reports/weekly_report.hpp"

namespace mailroster::reports {

using boost::asio::awaitable;

Maintenance::Maintenance(store::Store& store, lifecycle::DiscoveryService& discovery,
                         smtp::ClientPool& pool, MaintenanceSettings settings,
                         boost::asio::any_io_executor store_work)
    : store_(store),
      discovery_(discovery),
      pool_(pool),
      settings_(std::move(settings)),
      store_work_(std::move(store_work)) {}

template <class F>
awaitable<std::invoke_result_t<F>> Maintenance::on_store(F f) {
  co_return co_await boost::asio::co_spawn(
      store_work_, [&]() -> awaitable<std::invoke_result_t<F>> { co_return f(); },
      boost::asio::use_awaitable);
}

awaitable<std::string> submit(smtp::ClientPool& pool, core::Destination relay,
                              const std::string& from, const std::vector<std::string>& recipients,
                              const std::string& message) {
  auto lease = co_await pool.acquire(relay);
  if (!lease.connection) co_return "relay " + relay.str() + ": " + lease.result.describe();
  auto& conn = *lease.connection;
  // A non-ASCII address or header needs SMTPUTF8 (RFC 6531; never downgraded here), 8-bit
  // text 8BITMIME where the relay offers it.
  const bool utf8 = smtp::needs_smtputf8(from, recipients, message);
  std::string mail = "MAIL FROM:<" + from + ">";
  if (utf8) {
    if (!conn.offers("SMTPUTF8")) {
      const auto server = conn.destination().str();
      co_await pool.release(std::move(lease.connection));
      co_return "relay " + server + " does not support SMTPUTF8, which this message needs";
    }
    mail += " SMTPUTF8";
  }
  if (!core::is_ascii(message) && conn.offers("8BITMIME")) mail += " BODY=8BITMIME";
  auto r = co_await conn.command(mail);
  if (!r.positive()) co_return "MAIL FROM: " + r.describe();
  std::size_t accepted = 0;
  for (const auto& rcpt : recipients) {
    auto rr = co_await conn.command("RCPT TO:<" + rcpt + ">");
    if (rr.positive()) {
      ++accepted;
    } else {
      spdlog::warn("relay {} refused {}: {}", relay.str(), rcpt, rr.describe());
    }
  }
  if (accepted == 0) co_return "relay accepted no recipient";
  auto d = co_await conn.data(message);
  if (!d.positive()) co_return "DATA: " + d.describe();
  co_await pool.release(std::move(lease.connection));
  co_return std::string();
}

awaitable<MaintenanceResult> Maintenance::run(core::TimePoint now) {
  MaintenanceResult result;
  if (may_run_ && !co_await on_store([&] { return may_run_(); })) {
    result.skipped = true;
    co_return result;
  }
  result.expiry = co_await on_store([&] { return discovery_.expire(now); });
  if (settings_.audit_retention) {
    const auto before = now - *settings_.audit_retention;
    result.audit_pruned = co_await on_store([&] { return store_.prune_audit(before); });
    if (result.audit_pruned) {
      spdlog::info("audit trail: {} event(s) from before {} removed (retention)",
                   result.audit_pruned, core::format_iso8601(before));
    }
  }
  {
    const auto before = now - settings_.mail_log_retention;
    result.mail_log_pruned = co_await on_store([&] { return store_.prune_mail_log(before); });
    if (result.mail_log_pruned) {
      spdlog::info("mail log: {} entr{} from before {} removed (retention)", result.mail_log_pruned,
                   result.mail_log_pruned == 1 ? "y" : "ies", core::format_iso8601(before));
    }
  }
  // After expiry, which may have made users: the day's count includes them.
  result.usage = co_await on_store([&] { return store_.record_license_usage(now); });
  const auto week = core::report_week(now);
  if (!week) co_return result;

  for (const auto& company : co_await on_store([&] { return store_.list_companies(); })) {
    // The report due for this company, if one is (nullopt: none, or already sent).
    auto due = co_await on_store([&]() -> std::optional<WeeklyReport> {
      const auto settings = store_.discovery_settings(company.id);
      if (!settings.report_new_users && !settings.report_new_aliases) return std::nullopt;
      if (store_.report_sent(company.id, *week)) return std::nullopt;
      auto report = build_report(store_, company, now);
      if (!report.recipients.empty() && report.empty()) {
        store_.mark_report_sent(company.id, *week, "");  // nothing to tell this week
        return std::nullopt;
      }
      return report;
    });
    if (!due) continue;
    const auto& report = *due;
    if (report.recipients.empty()) {
      result.reports_failed.push_back(company.name + ": no tech contact");
      continue;
    }
    std::string to;
    for (const auto& r : report.recipients) to += (to.empty() ? "" : ",") + r;
    const auto error = co_await submit(pool_, settings_.relay, settings_.from, report.recipients,
                                       to_mime(report, settings_.from, settings_.hostname, now));
    if (!error.empty()) {
      spdlog::error("report for {} ({}) not sent, will retry: {}", company.name, *week, error);
      result.reports_failed.push_back(company.name + ": " + error);
      continue;
    }
    co_await on_store([&] {
      store_.atomically([&] {
        store_.mark_report_sent(company.id, *week, to);
        for (auto [d, at] : report.expiring) {
          ++d.notifications_sent;
          store_.save_discovered(d, core::Actor{"report"});
        }
      });
    });
    spdlog::info("report for {} ({}) sent to {}", company.name, *week, to);
    result.reports_sent.push_back(company.name);
  }
  co_return result;
}

}  // namespace mailroster::reports
