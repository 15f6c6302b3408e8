#include "directory/ldap/ldap_source.hpp"

#include <gtest/gtest.h>

namespace mailroster::directory::ldap {
namespace {

// Several domain controllers: host names or addresses, by spaces or commas, in order, each on
// `port` unless it names its own.
TEST(LdapSettings, HostHoldsOneOrSeveralServers) {
  EXPECT_EQ(ldap_hosts("dc1.corp.example", 389).value().str(), "dc1.corp.example:389");
  EXPECT_EQ(ldap_hosts("dc1.corp.example dc2.corp.example:3269, 192.0.2.5", 636).value().str(),
            "dc1.corp.example:636, dc2.corp.example:3269, 192.0.2.5:636");
  EXPECT_EQ(ldap_hosts(" dc1 ,, [2001:db8::5] ", 389).value().str(), "dc1:389, [2001:db8::5]:389");
  for (const auto* bad : {"", " , ", "ldaps://dc1", "dc1/o=corp", "admin@dc1", "dc1?x",
                          "[2001:db8::1", "dc\x01", "dc1 dc1:389", "dc1:0"}) {
    EXPECT_FALSE(ldap_hosts(bad, 389)) << bad;
  }
  EXPECT_FALSE(ldap_hosts("dc1", 0));
  const nlohmann::json base = {{"base_dn", "dc=corp,dc=example"}};
  auto with = [&](const char* host) {
    auto j = base;
    j["host"] = host;
    return settings_from_json(j);
  };
  ASSERT_TRUE(with("dc1.corp.example, dc2.corp.example"));
  EXPECT_EQ(with("dc1.corp.example, dc2.corp.example")->host, "dc1.corp.example, dc2.corp.example");
  EXPECT_TRUE(with("dc1.corp.example:636"));
  const auto bad = with("ldaps://dc1.corp.example");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().field, "host");
  EXPECT_NE(bad.error().message.find("LDAP setting 'host': "), std::string::npos);
}

}  // namespace
}  // namespace mailroster::directory::ldap
