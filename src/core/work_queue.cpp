#include "core/work_queue.hpp"

#include <spdlog/spdlog.h>

#include <exception>

namespace mailroster::core {

WorkQueue::WorkQueue(std::string name)
    : name_(std::move(name)), thread_([this] {
        std::unique_lock lock(mutex_);
        while (true) {
          changed_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
          if (tasks_.empty()) return;  // stopping, and everything queued has run
          auto task = std::move(tasks_.front());
          tasks_.pop_front();
          ++running_;
          lock.unlock();
          try {
            task();
          } catch (const std::exception& e) {
            spdlog::error("{}: {}", name_, e.what());
          }
          lock.lock();
          --running_;
          changed_.notify_all();
        }
      }) {}

WorkQueue::~WorkQueue() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void WorkQueue::post(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  changed_.notify_all();
}

std::size_t WorkQueue::pending() const {
  std::lock_guard lock(mutex_);
  return tasks_.size() + running_;
}

}  // namespace mailroster::core
