#include "core/model.hpp"

#include <gtest/gtest.h>

#include "core/json.hpp"

namespace mailroster::core {
namespace {

TEST(DiscoverySettings, DefaultsAreTheSeeds) {
  // seeds/smtp-discovery.txt and SPEC.md: off, silent users, 3 clean messages within 30 days,
  // 3 weeks of notification, expired -> invalid, auto-add aliases, no outbound auto-add,
  // both reports, admin contact included.
  const DiscoverySettings s;
  EXPECT_FALSE(s.enabled);
  EXPECT_EQ(s.default_role, Role::silent_user);
  EXPECT_EQ(s.inbound_threshold, 3);
  EXPECT_EQ(s.window_days, 30);
  EXPECT_EQ(s.notification_weeks, 3);
  EXPECT_FALSE(s.expired_to_new_user);
  EXPECT_TRUE(s.auto_add_aliases);
  EXPECT_FALSE(s.auto_add_outbound);
  EXPECT_TRUE(s.report_new_users);
  EXPECT_TRUE(s.report_new_aliases);
  EXPECT_TRUE(s.report_include_admin);
  EXPECT_FALSE(validate(s));
}

TEST(DiscoverySettings, RejectsOutOfRangeValues) {
  DiscoverySettings s;
  s.inbound_threshold = 0;
  EXPECT_EQ(validate(s)->field, "inbound_threshold");
  s = {};
  s.notification_weeks = 53;
  EXPECT_EQ(validate(s)->field, "notification_weeks");
  s = {};
  s.notification_weeks = 0;
  EXPECT_EQ(validate(s)->field, "notification_weeks");
  s = {};
  s.default_role = Role::functional;
  EXPECT_EQ(validate(s)->field, "default_role");
  s = {};
  s.window_days = 0;
  EXPECT_EQ(validate(s)->field, "window_days");
}

TEST(DiscoverySettings, SetByNameValidates) {
  DiscoverySettings s;
  EXPECT_FALSE(set_setting(s, "enabled", "true"));
  EXPECT_TRUE(s.enabled);
  EXPECT_FALSE(set_setting(s, "inbound_threshold", "5"));
  EXPECT_EQ(s.inbound_threshold, 5);
  EXPECT_FALSE(set_setting(s, "default_role", "end_user"));
  EXPECT_EQ(s.default_role, Role::end_user);
  EXPECT_EQ(set_setting(s, "inbound_threshold", "0")->field, "inbound_threshold");
  EXPECT_EQ(s.inbound_threshold, 5);  // unchanged on error
  EXPECT_EQ(set_setting(s, "notification_weeks", "3x")->field, "notification_weeks");
  EXPECT_EQ(set_setting(s, "enabled", "maybe")->field, "enabled");
  EXPECT_EQ(set_setting(s, "default_role", "functional")->field, "default_role");
  EXPECT_NE(set_setting(s, "colour", "red")->message.find("unknown discovery setting"),
            std::string::npos);
}

TEST(AuditAction, ParsesTheListedOnesAndNamesThemOtherwise) {
  for (const auto action : kAuditActions) EXPECT_EQ(parse_audit_action(action).value(), action);
  auto bad = parse_audit_action("user.delete");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().field, "action");
  EXPECT_EQ(bad.error().message,
            "unknown action 'user.delete' (one of " + audit_action_list() + ")");
  EXPECT_EQ(audit_action_list().rfind("user.add, user.update, user.remove, alias.add", 0), 0u);
  EXPECT_FALSE(parse_audit_action(""));
}

TEST(Role, ParsesAndNamesEveryRole) {
  for (auto role : {Role::end_user, Role::silent_user, Role::functional}) {
    EXPECT_EQ(parse_role(to_string(role)).value(), role);
  }
  auto bad = parse_role("admin");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("end_user, silent_user, functional"), std::string::npos);
  EXPECT_TRUE(can_log_in(Role::end_user));
  EXPECT_FALSE(can_log_in(Role::silent_user));
  EXPECT_FALSE(can_log_in(Role::functional));
}

TEST(Role, EveryRoleAndSourceHasANameForPeople) {
  EXPECT_EQ(role_name(Role::silent_user), "silent user");
  EXPECT_EQ(role_name(Role::functional), "functional account");
  EXPECT_EQ(source_name(Source::csv), "CSV import");
  for (auto r : {Role::end_user, Role::silent_user, Role::functional}) EXPECT_NE(role_name(r), "?");
  for (auto s : {Source::manual, Source::csv, Source::ldap, Source::azure, Source::discovery}) {
    EXPECT_NE(source_name(s), "?");
  }
}

