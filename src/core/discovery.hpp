// The SMTP Discovery rules of SPEC.md and seeds/smtp-discovery.txt, as pure functions over
// the model. Every path (SMTP, CLI, API, maintenance) calls these; none re-implements them.
#pragma once

#include <optional>

#include "core/model.hpp"

namespace mailroster::core {

// Discovery runs only when enabled and no directory sync runs every 24 hours
// ("SMTP Discovery will be disabled if LDAP 24-hour sync is enabled").
bool discovery_active(const DiscoverySettings& settings, std::optional<int> sync_every_hours);

struct CleanDeliveryOutcome {
  bool changed = false;  // d must be saved
  bool became_discovered = false;
};

// One clean inbound message was delivered to d's address at `now`. Deliveries older than
// the window are forgotten, and only the newest `threshold` are kept (no more can matter);
// reaching the threshold within the window makes the address discovered, once. Mail to an
// address already discovered changes nothing.
CleanDeliveryOutcome on_clean_delivery(DiscoveredAddress& d, const DiscoverySettings& settings,
                                       TimePoint now);

}  // namespace mailroster::core
