// The weekly SMTP Discovery report (seed: "Reports are sent out on Thursdays"): per company
// whose report settings are on, one email to the tech contact (and the admin contact when
// "include admin contact" is on) listing the users and aliases created in the previous
// 7 days and the discovered addresses that will expire before the next report.
// The week runs from the previous Thursday 00:00 UTC to this Thursday 00:00 UTC, so
// consecutive reports neither overlap nor leave gaps, whenever on Thursday they are sent.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "store/store.hpp"

namespace mailroster::reports {

struct WeeklyReport {
  std::string company;
  std::string week;  // the Thursday, "2026-11-26"
  core::TimePoint from{};
  core::TimePoint until{};
  std::vector<std::string> recipients;
  bool lists_users = false;
  bool lists_aliases = false;
  // Each list holds its first kListed lines (a first sync or import may create a whole
  // directory in one week: the mail would be too large to send); the totals count them all.
  static constexpr std::size_t kListed = 1000;
  std::vector<core::User> new_users;
  std::size_t new_users_total = 0;
  std::vector<std::pair<core::Alias, std::string>> new_aliases;  // alias, its user's address
  std::size_t new_aliases_total = 0;
  std::vector<std::pair<core::DiscoveredAddress, core::TimePoint>> expiring;  // and when
  std::size_t expiring_total = 0;
  // With the new users: the licensed users now, and the day's last count before the week
  // began (Store::license_usage), when there was one.
  std::int64_t users_now = 0;
  std::optional<std::int64_t> users_before;
  // Of the licensed users, those with no clean mail for kQuietDays when the week ended (a user
  // that never had any: since it was created): paid for, but perhaps gone.
  static constexpr std::chrono::days kQuietDays{90};
  std::int64_t users_quiet = 0;

  // The company's directory syncs with their schedules and last outcomes. One whose last
  // attempt failed is worth a report even in a week with nothing else to tell: until someone
  // mends it, the company's users no longer follow its directory.
  struct Sync {
    core::Source kind = core::Source::ldap;
    std::optional<int> every_hours;  // nullopt: run by hand
    std::optional<core::TimePoint> last_success;
    std::optional<core::TimePoint> last_attempt;
    std::string last_error;  // of the last attempt; empty when it succeeded
  };
  std::vector<Sync> syncs;
  bool syncs_failing() const {
    return std::any_of(syncs.begin(), syncs.end(),
                       [](const Sync& s) { return !s.last_error.empty(); });
  }

  // Nothing to tell: no section has a line, and no sync is failing.
  bool empty() const {
    return !new_users_total && !new_aliases_total && !expiring_total && !syncs_failing();
  }
};

// The report of the week containing `now` (which should be a Thursday; the week is the one
// ending at that day's midnight). Reads only.
WeeklyReport build_report(store::Store& store, const core::Company& company, core::TimePoint now);

// The day of the next report at or after `now`: that Thursday, 00:00 UTC (today, on a
// Thursday). What a preview shows.
core::TimePoint next_report_day(core::TimePoint now);

// The body: plain-text tables, one section per list; a list cut at kListed says how many more
// there are and where to see them.
std::string render_text(const WeeklyReport& report);

// A preview of the report, as the CLI (--json) and the API show it: company, week, to, text.
nlohmann::json preview_json(const WeeklyReport& report);

// The whole message (RFC 5322 + MIME, UTF-8, quoted-printable), ready for DATA.
std::string to_mime(const WeeklyReport& report, const std::string& from,
                    const std::string& hostname, core::TimePoint now);

// RFC 2045 6.7 quoted-printable, CRLF line breaks, lines of at most 76 characters.
std::string quoted_printable(std::string_view text);

}  // namespace mailroster::reports
