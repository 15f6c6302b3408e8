#include "verify/harvest_guard.hpp"

#include <algorithm>

namespace mailroster::verify {

// Past refuse_after the verdict is the same: no more than that is kept per client.
HarvestGuard::HarvestGuard(HarvestSettings settings)
    : settings_(settings), unknown_(settings.window, settings.refuse_after) {}

HarvestGuard::Verdict HarvestGuard::check(const std::string& client, core::TimePoint now) {
  if (auto it = blocked_until_.find(client); it != blocked_until_.end()) {
    if (now < it->second) return Verdict::refuse;
    blocked_until_.erase(it);
  }
  const auto unknown = unknown_.count(client, now);
  if (unknown >= settings_.refuse_after) {
    blocked_until_[client] = now + settings_.block;
    return Verdict::refuse;
  }
  return unknown >= settings_.slow_after ? Verdict::slow : Verdict::ok;
}

bool HarvestGuard::exempt(std::string_view client_ip) const {
  if (settings_.exempt.empty()) return false;
  const auto ip = core::IpAddress::parse(client_ip);
  return ip && std::any_of(settings_.exempt.begin(), settings_.exempt.end(),
                           [&](const core::Cidr& n) { return n.contains(*ip); });
}

void HarvestGuard::reconfigure(const HarvestSettings& settings) {
  settings_ = settings;
  unknown_.reconfigure(settings.window, settings.refuse_after);
}

void HarvestGuard::record_unknown(const std::string& client, core::TimePoint now) {
  unknown_.add(client, now);
}

void HarvestGuard::sweep(core::TimePoint now) {
  unknown_.sweep(now);
  std::erase_if(blocked_until_, [&](const auto& entry) { return entry.second <= now; });
}

}  // namespace mailroster::verify
