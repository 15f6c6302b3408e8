#include "directory/plan_spool.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace mailroster::directory {
namespace {

std::vector<std::string> read(const LineSpool& s, std::size_t first, std::size_t count) {
  std::vector<std::string> out;
  s.read(first, count, [&](std::string_view r) { out.emplace_back(r); });
  return out;
}

TEST(LineSpool, PagesAnywhereWithNewlinesAndEmptyRecords) {
  LineSpool s;
  for (int i = 0; i < 1000; ++i) {
    s.append(i % 7 == 0 ? "" : "record " + std::to_string(i) + "\nsecond line");
  }
  EXPECT_EQ(s.size(), 1000u);
  EXPECT_EQ(read(s, 300, 3),
            (std::vector<std::string>{"record 300\nsecond line", "", "record 302\nsecond line"}));
  EXPECT_EQ(read(s, 255, 2),
            (std::vector<std::string>{"record 255\nsecond line", "record 256\nsecond line"}));
  EXPECT_EQ(read(s, 998, 10).size(), 2u);  // what there is
  EXPECT_TRUE(read(s, 1000, 10).empty());
  EXPECT_TRUE(read(s, 5, 0).empty());
  // Appending after a read goes to the end, not where the read stopped.
  s.append("last");
  EXPECT_EQ(read(s, 999, 5), (std::vector<std::string>{"record 999\nsecond line", "last"}));
  EXPECT_EQ(read(s, 0, 1), std::vector<std::string>{""});
}

TEST(LineSpool, CopiesEveryRecordSeparated) {
  LineSpool s;
  std::ostringstream none;
  EXPECT_FALSE(s.copy(none, ", "));
  EXPECT_EQ(none.str(), "");
  s.append("a");
  s.append("b");
  s.append("c");
  std::ostringstream out;
  EXPECT_TRUE(s.copy(out, ", "));
  EXPECT_EQ(out.str(), "a, b, c");
}

core::PlanItem item(const char* address, std::optional<core::Id> user = std::nullopt) {
  core::PlanItem i;
  i.address = core::Address::parse(address).value();
  i.user_id = user;
  return i;
}

TEST(PlanDigest, TheSameRunDigestsAlikeAndAnyDifferenceShows) {
  auto digest = [](const std::vector<std::pair<core::PlanItem, std::string>>& items,
                   std::vector<std::pair<std::size_t, std::string>> errors = {}) {
    PlanDigest d;
    for (const auto& [line, message] : errors) d.error(line, message);
    for (const auto& [i, json] : items) d.item(i, json);
    return d.value();
  };
  const auto a = item("a@acme.example", 7), b = item("b@acme.example");
  const auto base = digest({{a, "{a}"}, {b, "{b}"}});
  EXPECT_EQ(base, digest({{a, "{a}"}, {b, "{b}"}}));
  EXPECT_NE(base, digest({{b, "{b}"}, {a, "{a}"}}));                          // order
  EXPECT_NE(base, digest({{item("a@acme.example", 8), "{a}"}, {b, "{b}"}}));  // another user
  EXPECT_NE(base, digest({{a, "{a}{"}, {b, "b}"}}));                          // where one ends
  EXPECT_NE(base, digest({{a, "{a}"}, {b, "{b}"}}, {{3, "bad address"}}));
  EXPECT_NE(digest({}, {{3, "bad"}}), digest({}, {{4, "bad"}}));
  // value() does not end the digest: more may follow.
  PlanDigest d;
  d.item(a, "{a}");
  const auto first = d.value();
  EXPECT_EQ(first, d.value());
  d.item(b, "{b}");
  EXPECT_EQ(d.value(), base);
}

}  // namespace
}  // namespace mailroster::directory
