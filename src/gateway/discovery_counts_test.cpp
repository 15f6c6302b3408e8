#include "gateway/discovery_counts.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace mailroster::gateway
