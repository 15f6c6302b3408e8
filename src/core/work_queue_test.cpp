#include "core/work_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace mailroster::core {
namespace {

TEST(WorkQueue, RunsTasksInOrderOffTheCallersThreadAndDrainsOnDestruction) {
  std::vector<int> seen;
  std::atomic<bool> other_thread{true};
  const auto caller = std::this_thread::get_id();
  {
    WorkQueue q("test");
    for (int i = 0; i < 100; ++i) {
      q.post([&, i] {
        if (std::this_thread::get_id() == caller) other_thread = false;
        seen.push_back(i);
      });
    }
  }  // the destructor runs what is still queued
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_TRUE(other_thread);
}

TEST(WorkQueue, PendingCountsQueuedAndRunningTasksAndAFailureDoesNotStopIt) {
  WorkQueue q("test");
  std::mutex gate;
  std::unique_lock held(gate);
  q.post([&] { std::lock_guard wait(gate); });
  q.post([] { throw std::runtime_error("boom"); });
  std::atomic<bool> ran{false};
  q.post([&] { ran = true; });
  EXPECT_EQ(q.pending(), 3u);
  held.unlock();
  for (int i = 0; i < 5000 && q.pending() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(q.pending(), 0u);
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace mailroster::core
