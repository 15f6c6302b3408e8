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
}

}  // namespace
}  // namespace mailroster::core
