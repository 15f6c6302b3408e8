// A producer on its own thread, a few items ahead of its consumer: a CSV file is parsed, or a
// directory read, while the caller plans and writes what came before (a sync uses both cores).
//
// The producer is handed push(item), which waits while `depth` items wait unconsumed and
// returns false once the consumer is gone (the producer should then return). An exception the
// producer throws comes out of next(), after the items it pushed before it.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace mailroster::core {

template <class T>
class ReadAhead {
 public:
  using Push = std::function<bool(T)>;

  ReadAhead(std::function<void(const Push&)> produce, std::size_t depth) {
    thread_ = std::thread([this, produce = std::move(produce), depth] {
      const Push push = [this, depth](T item) {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return stop_ || ready_.size() < depth; });
        if (stop_) return false;
        ready_.push_back(std::move(item));
        changed_.notify_all();
        return true;
      };
      std::exception_ptr failure;
      try {
        produce(push);
      } catch (...) {
        failure = std::current_exception();
      }
      std::lock_guard lock(mutex_);
      failure_ = failure;
      finished_ = true;
      changed_.notify_all();
    });
  }

  // Stops the producer (its next push returns false) and waits for it to return: a consumer
  // that gives up early does not wait for the whole source.
  ~ReadAhead() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      changed_.notify_all();
    }
    thread_.join();
  }
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // The next item; nullopt once the producer returned and everything it pushed was taken.
  std::optional<T> next() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !ready_.empty() || finished_; });
    if (!ready_.empty()) {
      auto item = std::move(ready_.front());
      ready_.pop_front();
      changed_.notify_all();
      return item;
    }
    if (failure_) std::rethrow_exception(failure_);
    return std::nullopt;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<T> ready_;
  bool finished_ = false;  // the producer returned (or threw)
  bool stop_ = false;      // the consumer is gone
  std::exception_ptr failure_;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace mailroster::core
