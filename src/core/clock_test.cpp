#include "core/clock.hpp"

#include <gtest/gtest.h>

namespace mailroster::core {
namespace {

using namespace std::chrono;

TEST(Iso8601, RoundTrips) {
  const TimePoint t = sys_days{2026y / November / 26} + 9h + 5min + 7s;
  EXPECT_EQ(format_iso8601(t), "2026-11-26T09:05:07Z");
  EXPECT_EQ(parse_iso8601("2026-11-26T09:05:07Z"), t);
}

TEST(Rfc5322, MailHeaderDate) {
  const TimePoint t = sys_days{2026y / November / 26} + 9h + 5min + 7s;
  EXPECT_EQ(format_rfc5322(t), "Thu, 26 Nov 2026 09:05:07 +0000");
}

TEST(Iso8601, AppliesOffsetsAndDateOnly) {
  EXPECT_EQ(parse_iso8601("2026-11-26T10:05:07+01:00"), parse_iso8601("2026-11-26T09:05:07Z"));
  EXPECT_EQ(parse_iso8601("2026-11-26T04:05:07-05:00"), parse_iso8601("2026-11-26T09:05:07Z"));
  EXPECT_EQ(parse_iso8601("2026-11-26"), TimePoint{sys_days{2026y / November / 26}});
}

TEST(Iso8601, RejectsMalformed) {
  for (const char* bad :
       {"", "2026", "2026-13-01", "2026-02-30", "2026-11-26T25:00:00Z", "2026-11-26T10:00Z",
        "2026-11-26T10:00:00+1", "2026/11/26", "2026-11-26T10:00:00ZZ"}) {
    EXPECT_FALSE(parse_iso8601(bad)) << bad;
  }
}

TEST(Duration, NumberAndUnit) {
  EXPECT_EQ(parse_duration("30s"), seconds(30));
  EXPECT_EQ(parse_duration("5m"), minutes(5));
  EXPECT_EQ(parse_duration("12h"), hours(12));
  EXPECT_EQ(parse_duration("7d"), hours(24 * 7));
  EXPECT_EQ(parse_duration("0s"), seconds(0));
  for (const char* bad : {"", "s", "5", "5w", "-5m", "5 m", "1.5h", "99999999999999999d"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
  EXPECT_TRUE(parse_duration("36500d"));  // a hundred years
}

TEST(Moment, ATimeOrADurationAgo) {
  const TimePoint now = sys_days{2026y / December / 6} + 12h;
  EXPECT_EQ(parse_moment("2h", now), now - 2h);
  EXPECT_EQ(parse_moment("7d", now), now - days(7));
  EXPECT_EQ(parse_moment("2026-12-01T08:00:00Z", now), parse_iso8601("2026-12-01T08:00:00Z"));
  EXPECT_FALSE(parse_moment("yesterday", now));
  EXPECT_FALSE(parse_moment("", now));
}

TEST(ManualClock, StandsStillUntilMoved) {
  ManualClock clock(TimePoint{sys_days{2026y / January / 1}});
  const auto start = clock.now();
  EXPECT_EQ(clock.now(), start);
  clock.advance(days{30});
  EXPECT_EQ(clock.now() - start, days{30});
  clock.set(start);
  EXPECT_EQ(clock.now(), start);
}

}  // namespace
}  // namespace mailroster::core
