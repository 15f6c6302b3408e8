#include "core/read_ahead.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace mailroster::core {
namespace {

TEST(ReadAhead, DeliversItemsInOrderFromAnotherThreadThenTheEnd) {
  const auto caller = std::this_thread::get_id();
  std::atomic<bool> other_thread{false};
  ReadAhead<int> ahead(
      [&](const ReadAhead<int>::Push& push) {
        other_thread = std::this_thread::get_id() != caller;
        for (int i = 0; i < 1000; ++i) {
          if (!push(i)) return;
        }
      },
      3);
  for (int i = 0; i < 1000; ++i) {
    auto got = ahead.next();
    ASSERT_TRUE(got);
    EXPECT_EQ(*got, i);
  }
  EXPECT_FALSE(ahead.next());
  EXPECT_FALSE(ahead.next());
  EXPECT_TRUE(other_thread);
}

TEST(ReadAhead, AFailureComesOutAfterWhatWasPushedBeforeIt) {
  ReadAhead<int> ahead(
      [](const ReadAhead<int>::Push& push) {
        push(1);
        push(2);
        throw std::runtime_error("connection lost");
      },
      5);
  EXPECT_EQ(ahead.next(), 1);
  EXPECT_EQ(ahead.next(), 2);
  EXPECT_THROW(
      {
        try {
          ahead.next();
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "connection lost");
          throw;
        }
      },
      std::runtime_error);
}

// The producer waits while `depth` items wait, and a consumer that gives up stops it: its next
// push returns false, and the destructor does not wait for the rest of the source.
TEST(ReadAhead, StaysAtMostDepthAheadAndStopsWhenTheConsumerGivesUp) {
  std::atomic<int> pushed{0};
  std::atomic<bool> refused{false};
  {
    ReadAhead<int> ahead(
        [&](const ReadAhead<int>::Push& push) {
          for (int i = 0; i < 1000000; ++i) {
            if (!push(i)) {
              refused = true;
              return;
            }
            ++pushed;
          }
        },
        2);
    EXPECT_EQ(ahead.next(), 0);
    for (int i = 0; i < 200 && pushed < 3; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_LE(pushed.load(), 3);  // the one taken and two waiting
  }
  EXPECT_TRUE(refused);
  EXPECT_LE(pushed.load(), 3);
}

}  // namespace
}  // namespace mailroster::core
