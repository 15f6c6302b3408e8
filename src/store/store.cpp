#include "store/store.hpp"

#include <algorithm>

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

std::optional<LoginRole> parse_login_role(std::string_view t) {
  if (t == "operator") return LoginRole::operator_role;
  if (t == "company_admin") return LoginRole::company_admin;
  if (t == "end_user") return LoginRole::end_user;
  return std::nullopt;
}

}  // namespace mailroster::store
