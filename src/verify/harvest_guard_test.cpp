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

// A partner's or a mail provider's servers: never slowed or refused, however many unknown
// recipients; an IPv4 network covers its clients' IPv4-mapped form (a dual-stack listener).
TEST(HarvestGuard, ExemptNetworksAreNeverSlowedOrRefused) {
  HarvestSettings s{.slow_after = 1, .refuse_after = 2};
  s.exempt = {core::Cidr::parse("192.0.2.0/24").value(),
              core::Cidr::parse("2001:db8::/32").value()};
  HarvestGuard g(s);
  for (const char* ip : {"192.0.2.7", "::ffff:192.0.2.8", "2001:db8:1::5"}) {
    EXPECT_TRUE(g.exempt(ip)) << ip;
  }
  for (const char* ip : {"192.0.3.7", "::ffff:192.0.3.8", "2001:db9::5", "not an address"}) {
    EXPECT_FALSE(g.exempt(ip)) << ip;
  }
  EXPECT_FALSE(HarvestGuard({}).exempt("192.0.2.7")) << "none by default";
  g.reconfigure({.slow_after = 1, .refuse_after = 2});
  EXPECT_FALSE(g.exempt("192.0.2.7")) << "a reload that drops the list";
}

TEST(HarvestGuard, OnlyRejectionsWithinTheWindowCount) {
  HarvestGuard g({.slow_after = 2, .refuse_after = 100, .window = seconds(60)});
  g.record_unknown("a", kStart);
  g.record_unknown("a", kStart + seconds(61));
  EXPECT_EQ(g.check("a", kStart + seconds(61)), HarvestGuard::Verdict::ok);
  g.record_unknown("a", kStart + seconds(62));
  EXPECT_EQ(g.check("a", kStart + seconds(62)), HarvestGuard::Verdict::slow);
}

// What one node counted reaches the other as its own: a client spread over both meets one
// budget.
TEST(HarvestGuard, CountsHeardFromAnotherNodeCountAsItsOwn) {
  const HarvestSettings settings{.slow_after = 3, .refuse_after = 4, .window = seconds(60)};
  HarvestGuard a(settings);
  HarvestGuard b(settings);
  a.record_unknown("192.0.2.7", kStart);
  a.record_unknown("192.0.2.7", kStart);
  for (const auto& c : a.counts().take_outgoing()) {
    b.counts().add_remote(c.key, c.count, kStart);
  }
  EXPECT_EQ(b.check("192.0.2.7", kStart), HarvestGuard::Verdict::ok);
  b.record_unknown("192.0.2.7", kStart);
  EXPECT_EQ(b.check("192.0.2.7", kStart), HarvestGuard::Verdict::slow);  // 2 there + 1 here
  b.record_unknown("192.0.2.7", kStart);
  EXPECT_EQ(b.check("192.0.2.7", kStart), HarvestGuard::Verdict::refuse);
  EXPECT_EQ(b.check("198.51.100.1", kStart), HarvestGuard::Verdict::ok);
}

TEST(HarvestGuard, SweepForgetsClientsThatNeverComeBack) {
  HarvestGuard g(
      {.slow_after = 2, .refuse_after = 3, .window = seconds(60), .block = seconds(600)});
  g.record_unknown("gone", kStart);
  for (int i = 0; i < 3; ++i) g.record_unknown("blocked", kStart);
  EXPECT_EQ(g.check("blocked", kStart), HarvestGuard::Verdict::refuse);
  g.record_unknown("recent", kStart + seconds(30));
  g.sweep(kStart + seconds(61));
  EXPECT_EQ(g.counts().keys(), 1U);  // "recent"
  EXPECT_EQ(g.blocked(), 1U);
  EXPECT_EQ(g.check("blocked", kStart + seconds(61)), HarvestGuard::Verdict::refuse);
  g.sweep(kStart + seconds(601));
  EXPECT_EQ(g.counts().keys(), 0U);
  EXPECT_EQ(g.blocked(), 0U);
  EXPECT_EQ(g.check("blocked", kStart + seconds(601)), HarvestGuard::Verdict::ok);
}

}  // namespace
}  // namespace mailroster::verify
