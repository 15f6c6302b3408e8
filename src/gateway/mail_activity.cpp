#include "gateway/mail_activity.hpp"

#include <chrono>
#include <utility>

namespace mailroster::gateway {

void MailActivity::seen(core::Id user) {
  const auto hour =
      std::chrono::duration_cast<std::chrono::hours>(clock_.now().time_since_epoch()).count();
  std::lock_guard lock(mutex_);
  if (hour != hour_) {
    hour_ = hour;
    this_hour_.clear();
  }
  if (this_hour_.insert(user).second) pending_.push_back(user);
}

std::size_t MailActivity::flush(const Writer& write) {
  std::vector<core::Id> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(pending_);
  }
  if (batch.empty()) return 0;
  try {
    write(batch, clock_.now());
  } catch (...) {
    std::lock_guard lock(mutex_);
    pending_.insert(pending_.begin(), batch.begin(), batch.end());
    throw;
  }
  return batch.size();
}

std::size_t MailActivity::pending() const {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

}  // namespace mailroster::gateway
