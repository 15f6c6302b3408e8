#include "gateway/discovery_counts.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>

namespace mailroster::gateway {
namespace {

using lifecycle::CleanMail;
using lifecycle::Counted;
using lifecycle::Outcome;

CleanMail inbound(const std::string& a) {
  return {CleanMail::Direction::inbound, core::Address::parse(a).value()};
}

double metric(admin::Metrics& metrics, const std::string& name) {
  const auto text = metrics.render();
  const auto at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
}

// What waits is written in batches of at most `batch`, in the order it came; only the first
// add of an empty queue asks for a flush. What comes during a flush asks for the next one, so
// that the caller's queue runs its other tasks in between.
TEST(DiscoveryCounts, WritesWhatWaitsInBatchesAndAsksForAFlushOnce) {
  admin::Metrics metrics;
  std::vector<std::vector<std::string>> batches;
  DiscoveryCounts* self = nullptr;
  std::vector<bool> late_asked;
  DiscoveryCounts counts(
      [&](const std::vector<CleanMail>& mails) {
        batches.emplace_back();
        for (const auto& m : mails) batches.back().push_back(m.address.str());
        EXPECT_GE(self->pending(), mails.size()) << "a batch being written is pending";
        if (batches.size() == 1) {  // came meanwhile
          late_asked.push_back(self->add(inbound("late@a.example")));
          late_asked.push_back(self->add(inbound("later@a.example")));
        }
        return std::vector<Counted>(mails.size(), {Outcome::counted, ""});
      },
      metrics, 2);
  self = &counts;
  EXPECT_TRUE(counts.add(inbound("1@a.example")));
  EXPECT_FALSE(counts.add(inbound("2@a.example")));
  EXPECT_FALSE(counts.add(inbound("3@a.example")));
  EXPECT_EQ(counts.pending(), 3u);
  counts.flush();
  EXPECT_EQ(batches, (std::vector<std::vector<std::string>>{{"1@a.example", "2@a.example"},
                                                            {"3@a.example"}}));
  EXPECT_EQ(late_asked, (std::vector<bool>{true, false})) << "the first late one asks";
  EXPECT_EQ(counts.pending(), 2u);
  counts.flush();
  EXPECT_EQ(batches.back(), (std::vector<std::string>{"late@a.example", "later@a.example"}));
  EXPECT_EQ(counts.pending(), 0u);
  EXPECT_EQ(metric(metrics, "mailroster_discovery_clean_deliveries_total"), 5);
  counts.flush();  // a flush asked for with nothing left: nothing written
  EXPECT_EQ(batches.size(), 3u);
  EXPECT_TRUE(counts.add(inbound("4@a.example"))) << "empty again: the next add asks";
}

// Outcomes are counted as they were; a writer that throws loses that batch's counts (logged),
// not the ones after it.
TEST(DiscoveryCounts, CountsOutcomesAndGoesOnAfterAFailedBatch) {
  admin::Metrics metrics;
  int calls = 0;
  DiscoveryCounts counts(
      [&](const std::vector<CleanMail>&) -> std::vector<Counted> {
        if (++calls == 1) throw std::runtime_error("database gone");
        return {{Outcome::discovered, ""}, {Outcome::none, ""}};
      },
      metrics, 2);
  for (const char* a : {"1@a.example", "2@a.example", "3@a.example", "4@a.example"}) {
    counts.add(inbound(a));
  }
  counts.flush();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(counts.pending(), 0u);
  EXPECT_EQ(metric(metrics, "mailroster_discovery_clean_deliveries_total"), 1);
  EXPECT_EQ(metric(metrics, "mailroster_discovered_addresses_total"), 1);
}

std::vector<std::string> addresses(const std::vector<CleanMail>& mails) {
  std::vector<std::string> out;
  for (const auto& m : mails) out.push_back(m.address.str());
  return out;
}

// Counts the database cannot take now (its disk full, gone, busy) wait, in their order and
// before what comes meanwhile, and the rest of that flush waits with them untried; add() does
// not ask for a flush while they wait, retry_due() does, and the next flush writes them all.
TEST(DiscoveryCounts, CountsTheDatabaseCannotTakeWaitAndAreTriedAgain) {
  admin::Metrics metrics;
  bool full = true;
  std::vector<std::vector<std::string>> tried;
  std::vector<std::optional<core::TimePoint>> stamps;
  DiscoveryCounts counts(
      [&](const std::vector<CleanMail>& mails) {
        tried.push_back(addresses(mails));
        stamps.push_back(mails.front().at);
        if (full) return std::vector<Counted>(mails.size(), {Outcome::none, "disk full", true});
        return std::vector<Counted>(mails.size(), {Outcome::counted, ""});
      },
      metrics, 2);
  const core::TimePoint came{std::chrono::sys_days{std::chrono::December / 7 / 2026}};
  counts.add({CleanMail::Direction::inbound, core::Address::parse("1@a.example").value(), came});
  for (const char* a : {"2@a.example", "3@a.example"}) counts.add(inbound(a));
  EXPECT_FALSE(counts.retry_due());
  counts.flush();
  EXPECT_EQ(tried.size(), 1u) << "the second batch is not tried";
  EXPECT_EQ(counts.pending(), 3u);
  EXPECT_TRUE(counts.retry_due());
  EXPECT_TRUE(counts.writes().failing());
  EXPECT_FALSE(counts.add(inbound("4@a.example"))) << "the timer's retry writes it";
  counts.flush();
  EXPECT_EQ(tried.size(), 2u);
  EXPECT_EQ(counts.pending(), 4u);
  full = false;
  counts.flush();
  EXPECT_FALSE(counts.retry_due());
  EXPECT_FALSE(counts.writes().failing());
  EXPECT_EQ(counts.pending(), 0u);
  EXPECT_EQ(tried[2], (std::vector<std::string>{"1@a.example", "2@a.example"}));
  EXPECT_EQ(tried[3], (std::vector<std::string>{"3@a.example", "4@a.example"}));
  EXPECT_EQ(stamps[2], came) << "tried again with the time its mail came";
  EXPECT_EQ(metric(metrics, "mailroster_discovery_clean_deliveries_total"), 4);
  EXPECT_EQ(metric(metrics, "mailroster_discovery_counts_dropped_total"), 0);
  EXPECT_TRUE(counts.add(inbound("5@a.example"))) << "written again: an add asks again";
}

// At most max_waiting wait: past that the oldest are dropped, and counted.
TEST(DiscoveryCounts, AtMostMaxWaitingWaitTheOldestAreDropped) {
  admin::Metrics metrics;
  std::vector<std::string> written;
  bool full = true;
  DiscoveryCounts counts(
      [&](const std::vector<CleanMail>& mails) {
        if (full) return std::vector<Counted>(mails.size(), {Outcome::none, "gone", true});
        for (const auto& a : addresses(mails)) written.push_back(a);
        return std::vector<Counted>(mails.size(), {Outcome::counted, ""});
      },
      metrics, 10, 3);
  for (const char* a : {"1@a.example", "2@a.example", "3@a.example", "4@a.example"}) {
    counts.add(inbound(a));
  }
  counts.flush();
  EXPECT_EQ(counts.pending(), 3u);
  counts.add(inbound("5@a.example"));
  counts.flush();
  EXPECT_EQ(metric(metrics, "mailroster_discovery_counts_dropped_total"), 2);
  full = false;
  counts.flush();
  EXPECT_EQ(written, (std::vector<std::string>{"3@a.example", "4@a.example", "5@a.example"}));
}

}  // namespace
}  // namespace mailroster::gateway
