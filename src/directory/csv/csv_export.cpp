#include "directory/csv/csv_export.hpp"

#include <unordered_map>

namespace mailroster::directory::csv {

bool formula_guard(std::string_view value) {
  const auto first = value.find_first_not_of('\'');
  if (first == std::string_view::npos) return false;
  switch (value[first]) {
    case '=':
    case '+':
    case '-':
    case '@':
    case '\t':
    case '\r':
      return true;
    default:
      return false;
  }
}

std::string_view unguard(std::string_view field) {
  if (!field.empty() && field.front() == '\'' && formula_guard(field)) field.remove_prefix(1);
  return field;
}

std::string csv_field(std::string_view value) {
  std::string text;
  if (formula_guard(value)) text.push_back('\'');
  text.append(value);
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"') quoted.push_back('"');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

std::string user_csv_header() { return "email,first_name,surname,role,type,aliases\r\n"; }

std::string user_csv_row(const core::User& user, const std::vector<core::Address>& aliases) {
  const bool functional = user.role == core::Role::functional;
  std::string joined;
  for (const auto& a : aliases) {
    if (!joined.empty()) joined.push_back(';');
    joined += a.str();
  }
  std::string row = csv_field(user.address.str());
  for (const std::string_view field :
       {std::string_view(user.first_name), std::string_view(user.surname),
        functional ? std::string_view() : core::to_string(user.role),
        std::string_view(functional ? "functional" : "user"), std::string_view(joined)}) {
    row.push_back(',');
    row += csv_field(field);
  }
  return row + "\r\n";
}

std::size_t export_users(store::Store& store, core::Id company_id, std::ostream& out, bool bom) {
  store::UserFilter filter;
  filter.company_id = company_id;
  if (bom) out << "\xEF\xBB\xBF";
  out << user_csv_header();
  std::size_t rows = 0;
  const std::vector<core::Address> none;
  // A page of users and their aliases at a time: a million users' export holds one page.
  store::for_each_user_page(store, filter, 10'000, [&](const std::vector<core::User>& users) {
    std::vector<core::Id> ids;
    ids.reserve(users.size());
    for (const auto& u : users) ids.push_back(u.id);
    std::unordered_map<core::Id, std::vector<core::Address>> aliases;
    for (auto& a : store.aliases_of(ids)) aliases[a.user_id].push_back(std::move(a.address));
    for (const auto& u : users) {
      const auto it = aliases.find(u.id);
      out << user_csv_row(u, it == aliases.end() ? none : it->second);
    }
    rows += users.size();
  });
  return rows;
}

}  // namespace mailroster::directory::csv
