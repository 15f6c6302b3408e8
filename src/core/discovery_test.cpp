#include "core/discovery.hpp"

#include <gtest/gtest.h>

namespace mailroster::core {
namespace {

using namespace std::chrono;

const TimePoint kDay0 = sys_days{2026y / November / 2};

DiscoveredAddress fresh() {
  DiscoveredAddress d;
  d.address = Address::parse("new.hire@acme.example").value();
  return d;
}

TEST(Discovery, ThirdCleanMessageWithin30DaysDiscovers) {
  DiscoverySettings s;
  auto d = fresh();
  EXPECT_FALSE(on_clean_delivery(d, s, kDay0).became_discovered);
  EXPECT_EQ(d.first_seen, kDay0);
  EXPECT_FALSE(on_clean_delivery(d, s, kDay0 + days{10}).became_discovered);
  EXPECT_TRUE(on_clean_delivery(d, s, kDay0 + days{29}).became_discovered);
  EXPECT_EQ(d.discovered_at, kDay0 + days{29});
  // Once discovered, later mail changes nothing.
  const auto after = on_clean_delivery(d, s, kDay0 + days{30});
  EXPECT_FALSE(after.became_discovered);
  EXPECT_FALSE(after.changed);
  EXPECT_EQ(d.discovered_at, kDay0 + days{29});
  EXPECT_EQ(d.clean_inbound.size(), 3u);
}

TEST(Discovery, MessagesOutsideTheWindowDoNotCount) {
  DiscoverySettings s;
  auto d = fresh();
  on_clean_delivery(d, s, kDay0);
  on_clean_delivery(d, s, kDay0 + days{20});
  // Day 30: the day-0 message is exactly 30 days old and falls out of the window.
  EXPECT_FALSE(on_clean_delivery(d, s, kDay0 + days{30}).became_discovered);
  EXPECT_EQ(d.clean_inbound.size(), 2u);
  EXPECT_TRUE(on_clean_delivery(d, s, kDay0 + days{31}).became_discovered);
}

TEST(Discovery, KeepsOnlyAsManyStampsAsTheThresholdNeeds) {
  DiscoverySettings s;
  s.inbound_threshold = 2;
  s.window_days = 1;
  auto d = fresh();
  for (int i = 0; i < 5; ++i) on_clean_delivery(d, s, kDay0 + days{2 * i});  // never 2 in a day
  EXPECT_FALSE(d.discovered_at);
  EXPECT_EQ(d.clean_inbound.size(), 1u);
  EXPECT_TRUE(on_clean_delivery(d, s, kDay0 + days{8} + hours{1}).became_discovered);
}

// A count written late (it waited for the database while later mail was counted, or came from
// another node) counts when its mail came: in time order, in the window ending at the latest.
TEST(Discovery, ALateCountCountsWhenItsMailCame) {
  DiscoverySettings s;
  auto d = fresh();
  on_clean_delivery(d, s, kDay0 + days{10});
  on_clean_delivery(d, s, kDay0 + days{20});
  EXPECT_TRUE(on_clean_delivery(d, s, kDay0 + days{5}).became_discovered);
  EXPECT_EQ(d.clean_inbound,
            (std::vector<TimePoint>{kDay0 + days{5}, kDay0 + days{10}, kDay0 + days{20}}));
  EXPECT_EQ(d.first_seen, kDay0 + days{5});
  EXPECT_EQ(d.discovered_at, kDay0 + days{20});
  // Outside the window of the latest: it does not count.
  auto e = fresh();
  on_clean_delivery(e, s, kDay0 + days{20});
  on_clean_delivery(e, s, kDay0 + days{40});
  EXPECT_FALSE(on_clean_delivery(e, s, kDay0 + days{5}).became_discovered);
  EXPECT_EQ(e.clean_inbound, (std::vector<TimePoint>{kDay0 + days{20}, kDay0 + days{40}}));
}

TEST(Discovery, ThresholdIsTheCompanysSetting) {
  DiscoverySettings s;
  s.inbound_threshold = 1;
  auto d = fresh();
  EXPECT_TRUE(on_clean_delivery(d, s, kDay0).became_discovered);
}

TEST(Discovery, ActiveOnlyWhenEnabledAndNoDailySync) {
  DiscoverySettings s;
  EXPECT_FALSE(discovery_active(s, std::nullopt));
  s.enabled = true;
  EXPECT_TRUE(discovery_active(s, std::nullopt));
  EXPECT_TRUE(discovery_active(s, 6));
  EXPECT_FALSE(discovery_active(s, 24));
  // What the administrator is told.
  EXPECT_EQ(discovery_off_reason(s, 6), "");
  EXPECT_NE(discovery_off_reason(s, 24).find("while a directory sync runs every 24 hours"),
            std::string::npos);
  s.enabled = false;
  EXPECT_EQ(discovery_off_reason(s, 24), "SMTP Discovery is off in the settings");
}

TEST(Discovery, ThreeMessagesSpreadOver31DaysDoNotDiscover) {
  DiscoverySettings s;
  auto d = fresh();
  on_clean_delivery(d, s, kDay0);
  on_clean_delivery(d, s, kDay0 + days{15});
  EXPECT_FALSE(on_clean_delivery(d, s, kDay0 + days{31}).became_discovered);
  EXPECT_FALSE(d.discovered_at);
}

TEST(Expiry, DiscoveredOnDay0UntouchedDay21BecomesInvalid) {
  DiscoverySettings s;  // 3 weeks, expired -> invalid
  auto d = fresh();
  d.discovered_at = kDay0;
  EXPECT_EQ(expires_at(d, s), kDay0 + days{21});
  EXPECT_EQ(expiry_action(d, s, kDay0 + days{20} + hours{23}), ExpiryAction::none);
  EXPECT_EQ(expiry_action(d, s, kDay0 + days{21}), ExpiryAction::mark_invalid);
  s.expired_to_new_user = true;
  EXPECT_EQ(expiry_action(d, s, kDay0 + days{22}), ExpiryAction::make_user);
  s.notification_weeks = 4;
  EXPECT_EQ(expiry_action(d, s, kDay0 + days{22}), ExpiryAction::none);
}

TEST(Expiry, AnAddressStillBeingCountedNeverExpires) {
  DiscoverySettings s;
  auto d = fresh();
  d.first_seen = kDay0;
  d.clean_inbound = {kDay0};
  EXPECT_FALSE(expires_at(d, s));
  EXPECT_EQ(expiry_action(d, s, kDay0 + days{365}), ExpiryAction::none);
}

TEST(Outbound, OneCleanMessageCreatesTheUserWhenAutoAddIsOn) {
  DiscoverySettings s;
  s.auto_add_outbound = true;
  auto d = fresh();
  const auto out = on_clean_outbound(d, s, kDay0);
  EXPECT_TRUE(out.create_user);
  EXPECT_FALSE(out.became_discovered);
}

TEST(Outbound, OtherwiseTheSenderIsDiscoveredAtOnce) {
  DiscoverySettings s;
  auto d = fresh();
  const auto out = on_clean_outbound(d, s, kDay0);
  EXPECT_FALSE(out.create_user);
  EXPECT_TRUE(out.became_discovered);
  EXPECT_EQ(d.discovered_at, kDay0);
  EXPECT_EQ(d.outbound_messages, 1);
  EXPECT_FALSE(on_clean_outbound(d, s, kDay0 + days{1}).became_discovered);
  EXPECT_EQ(d.outbound_messages, 2);
}

User user(Id id, const char* address, Role role = Role::end_user) {
  User u;
  u.id = id;
  u.address = Address::parse(address).value();
  u.role = role;
  return u;
}

TEST(AliasCandidate, SameLocalPartInAnotherDomainOfTheCompany) {
  const auto discovered = Address::parse("First.Last@domain2.example").value();
  const std::vector<User> users = {user(1, "someone@domain1.example"),
                                   user(2, "first.last@domain1.example"),
                                   user(3, "first.last@domain2.example.org")};
  EXPECT_EQ(alias_candidate(discovered, users), 2);
  EXPECT_FALSE(alias_candidate(discovered, {user(1, "someone@domain1.example")}));
  // A user with the very same address is not "another" user; functional accounts are skipped.
  EXPECT_FALSE(alias_candidate(discovered, {user(4, "first.last@domain2.example")}));
  EXPECT_FALSE(
      alias_candidate(discovered, {user(5, "first.last@domain1.example", Role::functional)}));
}

TEST(ReportWeek, OnlyOnThursdays) {
  EXPECT_EQ(report_week(TimePoint{sys_days{2026y / November / 26}} + hours{7}), "2026-11-26");
  EXPECT_FALSE(report_week(TimePoint{sys_days{2026y / November / 25}} + hours{23}));
  EXPECT_FALSE(report_week(TimePoint{sys_days{2026y / November / 27}}));
}

}  // namespace
}  // namespace mailroster::core
