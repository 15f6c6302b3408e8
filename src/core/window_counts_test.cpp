#include "core/window_counts.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace mailroster::core {
namespace {

using namespace std::chrono;
const TimePoint kStart{sys_days{2026y / December / 6}};

TEST(WindowCounts, CountsWithinTheWindowPerKey) {
  WindowCounts w(seconds(60), 100);
  w.add("a", kStart);
  w.add("a", kStart + seconds(30));
  w.add("b", kStart + seconds(30));
  EXPECT_EQ(w.count("a", kStart + seconds(59)), 2U);
  EXPECT_EQ(w.count("a", kStart + seconds(60)), 1U);  // the first left the window
  EXPECT_EQ(w.count("b", kStart + seconds(60)), 1U);
  EXPECT_EQ(w.count("c", kStart), 0U);
  EXPECT_EQ(w.keys(), 2U);  // asking about "c" added nothing
  EXPECT_EQ(w.count("a", kStart + seconds(90)), 0U);
  EXPECT_EQ(w.keys(), 1U);  // "a" emptied and is forgotten
}

// What one node counted goes out once, summed per key; what it hears counts as its own and
// is not told again.
TEST(WindowCounts, WhatThisNodeCountedGoesOutOnceAndHeardCountsStay) {
  WindowCounts a(seconds(60), 100);
  WindowCounts b(seconds(60), 100);
  a.add("192.0.2.7", kStart);
  a.add("192.0.2.7", kStart);
  a.add("email:bob@acme.example", kStart);
  auto sent = a.take_outgoing();
  std::ranges::sort(sent, {}, &TallyCount::key);
  EXPECT_EQ(sent, (std::vector<TallyCount>{{"192.0.2.7", 2}, {"email:bob@acme.example", 1}}));
  EXPECT_TRUE(a.take_outgoing().empty());
  for (const auto& c : sent) b.add_remote(c.key, c.count, kStart + seconds(10));
  EXPECT_TRUE(b.take_outgoing().empty());
  EXPECT_EQ(b.count("192.0.2.7", kStart + seconds(10)), 2U);
  b.add("192.0.2.7", kStart + seconds(10));
  EXPECT_EQ(b.count("192.0.2.7", kStart + seconds(10)), 3U);
  // Heard counts date from when they were heard, and leave the window as the node's own.
  EXPECT_EQ(b.count("192.0.2.7", kStart + seconds(70)), 0U);
  b.add_remote("x", 0, kStart);
  EXPECT_EQ(b.keys(), 1U);  // nothing to add adds no key
}

TEST(WindowCounts, AFloodKeepsNoMoreThanTheLimitNeeds) {
  WindowCounts w(seconds(60), 5);
  w.add_remote("a", 4'000'000'000U, kStart);
  EXPECT_EQ(w.count("a", kStart), 5U);
  for (int i = 0; i < 1000; ++i) w.add("a", kStart + seconds(1));
  EXPECT_EQ(w.count("a", kStart + seconds(1)), 5U);
  EXPECT_EQ(w.count("a", kStart + seconds(60)), 5U);  // the newest are the ones kept
}

TEST(WindowCounts, SweepForgetsKeysThatNeverComeBack) {
  WindowCounts w(seconds(60), 10);
  for (int i = 0; i < 1000; ++i) w.add("client" + std::to_string(i), kStart);
  w.add("recent", kStart + seconds(30));
  w.sweep(kStart + seconds(59));
  EXPECT_EQ(w.keys(), 1001U);
  w.sweep(kStart + seconds(60));
  EXPECT_EQ(w.keys(), 1U);
  EXPECT_EQ(w.count("recent", kStart + seconds(60)), 1U);
}

}  // namespace
}  // namespace mailroster::core
