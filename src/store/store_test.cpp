#include "store/store.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "core/error.hpp"

namespace mailroster::store {
namespace {

using namespace std::chrono;

const core::TimePoint kNow = core::TimePoint{sys_days{2028y / February / 10}} + hours(23);

UsageFilter filter(std::map<std::string, std::string> params) { return usage_filter(params, kNow); }

// The field a bad filter names.
std::string refused(std::map<std::string, std::string> params) {
  try {
    filter(std::move(params));
  } catch (const core::Failure& f) {
    return f.error().field;
  }
  return "";
}

TEST(UsageFilter, AMonthRunsFromItsFirstToItsLastDay) {
  const auto f = filter({{"month", "2028-02"}});  // a leap year
  EXPECT_EQ(f.from, "2028-02-01");
  EXPECT_EQ(f.to, "2028-02-29");
  EXPECT_EQ(filter({{"month", "2026-12"}}).to, "2026-12-31");
  EXPECT_EQ(filter({{"month", "2027-02"}}).to, "2027-02-28");
  EXPECT_FALSE(f.company_id);
}

TEST(UsageFilter, NothingGivenIsThisMonthInUtc) {
  const auto f = filter({{"month", ""}, {"from", ""}, {"to", ""}});
  EXPECT_EQ(std::pair(f.from, f.to),
            std::pair(std::string("2028-02-01"), std::string("2028-02-29")));
}

TEST(UsageFilter, DaysFromAndTo) {
  auto f = filter({{"from", "2027-12-15"}, {"to", "2028-01-14"}});
  EXPECT_EQ(std::pair(f.from, f.to),
            std::pair(std::string("2027-12-15"), std::string("2028-01-14")));
  f = filter({{"from", "2028-01-20"}});  // up to today
  EXPECT_EQ(f.to, "2028-02-10");
  f = filter({{"to", "2028-01-20"}});  // from the first of its month
  EXPECT_EQ(f.from, "2028-01-01");
  f = filter({{"from", "2028-01-20"}, {"to", "2028-01-20"}});  // one day
  EXPECT_EQ(f.from, f.to);
}

TEST(UsageFilter, BadValuesNameTheirParameter) {
  EXPECT_EQ(refused({{"month", "2028-13"}}), "month");
  EXPECT_EQ(refused({{"month", "2028-1"}}), "month");
  EXPECT_EQ(refused({{"month", "2028-01-01"}}), "month");
  EXPECT_EQ(refused({{"month", "last"}}), "month");
  EXPECT_EQ(refused({{"month", "2028-01"}, {"from", "2028-01-02"}}), "month");
  EXPECT_EQ(refused({{"from", "2028-02-30"}}), "from");  // no such day
  EXPECT_EQ(refused({{"from", "2028-02-01T00:00:00Z"}}), "from");
  EXPECT_EQ(refused({{"to", "yesterday"}}), "to");
  EXPECT_EQ(refused({{"from", "2028-02-05"}, {"to", "2028-02-04"}}), "to");
}

TEST(SummarizeUsage, PeakAverageAndLastDayPerCompanyByName) {
  std::vector<core::LicenseUsage> rows = {
      {.day = "2028-02-01", .company_id = 1, .company = "zeta", .users = 9, .peak_users = 10},
      {.day = "2028-02-02", .company_id = 1, .company = "zeta", .users = 7, .peak_users = 7},
      {.day = "2028-02-01", .company_id = 2, .company = "alpha", .users = 1, .peak_users = 1}};
  const auto s = summarize_usage(rows);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].company, "alpha");
  EXPECT_EQ(s[1].company, "zeta");
  EXPECT_EQ(s[1].peak_users, 10);
  EXPECT_DOUBLE_EQ(s[1].average_users, 8.5);
  EXPECT_EQ(s[1].last.users, 7);
  EXPECT_EQ(s[1].days.size(), 2u);
  EXPECT_TRUE(summarize_usage({}).empty());
}

}  // namespace
}  // namespace mailroster::store
