#include "core/discovery.hpp"

#include <algorithm>

namespace mailroster::core {

bool discovery_active(const DiscoverySettings& settings, std::optional<int> sync_every_hours) {
  return settings.enabled && !(sync_every_hours && *sync_every_hours == 24);
}

std::string discovery_off_reason(const DiscoverySettings& settings,
                                 std::optional<int> sync_every_hours) {
  if (!settings.enabled) return "SMTP Discovery is off in the settings";
  if (!discovery_active(settings, sync_every_hours)) {
    return "SMTP Discovery is enabled but off while a directory sync runs every 24 hours: "
           "unknown addresses are rejected, not verified by callout";
  }
  return "";
}

namespace {
// Mail of `now` came: first seen then unless seen earlier (a count written late may be older).
void seen(DiscoveredAddress& d, TimePoint now) {
  if (d.first_seen == TimePoint{} || now < d.first_seen) d.first_seen = now;
}
}  // namespace

CleanDeliveryOutcome on_clean_delivery(DiscoveredAddress& d, const DiscoverySettings& settings,
                                       TimePoint now) {
  CleanDeliveryOutcome out;
  if (d.discovered_at) return out;
  out.changed = true;
  seen(d, now);
  // In time order: a count written late (it waited for the database, or another node's) may
  // be older than the last one; the window ends at the latest.
  d.clean_inbound.insert(std::upper_bound(d.clean_inbound.begin(), d.clean_inbound.end(), now),
                         now);
  const auto window_start = d.clean_inbound.back() - std::chrono::days(settings.window_days);
  std::erase_if(d.clean_inbound, [&](TimePoint t) { return t <= window_start; });
  const auto threshold = static_cast<std::size_t>(settings.inbound_threshold);
  if (d.clean_inbound.size() > threshold) {
    d.clean_inbound.erase(d.clean_inbound.begin(),
                          d.clean_inbound.end() - static_cast<std::ptrdiff_t>(threshold));
  }
  if (d.clean_inbound.size() >= threshold) {
    d.discovered_at = d.clean_inbound.back();
    out.became_discovered = true;
  }
  return out;
}

OutboundOutcome on_clean_outbound(DiscoveredAddress& d, const DiscoverySettings& settings,
                                  TimePoint now) {
  OutboundOutcome out;
  seen(d, now);
  ++d.outbound_messages;
  if (settings.auto_add_outbound) {
    out.create_user = true;
  } else if (!d.discovered_at) {
    d.discovered_at = now;
    out.became_discovered = true;
  }
  return out;
}

std::optional<Id> alias_candidate(const Address& discovered,
                                  const std::vector<User>& company_users) {
  const auto local = ascii_lower(discovered.local());
  for (const auto& u : company_users) {
    if (u.role == Role::functional) continue;  // shared mailboxes are not a person's aliases
    if (u.address.domain() != discovered.domain() && ascii_lower(u.address.local()) == local) {
      return u.id;
    }
  }
  return std::nullopt;
}

std::optional<TimePoint> expires_at(const DiscoveredAddress& d, const DiscoverySettings& settings) {
  if (!d.discovered_at) return std::nullopt;
  return *d.discovered_at + std::chrono::weeks(settings.notification_weeks);
}

ExpiryAction expiry_action(const DiscoveredAddress& d, const DiscoverySettings& settings,
                           TimePoint now) {
  const auto at = expires_at(d, settings);
  if (!at || now < *at) return ExpiryAction::none;
  return settings.expired_to_new_user ? ExpiryAction::make_user : ExpiryAction::mark_invalid;
}

std::optional<std::string> report_week(TimePoint now) {
  const std::chrono::sys_days day = std::chrono::floor<std::chrono::days>(now);
  if (std::chrono::weekday{day} != std::chrono::Thursday) return std::nullopt;
  return format_day(TimePoint{day});
}

}  // namespace mailroster::core
