#include "store/store.hpp"

#include <algorithm>
#include <tuple>

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

std::optional<LoginRole> parse_login_role(std::string_view t) {
  if (t == "operator") return LoginRole::operator_role;
  if (t == "company_admin") return LoginRole::company_admin;
  if (t == "end_user") return LoginRole::end_user;
  return std::nullopt;
}

}  // namespace mailroster::store
