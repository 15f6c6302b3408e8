#include "core/discovery.hpp"

#include <algorithm>

namespace mailroster::core {

bool discovery_active(const DiscoverySettings& settings, std::optional<int> sync_every_hours) {
  return settings.enabled && !(sync_every_hours && *sync_every_hours == 24);
}

CleanDeliveryOutcome on_clean_delivery(DiscoveredAddress& d, const DiscoverySettings& settings,
                                       TimePoint now) {
  CleanDeliveryOutcome out;
  if (d.discovered_at) return out;
  out.changed = true;
  if (d.first_seen == TimePoint{}) d.first_seen = now;
  const auto window_start = now - std::chrono::days(settings.window_days);
  std::erase_if(d.clean_inbound, [&](TimePoint t) { return t <= window_start; });
  d.clean_inbound.push_back(now);
  const auto threshold = static_cast<std::size_t>(settings.inbound_threshold);
  if (d.clean_inbound.size() > threshold) {
    d.clean_inbound.erase(d.clean_inbound.begin(),
                          d.clean_inbound.end() - static_cast<std::ptrdiff_t>(threshold));
  }
  if (d.clean_inbound.size() >= threshold) {
    d.discovered_at = now;
    out.became_discovered = true;
  }
  return out;
}

}  // namespace mailroster::core
