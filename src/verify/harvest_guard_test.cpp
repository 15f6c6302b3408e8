#include "verify/harvest_guard.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace mailroster::verify {
namespace {

using namespace std::chrono;
const core::TimePoint kStart{sys_days{2026y / November / 24}};

TEST(HarvestGuard, SlowsThenRefusesThenForgives) {
  HarvestGuard g(
      {.slow_after = 3, .refuse_after = 5, .window = seconds(600), .block = seconds(900)});
  const std::string ip = "192.0.2.7";
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(g.check(ip, kStart), HarvestGuard::Verdict::ok);
    g.record_unknown(ip, kStart);
  }
  EXPECT_EQ(g.check(ip, kStart), HarvestGuard::Verdict::ok);
  g.record_unknown(ip, kStart);
  EXPECT_EQ(g.check(ip, kStart), HarvestGuard::Verdict::slow);
  g.record_unknown(ip, kStart);
  g.record_unknown(ip, kStart);
  EXPECT_EQ(g.check(ip, kStart), HarvestGuard::Verdict::refuse);
  EXPECT_EQ(g.check("198.51.100.1", kStart), HarvestGuard::Verdict::ok);  // per client
  // Still refused after the window, because the block lasts 15 minutes.
  EXPECT_EQ(g.check(ip, kStart + seconds(700)), HarvestGuard::Verdict::refuse);
  EXPECT_EQ(g.check(ip, kStart + seconds(901)), HarvestGuard::Verdict::ok);
}

TEST(HarvestGuard, OnlyRejectionsWithinTheWindowCount) {
  HarvestGuard g({.slow_after = 2, .refuse_after = 100, .window = seconds(60)});
  g.record_unknown("a", kStart);
  g.record_unknown("a", kStart + seconds(61));
  EXPECT_EQ(g.check("a", kStart + seconds(61)), HarvestGuard::Verdict::ok);
  g.record_unknown("a", kStart + seconds(62));
  EXPECT_EQ(g.check("a", kStart + seconds(62)), HarvestGuard::Verdict::slow);
}

// What one node counted goes out once, summed per client; what it hears counts as its own.
TEST(HarvestGuard, CountsAreSharedWithTheOtherNodes) {
  const HarvestSettings settings{.slow_after = 3, .refuse_after = 4, .window = seconds(60)};
  HarvestGuard a(settings);
  HarvestGuard b(settings);
  a.record_unknown("192.0.2.7", kStart);
  a.record_unknown("192.0.2.7", kStart);
  a.record_unknown("198.51.100.1", kStart);
  auto sent = a.take_outgoing();
  std::ranges::sort(sent, {}, &HarvestCount::client);
  EXPECT_EQ(sent, (std::vector<HarvestCount>{{"192.0.2.7", 2}, {"198.51.100.1", 1}}));
  EXPECT_TRUE(a.take_outgoing().empty());  // taken once
  for (const auto& c : sent) b.record_remote(c.client, c.unknown, kStart);
  EXPECT_TRUE(b.take_outgoing().empty());  // what b heard is not b's to tell again
  EXPECT_EQ(b.check("192.0.2.7", kStart), HarvestGuard::Verdict::ok);
  b.record_unknown("192.0.2.7", kStart);
  EXPECT_EQ(b.check("192.0.2.7", kStart), HarvestGuard::Verdict::slow);  // 2 there + 1 here
  b.record_unknown("192.0.2.7", kStart);
  EXPECT_EQ(b.check("192.0.2.7", kStart), HarvestGuard::Verdict::refuse);
  EXPECT_EQ(b.check("198.51.100.1", kStart), HarvestGuard::Verdict::ok);
  // Heard counts leave the window as the node's own do.
  b.record_remote("203.0.113.5", 3, kStart);
  EXPECT_EQ(b.check("203.0.113.5", kStart + seconds(59)), HarvestGuard::Verdict::slow);
  EXPECT_EQ(b.check("203.0.113.5", kStart + seconds(60)), HarvestGuard::Verdict::ok);
}

TEST(HarvestGuard, AFloodOfReportsKeepsNoMoreThanItNeeds) {
  HarvestGuard g({.slow_after = 2, .refuse_after = 5, .window = seconds(60)});
  g.record_remote("a", 4'000'000'000U, kStart);
  EXPECT_EQ(g.check("a", kStart), HarvestGuard::Verdict::refuse);
  g.record_remote("b", 0, kStart);
  EXPECT_EQ(g.clients(), 1U);
}

TEST(HarvestGuard, SweepForgetsClientsThatNeverComeBack) {
  HarvestGuard g(
      {.slow_after = 2, .refuse_after = 3, .window = seconds(60), .block = seconds(600)});
  g.record_unknown("gone", kStart);
  for (int i = 0; i < 3; ++i) g.record_unknown("blocked", kStart);
  EXPECT_EQ(g.check("blocked", kStart), HarvestGuard::Verdict::refuse);
  g.record_unknown("recent", kStart + seconds(30));
  g.sweep(kStart + seconds(61));
  EXPECT_EQ(g.clients(), 2U);  // "gone" is; the block and the recent one stay
  EXPECT_EQ(g.check("blocked", kStart + seconds(61)), HarvestGuard::Verdict::refuse);
  g.sweep(kStart + seconds(601));
  EXPECT_EQ(g.clients(), 0U);
  EXPECT_EQ(g.check("blocked", kStart + seconds(601)), HarvestGuard::Verdict::ok);
}

}  // namespace
}  // namespace mailroster::verify
