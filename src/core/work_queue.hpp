// One background thread that runs tasks in the order they were posted: work that must not hold
// up the thread producing it (the SMTP I/O thread counting deliveries for discovery, which
// writes to the store and would wait there while an import or a sync writes). A task's
// exception is logged, never lost silently, and does not stop the queue. The destructor runs
// what is still queued, then stops.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace mailroster::core {

class WorkQueue {
 public:
  explicit WorkQueue(std::string name);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void post(std::function<void()> task);
  // Tasks posted and not yet finished (queued or running).
  std::size_t pending() const;

 private:
  std::string name_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> tasks_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace mailroster::core
