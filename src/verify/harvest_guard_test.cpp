#include "verify/harvest_guard.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace mailroster::verify
