#include "directory/graph/graph_directory.hpp"

#include <gtest/gtest.h>

namespace mailroster::directory::graph {
namespace {

using nlohmann::json;

TEST(GraphEntry, UsersAsDirectoryEntries) {
  const auto e = user_entry(
      {{"id", "u1"},
       {"accountEnabled", false},
       {"mail", "Alice@corp.example"},
       {"givenName", "Alice"},
       {"surname", "Smith"},
       {"proxyAddresses", {"smtp:al@corp.example", "SMTP:alice@corp.example", "SIP:x@y"}},
       {"userType", "Member"}});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->source_id, "u1");
  EXPECT_EQ(e->address.str(), "alice@corp.example");
  EXPECT_TRUE(e->disabled);
  ASSERT_EQ(e->aliases->size(), 1u);
  EXPECT_FALSE(user_entry({{"id", "u2"}, {"mail", "g@x.example"}, {"userType", "Guest"}}));
  EXPECT_FALSE(user_entry({{"id", "u3"}, {"mail", nullptr}, {"proxyAddresses", json::array()}}));
  EXPECT_FALSE(user_entry({{"mail", "no-id@corp.example"}}));
  EXPECT_FALSE(user_entry({{"id", "u4"}, {"mail", "not mail"}}));
  // Values of the wrong type are ignored, never trusted.
  const auto odd = user_entry({{"id", "u5"},
                               {"mail", "u5@corp.example"},
                               {"givenName", 7},
                               {"accountEnabled", "yes"},
                               {"proxyAddresses", "SMTP:x@y"}});
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->first_name, "");
  EXPECT_FALSE(odd->disabled);
  // An id goes into request paths: one that would change the request is not taken.
  EXPECT_TRUE(
      user_entry({{"id", "8a1c02f4-55d1-4b7e-9d6e-0c2f3a4b5c6d"}, {"mail", "g@c.example"}}));
  for (const auto* id : {"../users", "g?$select=x", "a%2Fb", "a b", "x/y"}) {
    const auto bad = user_entry({{"id", id}, {"mail", "g@corp.example"}});
    ASSERT_FALSE(bad) << id;
    EXPECT_EQ(bad.error().message, "its id is not a Graph object id");
  }
  EXPECT_FALSE(user_entry({{"id", std::string(65, 'a')}, {"mail", "g@corp.example"}}));
}

TEST(GraphSettings, StrictWithDefaultsForTheCloud) {
  const auto s = settings_from_json({{"tenant_id", "t"}, {"client_id", "c"}}).value();
  EXPECT_EQ(s.graph_url, "https://graph.microsoft.com");
  EXPECT_EQ(s.login_url, "https://login.microsoftonline.com");
  const auto cn = settings_from_json({{"tenant_id", "t"},
                                      {"client_id", "c"},
                                      {"graph_url", "https://microsoftgraph.chinacloudapi.cn/"}});
  EXPECT_EQ(cn->graph_url, "https://microsoftgraph.chinacloudapi.cn");
  for (const auto& bad : {json{{"tenant_id", "t"}},
                          json{{"tenant_id", "t"}, {"client_id", "c"}, {"graph_url", "ftp://x"}},
                          json{{"tenant_id", "t/../x"}, {"client_id", "c"}},
                          json{{"tenant_id", "t"}, {"client_id", "c"}, {"page_size", 5000}},
                          json{{"tenant_id", "t"}, {"client_id", "c"}, {"secret", "x"}}}) {
    EXPECT_FALSE(settings_from_json(bad)) << bad;
  }
}

}  // namespace
}  // namespace mailroster::directory::graph
