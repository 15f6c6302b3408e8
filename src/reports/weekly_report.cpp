#include "reports/weekly_report.hpp"

#include <algorithm>

#include "core/discovery.hpp"
#include "core/text_table.hpp"

namespace mailroster::reports {

using namespace std::chrono;

WeeklyReport build_report(store::Store& store, const core::Company& company, core::TimePoint now) {
  const auto settings = store.discovery_settings(company.id);
  WeeklyReport r;
  r.company = company.name;
  r.until = core::TimePoint{floor<days>(now)};
  r.from = r.until - days{7};
  r.week = core::format_day(r.until);
  if (!company.tech_contact.empty()) r.recipients.push_back(company.tech_contact);
  if (settings.report_include_admin && !company.admin_contact.empty() &&
      company.admin_contact != company.tech_contact) {
    r.recipients.push_back(company.admin_contact);
  }
  r.lists_users = settings.report_new_users;
  r.lists_aliases = settings.report_new_aliases;
  if (r.lists_users) {
    const store::UserFilter week{
        .company_id = company.id, .created_from = r.from, .created_before = r.until};
    r.new_users_total = store.count_matching_users(week);
    auto first = week;
    first.limit = WeeklyReport::kListed;
    r.new_users = store.list_users(first);
    r.users_now = static_cast<std::int64_t>(store.count_users(company.id));
    r.users_quiet = static_cast<std::int64_t>(store.count_matching_users(
        {.company_id = company.id, .no_mail_since = r.until - WeeklyReport::kQuietDays}));
    const auto eve = core::format_day(r.from - days{1});
    if (const auto counted = store.license_usage({company.id, eve, eve}); !counted.empty()) {
      r.users_before = counted.back().users;
    }
  }
  if (r.lists_aliases) {
    r.new_aliases_total = store.count_aliases_created(company.id, r.from, r.until);
    for (const auto& a :
         store.aliases_created(company.id, r.from, r.until, WeeklyReport::kListed)) {
      const auto user = store.user_by_id(a.user_id);
      r.new_aliases.emplace_back(a, user ? user->address.str() : "?");
    }
  }
  const auto next_report = r.until + days{7};
  for (const auto& d : store.list_discovered(company.id)) {
    const auto at = core::expires_at(d, settings);
    if (at && *at < next_report) r.expiring.emplace_back(d, *at);
  }
  std::sort(r.expiring.begin(), r.expiring.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  r.expiring_total = r.expiring.size();
  if (r.expiring.size() > WeeklyReport::kListed) r.expiring.resize(WeeklyReport::kListed);
  for (const auto& s : store.directory_syncs(company.id)) {
    r.syncs.push_back({.kind = s.kind,
                       .every_hours = s.frequency_hours,
                       .last_success = s.last_success,
                       .last_attempt = s.last_attempt,
                       .last_error = s.last_error});
  }
  return r;
}

namespace {
void table(std::string& out, const std::vector<std::string>& header,
           const std::vector<std::vector<std::string>>& rows) {
  out += core::format_table(header, rows, {.indent = "  ", .rule = true});
}

}  // namespace

nlohmann::json preview_json(const WeeklyReport& r) {
  return {{"company", r.company}, {"week", r.week}, {"to", r.recipients}, {"text", render_text(r)}};
}

core::TimePoint next_report_day(core::TimePoint now) {
  auto day = std::chrono::floor<std::chrono::days>(now);
  while (std::chrono::weekday{day} != std::chrono::Thursday) day += std::chrono::days{1};
  return core::TimePoint{day};
}

std::string render_text(const WeeklyReport& r) {
  std::string out = "SMTP Discovery weekly report for " + r.company + "\n";
  out += "Week " + core::format_day(r.from) + " to " + core::format_day(r.until - seconds{1}) +
         " (UTC)\n\n";
  // A section: its title with the total, its table (or "none"), and what was left out.
  auto section = [&](const std::string& title, std::size_t total,
                     const std::vector<std::string>& header,
                     const std::vector<std::vector<std::string>>& rows, const char* where) {
    out += title + " (" + std::to_string(total) + ")\n";
    if (rows.empty()) {
      out += "  none\n";
    } else {
      table(out, header, rows);
    }
    if (total > rows.size()) {
      out += "  ... and " + std::to_string(total - rows.size()) + " more, not listed here (" +
             where + ")\n";
    }
  };
  if (r.lists_users) {
    out +=
        "Licensed users: " + std::to_string(r.users_now) + " now" +
        (r.users_before ? " (" + std::to_string(*r.users_before) + " when the week began)" : "") +
        "\n";
    if (r.users_quiet) {
      out += "  of which " + std::to_string(r.users_quiet) + " had no mail for " +
             std::to_string(WeeklyReport::kQuietDays.count()) +
             " days (the Users page finds them: no mail for " +
             std::to_string(WeeklyReport::kQuietDays.count()) + " days)\n";
    }
    out += "\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& u : r.new_users) {
      rows.push_back({u.address.str(), u.first_name, u.surname,
                      std::string(core::role_name(u.role)),
                      std::string(core::source_name(u.source)), core::format_day(u.created_at)});
    }
    section("New users", r.new_users_total,
            {"Address", "First name", "Surname", "Role", "Source", "Created"}, rows,
            "the Users page lists them all");
    out += "\n";
  }
  if (r.lists_aliases) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& [a, user] : r.new_aliases) {
      rows.push_back({a.address.str(), user, core::format_day(a.created_at)});
    }
    section("New aliases", r.new_aliases_total, {"Alias", "User", "Created"}, rows,
            "each user's aliases are on its page");
    out += "\n";
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& [d, at] : r.expiring) {
    rows.push_back({d.address.str(), core::format_day(*d.discovered_at), core::format_day(at)});
  }
  section("Discovered addresses expiring before the next report", r.expiring_total,
          {"Address", "Discovered", "Expires"}, rows, "the SMTP Discovery page lists them all");
  if (!rows.empty()) {
    out +=
        "\nUnless an administrator creates a user, a functional account or an alias for them,\n"
        "these addresses then expire as the SMTP Discovery settings say.\n";
  }
  if (!r.syncs.empty()) {
    out += "\nDirectory sync\n";
    auto when = [](const std::optional<core::TimePoint>& t) {
      return t ? core::format_iso8601(*t) : std::string("never");
    };
    for (const auto& s : r.syncs) {
      out += std::string("  ") +
             (s.kind == core::Source::azure ? "Azure AD" : "Active Directory (LDAP)") + ", " +
             (s.every_hours ? "every " + std::to_string(*s.every_hours) + " hours" : "by hand") +
             ": last success " + when(s.last_success) + "\n";
      if (!s.last_error.empty()) {
        out += "    FAILING: the last attempt (" + when(s.last_attempt) +
               ") failed: " + s.last_error + "\n" +
               "    Nothing was changed; the users follow the directory again once it works.\n";
      }
    }
  }
  return out;
}

