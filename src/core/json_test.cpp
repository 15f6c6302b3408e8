#include "core/json.hpp"

#include <gtest/gtest.h>

namespace mailroster::core {
namespace {

User user_named(std::string first, std::string surname) {
  User u;
  u.id = 42;
  u.company_id = 7;
  u.address = Address::parse("Anna.Smith@Example.COM").value();
  u.first_name = std::move(first);
  u.surname = std::move(surname);
  u.role = Role::end_user;
  u.source = Source::ldap;
  u.source_id = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
  u.created_at = TimePoint{std::chrono::seconds{1764000000}};
  u.updated_at = TimePoint{std::chrono::seconds{1764086400}};
  return u;
}

// The audit trail's fast writer must say exactly what the JSON library says, escapes included.
TEST(JsonText, UserMatchesTheLibrary) {
  const std::vector<std::pair<std::string, std::string>> names = {
      {"Anna", "Smith"},
      {"", ""},
      {"Quote\"d", "Back\\slash"},
      {"tab\there", "new\nline\r\b\f"},
      {std::string("nul\0x", 5), "\x01\x1f\x7f"},
      {"Zoë", "Øster 李"},
      {"</script>", "{\"a\":1}"},
  };
  for (const auto& [first, surname] : names) {
    const auto u = user_named(first, surname);
    EXPECT_EQ(json_text(u), nlohmann::json(u).dump()) << first << " / " << surname;
  }
}

}  // namespace
}  // namespace mailroster::core
