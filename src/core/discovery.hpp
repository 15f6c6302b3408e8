// The SMTP Discovery rules of SPEC.md and seeds/smtp-discovery.txt, as pure functions over
// the model. Every path (SMTP, CLI, API, maintenance) calls these; none re-implements them.
#pragma once

#include <optional>

#include "core/model.hpp"

namespace mailroster::core {

// Discovery runs only when enabled and no directory sync runs every 24 hours
// ("SMTP Discovery will be disabled if LDAP 24-hour sync is enabled").
bool discovery_active(const DiscoverySettings& settings, std::optional<int> sync_every_hours);
// Why discovery is not active, for the administrator ("" when it is): off in the settings, or
// on but forced off by a directory sync that runs every 24 hours.
std::string discovery_off_reason(const DiscoverySettings& settings,
                                 std::optional<int> sync_every_hours);

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

// Outbound: one clean message sent by a company address that is not a user. With
// "auto-add new users detected via outbound" on, the sender becomes a user at once;
// otherwise it is recorded as discovered (via outbound) right away.
struct OutboundOutcome {
  bool create_user = false;
  bool became_discovered = false;
};
OutboundOutcome on_clean_outbound(DiscoveredAddress& d, const DiscoverySettings& settings,
                                  TimePoint now);

// Alias detection: a discovered local@domain2 is an alias candidate of a user local@domain1
// of the same company (seed: firstname.lastname@domain2 for firstname.lastname@domain1).
// `company_users` may hold any users of the company; only simple aliases are detected.
std::optional<Id> alias_candidate(const Address& discovered,
                                  const std::vector<User>& company_users);

// When a discovered address expires if nobody handles it: the notification weeks after it
// was discovered. Never for an address still being counted.
std::optional<TimePoint> expires_at(const DiscoveredAddress& d, const DiscoverySettings& settings);

enum class ExpiryAction { none, make_user, mark_invalid };
// At `now`: nothing yet, or what the expired address becomes ("expired addresses default to
// new user" on: a user with the default role; else invalid).
ExpiryAction expiry_action(const DiscoveredAddress& d, const DiscoverySettings& settings,
                           TimePoint now);

// Weekly reports go out on Thursdays (UTC). The key names a report's week (the Thursday's
// date, "2026-11-26"), so one is never sent twice; nullopt on other days.
std::optional<std::string> report_week(TimePoint now);

}  // namespace mailroster::core
