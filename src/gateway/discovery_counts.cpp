#include "gateway/discovery_counts.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>

namespace mailroster::gateway {

using lifecycle::CleanMail;
using lifecycle::Outcome;

DiscoveryCounts::DiscoveryCounts(Writer write, admin::Metrics& metrics, std::size_t batch)
    : write_(std::move(write)), metrics_(metrics), batch_(std::max<std::size_t>(batch, 1)) {
  metrics.describe("mailroster_discovery_clean_deliveries_total",
                   "Clean deliveries counted toward discovery", "counter", {""});
  metrics.describe("mailroster_discovered_addresses_total", "Addresses that became discovered",
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

void DiscoveryCounts::flush() {
  std::vector<CleanMail> taken;
  {
    std::lock_guard lock(mutex_);
    taken.swap(waiting_);
    writing_ = taken.size();
  }
  for (auto from = taken.begin(); from != taken.end();) {
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
    std::lock_guard lock(mutex_);
    writing_ -= mails.size();
    from = to;
  }
}

void DiscoveryCounts::report(const std::vector<CleanMail>& mails,
                             const std::vector<lifecycle::Counted>& counted) {
  for (std::size_t i = 0; i < mails.size() && i < counted.size(); ++i) {
    const auto& address = mails[i].address;
    const auto& [outcome, error] = counted[i];
    const bool inbound = mails[i].direction == CleanMail::Direction::inbound;
    if (!error.empty()) {
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
