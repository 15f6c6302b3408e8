#include "gateway/discovery_counts.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <utility>

namespace mailroster::gateway {

using lifecycle::CleanMail;
using lifecycle::Outcome;

DiscoveryCounts::DiscoveryCounts(Writer write, admin::Metrics& metrics, std::size_t batch,
                                 std::size_t max_waiting)
    : write_(std::move(write)),
      metrics_(metrics),
      batch_(std::max<std::size_t>(batch, 1)),
      max_waiting_(std::max<std::size_t>(max_waiting, 1)) {
  metrics.describe("mailroster_discovery_clean_deliveries_total",
                   "Clean deliveries counted toward discovery", "counter", {""});
  metrics.describe("mailroster_discovered_addresses_total", "Addresses that became discovered",
                   "counter", {""});
  metrics.describe("mailroster_discovery_counts_dropped_total",
                   "Discovery counts dropped: more waited for the database than are kept",
                   "counter", {""});
}

bool DiscoveryCounts::add(CleanMail mail) {
  std::lock_guard lock(mutex_);
  waiting_.push_back(std::move(mail));
  return waiting_.size() == 1;
}

std::size_t DiscoveryCounts::pending() const {
  std::lock_guard lock(mutex_);
  return waiting_.size() + writing_;
}

bool DiscoveryCounts::retry_due() const {
  std::lock_guard lock(mutex_);
  return retry_due_;
}

void DiscoveryCounts::flush() {
  std::vector<CleanMail> taken;
  {
    std::lock_guard lock(mutex_);
    taken.swap(waiting_);
    writing_ = taken.size();
    retry_due_ = false;
  }
  std::vector<CleanMail> again;
  std::string why;
  for (auto from = taken.begin(); from != taken.end();) {
    if (!again.empty()) {  // the database cannot take them now: the rest waits with those
      again.insert(again.end(), std::make_move_iterator(from),
                   std::make_move_iterator(taken.end()));
      break;
    }
    const auto to = from + std::min<std::ptrdiff_t>(std::distance(from, taken.end()),
                                                    static_cast<std::ptrdiff_t>(batch_));
    std::vector<CleanMail> mails(std::make_move_iterator(from), std::make_move_iterator(to));
    std::vector<lifecycle::Counted> counted;
    try {
      counted = write_(mails);
    } catch (const std::exception& e) {  // record_clean reports errors in its result
      counted.assign(mails.size(), {Outcome::none, e.what()});
    }
    report(mails, counted);
    for (std::size_t i = 0; i < mails.size() && i < counted.size(); ++i) {
      if (!counted[i].again) continue;
      why = counted[i].error;
      again.push_back(std::move(mails[i]));
    }
    std::lock_guard lock(mutex_);
    writing_ -= mails.size();
    from = to;
  }
  keep(std::move(again), why);
}

void DiscoveryCounts::keep(std::vector<CleanMail> again, const std::string& why) {
  std::lock_guard lock(mutex_);
  writing_ = 0;
  if (again.empty()) {
    writes_.written();
    return;
  }
  again.insert(again.end(), std::make_move_iterator(waiting_.begin()),
               std::make_move_iterator(waiting_.end()));
  waiting_ = std::move(again);
  retry_due_ = true;
  writes_.failed(why);
  if (waiting_.size() > max_waiting_) {
    const auto over = waiting_.size() - max_waiting_;
    waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(over));
    metrics_.add("mailroster_discovery_counts_dropped_total", {}, over);
    spdlog::warn("discovery: {} counts dropped, the oldest: more than {} waited", over,
                 max_waiting_);
  }
}

void DiscoveryCounts::report(const std::vector<CleanMail>& mails,
                             const std::vector<lifecycle::Counted>& counted) {
  for (std::size_t i = 0; i < mails.size() && i < counted.size(); ++i) {
    const auto& address = mails[i].address;
    const auto& [outcome, error, again] = counted[i];
    const bool inbound = mails[i].direction == CleanMail::Direction::inbound;
    if (again) {
      continue;  // kept to try again (writes_ says so once)
    } else if (!error.empty()) {
      // The message is delivered; losing one count is better than failing the delivery.
      spdlog::error("discovery: cannot record {} {}: {}",
                    inbound ? "delivery to" : "outbound sender", address.str(), error);
    } else if (outcome == Outcome::none) {
      continue;
    } else if (inbound) {
      metrics_.add("mailroster_discovery_clean_deliveries_total");
      if (outcome != Outcome::counted) {
        metrics_.add("mailroster_discovered_addresses_total");
        spdlog::info("discovery: {} {}", address.str(), lifecycle::to_string(outcome));
      }
    } else if (outcome != Outcome::counted) {
      spdlog::info("discovery: outbound sender {} {}", address.str(),
                   lifecycle::to_string(outcome));
    }
  }
}

}  // namespace mailroster::gateway
