#include "directory/ldap/ldap_entry.hpp"

#include <gtest/gtest.h>

namespace mailroster::directory::ldap {
namespace {

std::string guid_bytes() {
  // AD shows these bytes as 33221100-5544-7766-8899-aabbccddeeff.
  const unsigned char b[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                               0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
  return std::string(reinterpret_cast<const char*>(b), 16);
}

TEST(LdapEntry, TheSmtpProxyAddressIsThePrimaryWhereverItStands) {
  const auto p = parse_proxy_addresses({"smtp:a.smith@corp.example", "X500:/o=Corp/cn=alice",
                                        "SIP:alice@corp.example", "SMTP:alice@corp.example",
                                        "smtp:alice@corp.example", "x400:c=US;a= ;p=Corp"});
  ASSERT_TRUE(p.primary);
  EXPECT_EQ(p.primary->str(), "alice@corp.example");
  ASSERT_EQ(p.aliases.size(), 1u);  // never its own alias; SIP/X500/X400 are not mail
  EXPECT_EQ(p.aliases[0].str(), "a.smith@corp.example");
}

TEST(LdapEntry, BadProxyValuesAreReportedNotImported) {
  const auto p = parse_proxy_addresses({"SMTP:not an address", "smtp:ok@corp.example"});
  EXPECT_FALSE(p.primary);
  EXPECT_EQ(p.aliases.size(), 1u);
  EXPECT_EQ(p.problems.size(), 1u);
}

TEST(LdapEntry, AUserEntryWithItsFlags) {
  Attributes a = {{"objectguid", {guid_bytes()}},
                  {"mail", {"Alice@Corp.example"}},
                  {"givenname", {"Alice"}},
                  {"sn", {"Smith"}},
                  {"proxyaddresses", {"smtp:a.smith@corp.example", "SMTP:alice@corp.example"}},
                  {"useraccountcontrol", {"514"}},
                  {"msexchhidefromaddresslists", {"TRUE"}}};
  const auto e = to_entry(a, false).value();
  EXPECT_EQ(e.source_id, "33221100-5544-7766-8899-aabbccddeeff");
  EXPECT_EQ(e.address.str(), "alice@corp.example");
  EXPECT_EQ(e.first_name, "Alice");
  EXPECT_TRUE(e.disabled);  // 514 = 512 | 2
  EXPECT_TRUE(e.hidden);
  EXPECT_FALSE(e.functional);
  ASSERT_TRUE(e.aliases);
  EXPECT_EQ(e.aliases->size(), 1u);

  a["useraccountcontrol"] = {"512"};
  a["msexchhidefromaddresslists"] = {"FALSE"};
  a["msexchrecipienttypedetails"] = {"4"};  // shared mailbox
  const auto shared = to_entry(a, false).value();
  EXPECT_FALSE(shared.disabled);
  EXPECT_FALSE(shared.hidden);
  EXPECT_TRUE(shared.functional);
  a["msexchrecipienttypedetails"] = {"1"};  // user mailbox
  EXPECT_FALSE(to_entry(a, false).value().functional);
  for (const char* t : {"16", "32"}) {  // room, equipment
    a["msexchrecipienttypedetails"] = {t};
    EXPECT_TRUE(to_entry(a, false).value().functional) << t;
  }
}

TEST(LdapEntry, EntryUuidWhenThereIsNoObjectGuidAndMailWhenNoProxies) {
  const auto e = to_entry({{"entryuuid", {"u-1"}}, {"mail", {"x@corp.example"}}}, false);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->source_id, "u-1");
  EXPECT_EQ(e->address.str(), "x@corp.example");
  EXPECT_FALSE(to_entry({{"entryuuid", {"u-2"}}}, false));        // no mail at all
  EXPECT_FALSE(to_entry({{"mail", {"z@corp.example"}}}, false));  // no identity
  EXPECT_FALSE(to_entry({{"objectguid", {"short"}}, {"mail", {"w@corp.example"}}}, false));
  EXPECT_FALSE(to_entry({{"entryuuid", {"u-3"}}, {"mail", {"not mail"}}}, false));
}

TEST(LdapEntry, GroupTypeSecurityBitIsNegativeInAd) {
  EXPECT_TRUE(is_security_group(-2147483646));  // global security group as AD returns it
  EXPECT_FALSE(is_security_group(2));           // global distribution group
  EXPECT_FALSE(is_security_group(8));
  Attributes g = {
      {"entryuuid", {"g-1"}}, {"mail", {"staff@corp.example"}}, {"grouptype", {"-2147483646"}}};
  EXPECT_TRUE(to_entry(g, true).value().security_group);
  g["grouptype"] = {"8"};
  const auto dist = to_entry(g, true).value();
  EXPECT_FALSE(dist.security_group);
  EXPECT_TRUE(dist.functional);
}

TEST(LdapEntry, FilterValuesAreEscaped) {
  EXPECT_EQ(escape_filter_value("a*(b)\\c"), "a\\2a\\28b\\29\\5cc");
  EXPECT_EQ(escape_filter_value(std::string("x\0y", 3)), "x\\00y");
  EXPECT_EQ(escape_filter_value("é"), "\\c3\\a9");
}

// Range retrieval against answers as AD gives them for a 3,000-member group.
TEST(LdapEntry, RangeRetrievalFollowsAdAnswers) {
  std::vector<std::string> first(1500, "cn=u"), last(1500, "cn=v");
  Attributes page1 = {{"member;range=0-1499", first}, {"member", {}}};
  auto r1 = ranged_values(page1, "member");
  EXPECT_EQ(r1.values.size(), 1500u);
  ASSERT_TRUE(r1.next_request);
  EXPECT_EQ(*r1.next_request, "member;range=1500-*");
  Attributes page2 = {{"member;range=1500-*", last}};
  auto r2 = ranged_values(page2, "member");
  EXPECT_EQ(r2.values.size(), 1500u);
  EXPECT_FALSE(r2.next_request);
  // A small group comes back plain.
  EXPECT_FALSE(ranged_values({{"member", {"cn=a"}}}, "member").next_request);
  EXPECT_FALSE(parse_range("member;range=x-1", "member"));
  EXPECT_FALSE(parse_range("member;range=5-1", "member"));
  EXPECT_FALSE(parse_range("memberof;range=0-1", "member"));
}

TEST(LdapEntry, NestedMembershipIsResolvedAndCyclesEnd) {
  const auto m = resolve_members({{"CN=All,DC=x", {"cn=Sales,dc=x", "cn=alice,dc=x"}},
                                  {"cn=sales,dc=x", {"cn=bob,dc=x", "CN=All, DC=x"}}});
  EXPECT_EQ(m.at("cn=all,dc=x"), (std::set<std::string>{"cn=alice,dc=x", "cn=bob,dc=x"}));
  EXPECT_EQ(m.at("cn=sales,dc=x"), (std::set<std::string>{"cn=alice,dc=x", "cn=bob,dc=x"}));
}

TEST(LdapEntry, IncrementalOnlyOnTheSameAdServer) {
  const ServerState ad{"inv-1", 1000};
  EXPECT_FALSE(incremental_filter(std::nullopt, ad, "(mail=*)"));  // first run: full
  EXPECT_EQ(*incremental_filter(ServerState{"inv-1", 900}, ad, "(mail=*)"),
            "(&(mail=*)(uSNChanged>=901))");
  EXPECT_FALSE(incremental_filter(ServerState{"inv-0", 900}, ad, "(mail=*)"));  // restored DC
  EXPECT_FALSE(incremental_filter(ServerState{"", std::nullopt}, {"", std::nullopt}, "(mail=*)"));
}

}  // namespace
}  // namespace mailroster::directory::ldap