TEST(Source, ParsesEverySource) {
  for (auto source :
       {Source::manual, Source::csv, Source::ldap, Source::azure, Source::discovery}) {
    EXPECT_EQ(parse_source(to_string(source)).value(), source);
  }
  EXPECT_FALSE(parse_source("MANUAL"));
}

TEST(CompanyName, AllowsIdentifiersOnly) {
  EXPECT_EQ(validate_company_name("acme-corp_2.eu").value(), "acme-corp_2.eu");
  EXPECT_FALSE(validate_company_name(""));
  EXPECT_FALSE(validate_company_name("acme corp"));
  EXPECT_FALSE(validate_company_name("acme;drop"));
  EXPECT_FALSE(validate_company_name(std::string(65, 'a')));
}

TEST(Contact, EmptyOrAValidAddress) {
  EXPECT_EQ(validate_contact("", "tech_contact").value(), "");
  EXPECT_EQ(validate_contact("IT@Acme.Example", "tech_contact").value(), "IT@acme.example");
  auto bad = validate_contact("it-at-acme", "tech_contact");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().field, "tech_contact");
}

TEST(Json, UserViewHasEveryField) {
  User u;
  u.id = 7;
  u.company_id = 2;
  u.address = Address::parse("Alice@acme.example").value();
  u.first_name = "Alice";
  u.role = Role::silent_user;
  u.source = Source::ldap;
  const nlohmann::json j = u;
  EXPECT_EQ(j.at("address"), "Alice@acme.example");
  EXPECT_EQ(j.at("role"), "silent_user");
  EXPECT_EQ(j.at("source"), "ldap");
  EXPECT_EQ(j.at("created_at"), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace mailroster::core

namespace mailroster::core {
namespace {

AuditEvent event(std::string object, std::string before, std::string after) {
  AuditEvent e;
  e.action = "user.update";
  e.object = std::move(object);
  e.before = std::move(before);
  e.after = std::move(after);
  return e;
}

TEST(DescribeChange, AnUpdateSaysWhatChangedFromWhatToWhat) {
  const auto e = event(
      "bob@acme.example",
      R"({"id":7,"address":"bob@acme.example","first_name":"Bob","surname":"","role":"end_user",)"
      R"("updated_at":"2026-12-01T00:00:00Z"})",
      R"({"id":7,"address":"bob@acme.example","first_name":"Robert","surname":"Smith",)"
      R"("role":"silent_user","updated_at":"2026-12-07T00:00:00Z"})");
  EXPECT_EQ(describe_change(e),
            "first name: Bob -> Robert; role: end user -> silent user; surname: none -> Smith");
  EXPECT_EQ(
      describe_change(event("x", R"({"a":1,"updated_at":"t1"})", R"({"a":1,"updated_at":"t2"})")),
      "no change");
  // A field on one side only, and lists.
  EXPECT_EQ(
      describe_change(event("acme", R"({"relay_networks":[]})",
                            R"({"relay_networks":["192.0.2.0/24","2001:db8::/48"],"x":true})")),
      "relay networks: none -> 192.0.2.0/24, 2001:db8::/48; x: none -> true");
}

TEST(DescribeChange, AnAdditionSaysWhatWasMadeAndARemovalWhatWasTaken) {
  const std::string user =
      R"({"id":3,"company_id":1,"address":"ann@acme.example","first_name":"Ann","surname":"",)"
      R"("role":"end_user","source":"csv","source_id":"","created_at":"t","updated_at":"t"})";
  EXPECT_EQ(describe_change(event("ann@acme.example", "", user)),
            "first name: Ann; role: end user; source: csv");
  EXPECT_EQ(describe_change(event("ann@acme.example", user, "")),
            "removed (first name: Ann; role: end user; source: csv)");
  EXPECT_EQ(describe_change(event("ann@acme.example", R"({"address":"ann@acme.example"})", "")),
            "removed");
  // The address is left out only where it is the object: a rename shows both.
  EXPECT_EQ(describe_change(event("ann@acme.example", R"({"address":"ann@acme.example"})",
                                  R"({"address":"anne@acme.example"})")),
            "address: ann@acme.example -> anne@acme.example");
  EXPECT_EQ(describe_change(event("x", "", "")), "");
  EXPECT_EQ(describe_change(event("x", "not json", "")), "");  // an old row: nothing said
}

}  // namespace
}  // namespace mailroster::core
