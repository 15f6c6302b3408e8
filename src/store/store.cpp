#include "store/store.hpp"

#include <algorithm>
#include <chrono>
#include <tuple>
#include <utility>

#include "core/error.hpp"

namespace mailroster::store {

std::string_view to_string(LoginRole r) {
  switch (r) {
    case LoginRole::operator_role:
      return "operator";
    case LoginRole::company_admin:
      return "company_admin";
    case LoginRole::end_user:
      return "end_user";
  }
  return "?";
}

std::set<std::string> domain_names(Store& store, Id company_id) {
  std::set<std::string> out;
  for (const auto& d : store.list_domains(company_id)) out.insert(d.name);
  return out;
}

void for_each_user_page(Store& store, UserFilter filter, std::size_t page_size,
                        const std::function<void(const std::vector<core::User>&)>& page) {
  std::size_t left = filter.limit;  // 0: no limit
  filter.offset = 0;
  for (;;) {
    filter.limit = left == 0 ? page_size : std::min(left, page_size);
    const auto users = store.list_users(filter);
    if (users.empty()) return;
    page(users);
    if (left != 0 && (left -= users.size()) == 0) return;
    if (users.size() < filter.limit) return;
    filter.after = UserFilter::Key{users.back().company_id, users.back().address.key()};
  }
}

MailLogFilter mail_log_filter(const std::map<std::string, std::string>& params,
                              core::TimePoint now) {
  const auto param = [&](const std::string& name) {
    const auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  };
  MailLogFilter f;
  f.address = param("address");
  f.id = param("id");
  for (auto [name, allowed, out] : {std::tuple{"result", &kMailLogResults, &f.result},
                                    std::tuple{"direction", &kMailLogDirections, &f.direction}}) {
    *out = param(name);
    if (out->empty() || std::find(allowed->begin(), allowed->end(), *out) != allowed->end()) {
      continue;
    }
    std::string list;
    for (const auto& a : *allowed) list += (list.empty() ? "" : ", ") + a;
    throw core::Failure(core::ErrorCode::invalid_argument,
                        std::string(name) + " must be one of " + list, name);
  }
  for (auto [name, out] : {std::pair{"since", &f.since}, std::pair{"before", &f.before}}) {
    const auto text = param(name);
    if (text.empty()) continue;
    *out = core::parse_moment(text, now);
    if (!*out) {
      throw core::Failure(core::ErrorCode::invalid_argument,
                          std::string(name) + " '" + text +
                              "' is neither an ISO-8601 time nor a duration such as 2h",
                          name);
    }
  }
  return f;
}

namespace {

// A day written YYYY-MM-DD, a real one; nullopt otherwise.
std::optional<core::TimePoint> parse_day(const std::string& text) {
  const auto t = text.size() == 10 ? core::parse_iso8601(text) : std::nullopt;
  if (!t || core::format_day(*t) != text) return std::nullopt;
  return t;
}

// The first and the last day of the month `day` is in.
std::pair<std::string, std::string> month_of(core::TimePoint day) {
  using namespace std::chrono;
  const year_month_day ymd{floor<days>(day)};
  return {core::format_day(sys_days{ymd.year() / ymd.month() / 1}),
          core::format_day(sys_days{ymd.year() / ymd.month() / last})};
}

}  // namespace

UsageFilter usage_filter(const std::map<std::string, std::string>& params, core::TimePoint now) {
  const auto param = [&](const std::string& name) {
    const auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  };
  const auto bad = [](const std::string& name, const std::string& why) {
    return core::Failure(core::ErrorCode::invalid_argument, name + " " + why, name);
  };
  const auto month = param("month");
  auto from = param("from");
  auto to = param("to");
  UsageFilter f;
  if (!month.empty()) {
    if (!from.empty() || !to.empty()) throw bad("month", "cannot be given with from or to");
    const auto first = parse_day(month + "-01");
    if (month.size() != 7 || !first) throw bad("month", "'" + month + "' is not a month: YYYY-MM");
    std::tie(f.from, f.to) = month_of(*first);
    return f;
  }
  if (from.empty() && to.empty()) {
    std::tie(f.from, f.to) = month_of(now);
    return f;
  }
  for (auto [name, text] : {std::pair{"from", &from}, std::pair{"to", &to}}) {
    if (!text->empty() && !parse_day(*text)) {
      throw bad(name, "'" + *text + "' is not a day: YYYY-MM-DD");
    }
  }
  f.from = from.empty() ? month_of(*parse_day(to)).first : from;
  f.to = to.empty() ? core::format_day(now) : to;
  if (f.to < f.from) throw bad("to", "'" + f.to + "' is before from '" + f.from + "'");
  return f;
}

std::vector<CompanyUsage> summarize_usage(std::vector<core::LicenseUsage> rows) {
  std::vector<CompanyUsage> out;
  for (auto& row : rows) {
    if (out.empty() || out.back().company_id != row.company_id) {
      out.push_back({.company_id = row.company_id});
    }
    auto& c = out.back();
    c.peak_users = std::max(c.peak_users, row.peak_users);
    c.days.push_back(std::move(row));
  }
  for (auto& c : out) {
    double sum = 0;
    for (const auto& d : c.days) sum += static_cast<double>(d.peak_users);
    c.average_users = sum / static_cast<double>(c.days.size());
    c.last = c.days.back();
    c.company = c.last.company;
  }
  std::sort(out.begin(), out.end(), [](const CompanyUsage& a, const CompanyUsage& b) {
    return std::tie(a.company, a.company_id) < std::tie(b.company, b.company_id);
  });
  return out;
}

std::optional<LoginRole> parse_login_role(std::string_view t) {
  if (t == "operator") return LoginRole::operator_role;
  if (t == "company_admin") return LoginRole::company_admin;
  if (t == "end_user") return LoginRole::end_user;
  return std::nullopt;
}

}  // namespace mailroster::store
