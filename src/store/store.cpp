#include "store/store.hpp"

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

std::optional<LoginRole> parse_login_role(std::string_view t) {
  if (t == "operator") return LoginRole::operator_role;
  if (t == "company_admin") return LoginRole::company_admin;
  if (t == "end_user") return LoginRole::end_user;
  return std::nullopt;
}

}  // namespace mailroster::store
