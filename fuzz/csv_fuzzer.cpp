// libFuzzer target: the CSV reader and the user CSV mapping take any bytes without crashing,
// and every row they accept, written out again by the export, reads back as the same entry
// (export then import changes nothing).
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "directory/csv/csv_export.hpp"
#include "directory/csv/csv_import.hpp"

namespace csv = mailroster::directory::csv;
using mailroster::core::Role;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  auto read = csv::read_user_csv(in, {"acme.example"});
  if (!read) return 0;

  std::string file = csv::user_csv_header();
  for (const auto& e : read->snapshot.entries) {
    mailroster::core::User u;
    u.address = e.address;
    u.first_name = e.first_name;
    u.surname = e.surname;
    u.role = e.functional ? Role::functional : e.role.value_or(Role::end_user);
    file += csv::user_csv_row(u, e.aliases.value_or(std::vector<mailroster::core::Address>{}));
  }
  std::istringstream again_in(file);
  auto again = csv::read_user_csv(again_in, {"acme.example"});
  if (!again || !again->errors.empty() ||
      again->snapshot.entries.size() != read->snapshot.entries.size()) {
    std::abort();
  }
  for (std::size_t i = 0; i < again->snapshot.entries.size(); ++i) {
    const auto& a = read->snapshot.entries[i];
    const auto& b = again->snapshot.entries[i];
    const auto aliases_a = a.aliases.value_or(std::vector<mailroster::core::Address>{});
    const auto aliases_b = b.aliases.value_or(std::vector<mailroster::core::Address>{});
    bool same_aliases = aliases_a.size() == aliases_b.size();
    for (std::size_t k = 0; same_aliases && k < aliases_a.size(); ++k) {
      same_aliases = aliases_a[k].str() == aliases_b[k].str();
    }
    if (a.address.str() != b.address.str() || a.first_name != b.first_name ||
        a.surname != b.surname || a.functional != b.functional ||
        (!a.functional && a.role.value_or(Role::end_user) != b.role) || !same_aliases) {
      std::abort();
    }
  }
  return 0;
}
