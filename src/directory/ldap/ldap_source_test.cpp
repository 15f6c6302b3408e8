#include "directory/ldap/ldap_source.hpp"

#include <gtest/gtest.h>

namespace mailroster::directory::ldap {
namespace {

using Hosts = std::vector<std::string>;

// Several domain controllers: host names or addresses, by spaces or commas, in order.
TEST(LdapSettings, HostHoldsOneOrSeveralHostNames) {
  EXPECT_EQ(ldap_hosts("dc1.corp.example"), Hosts{"dc1.corp.example"});
  EXPECT_EQ(ldap_hosts("dc1.corp.example dc2.corp.example, 192.0.2.5"),
            (Hosts{"dc1.corp.example", "dc2.corp.example", "192.0.2.5"}));
  EXPECT_EQ(ldap_hosts(" dc1 ,, dc2 "), (Hosts{"dc1", "dc2"}));
  for (const auto* bad : {"", " , ", "dc1:636", "ldaps://dc1", "dc1/o=corp", "admin@dc1", "dc1?x",
                          "[2001:db8::1]", "dc\x01", "dc1 dc2:389"}) {
    EXPECT_TRUE(ldap_hosts(bad).empty()) << bad;
  }
  const nlohmann::json base = {{"base_dn", "dc=corp,dc=example"}};
  auto with = [&](const char* host) {
    auto j = base;
    j["host"] = host;
    return settings_from_json(j);
  };
  ASSERT_TRUE(with("dc1.corp.example, dc2.corp.example"));
  EXPECT_EQ(with("dc1.corp.example, dc2.corp.example")->host, "dc1.corp.example, dc2.corp.example");
  const auto bad = with("dc1.corp.example:636");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().field, "host");
}

}  // namespace
}  // namespace mailroster::directory::ldap