std::string quoted_printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  std::size_t column = 0;
  auto put = [&](std::string_view piece) {
    if (column + piece.size() > 75) {  // soft line break: "=" ends a line of at most 76
      out += "=\r\n";
      column = 0;
    }
    out += piece;
    column += piece.size();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\r\n";
      column = 0;
      continue;
    }
    const bool at_line_end = i + 1 == text.size() || text[i + 1] == '\n';
    const bool literal =
        (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_line_end);
    if (literal) {
      put(std::string_view(reinterpret_cast<const char*>(&text[i]), 1));
    } else {
      const char enc[3] = {'=', kHex[c >> 4], kHex[c & 15]};
      put(std::string_view(enc, 3));
    }
  }
  if (!out.empty() && column != 0) out += "\r\n";
  return out;
}

std::string to_mime(const WeeklyReport& r, const std::string& from, const std::string& hostname,
                    core::TimePoint now) {
  std::string to;
  for (const auto& rcpt : r.recipients) to += (to.empty() ? "" : ", ") + rcpt;
  std::string m;
  m += "From: mailroster <" + from + ">\r\n";
  m += "To: " + to + "\r\n";
  m += "Subject: SMTP Discovery weekly report for " + r.company + " (" + r.week + ")\r\n";
  m += "Date: " + core::format_rfc5322(now) + "\r\n";
  m += "Message-ID: <report." + r.company + "." + r.week + "@" + hostname + ">\r\n";
  m += "Auto-Submitted: auto-generated\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=UTF-8\r\n";
  m += "Content-Transfer-Encoding: quoted-printable\r\n";
  m += "\r\n";
  m += quoted_printable(render_text(r));
  return m;
}

}  // namespace mailroster::reports
