#include "core/window_counts.hpp"

#include <algorithm>

namespace mailroster::core {

WindowCounts::WindowCounts(std::chrono::seconds window, std::size_t keep)
    : window_(window), keep_(std::max<std::size_t>(keep, 1)) {}

void WindowCounts::prune(std::deque<TimePoint>& events, TimePoint now) const {
  while (!events.empty() && events.front() <= now - window_) events.pop_front();
}

void WindowCounts::push(std::deque<TimePoint>& events, std::uint32_t n, TimePoint now) const {
  prune(events, now);
  for (std::uint32_t i = 0; i < n && i < keep_; ++i) events.push_back(now);
  while (events.size() > keep_) events.pop_front();
}

void WindowCounts::reconfigure(std::chrono::seconds window, std::size_t keep) {
  window_ = window;
  keep_ = std::max<std::size_t>(keep, 1);
}

void WindowCounts::add(const std::string& key, TimePoint now) {
  push(events_[key], 1, now);
  ++outgoing_[key];
}

void WindowCounts::add_remote(const std::string& key, std::uint32_t n, TimePoint now) {
  if (n > 0) push(events_[key], n, now);
}

std::size_t WindowCounts::count(const std::string& key, TimePoint now) {
  auto it = events_.find(key);
  if (it == events_.end()) return 0;
  auto& events = it->second;
  prune(events, now);
  if (events.empty()) {
    events_.erase(it);
    return 0;
  }
  return events.size();
}

std::vector<TallyCount> WindowCounts::take_outgoing() {
  std::vector<TallyCount> out;
  out.reserve(outgoing_.size());
  for (const auto& [key, n] : outgoing_) out.push_back({key, n});
  outgoing_.clear();
  return out;
}

void WindowCounts::sweep(TimePoint now) {
  std::erase_if(events_, [&](const auto& entry) {
    return entry.second.empty() || entry.second.back() <= now - window_;
  });
}

}  // namespace mailroster::core
