// The SMTP Discovery lifecycle over the store: it records what the pure rules of
// core/discovery.hpp decide, for every path alike (inbound and outbound mail, the CLI, the
// HTTP API, the maintenance job):
//   - clean inbound deliveries and clean outbound messages of non-users;
//   - alias detection when an address becomes discovered (auto-add or suggestion);
//   - expiry of discovered addresses nobody handled (-> user or invalid);
//   - the administrator's actions on discovered and invalid addresses, several at once and
//     all-or-nothing, each with an audit event naming the actor.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/model.hpp"
#include "store/store.hpp"

namespace mailroster::lifecycle {

// What happened to an address, for logs and callers.
enum class Outcome { none, counted, discovered, became_alias, became_user, became_invalid };
std::string_view to_string(Outcome o);

// One administrator action on a discovered address (seed: the Select menu).
struct DiscoveredAction {
  enum class Kind { create_user, create_functional, mark_invalid, add_alias };
  Kind kind = Kind::create_user;
  core::Address address;
  std::string first_name;          // create_user
  std::string surname;             // create_user
  std::optional<core::Role> role;  // create_user; default: the company's default role
  core::Address alias_of;          // add_alias: the user's primary address
};

struct ExpiryRun {
  std::vector<std::pair<std::string, Outcome>> changed;  // address -> user or invalid
};

class DiscoveryService {
 public:
  // patience: how long a count may go on trying while the database is busy (see record()).
  DiscoveryService(store::Store& store, const core::Clock& clock,
                   std::chrono::steady_clock::duration patience = std::chrono::minutes(1));

  // One clean inbound message was delivered to a non-user address of company_id.
  Outcome record_clean_inbound(const core::Address& address);
  // One clean outbound message from a sender of the company that is not a user.
  Outcome record_clean_outbound(const core::Address& sender);

  // Applies the actions of one company atomically: all of them or, on the first error,
  // none (the error names the address). Every address must be on the discovered list.
  void apply(core::Id company_id, const std::vector<DiscoveredAction>& actions,
             const core::Actor& actor);

  // Invalid list: make a user of an invalid address (fixing it), or forget it.
  core::User create_user_from_invalid(const core::Address& address, std::string first_name,
                                      std::string surname, std::optional<core::Role> role,
                                      const core::Actor& actor);

  // Expires every discovered address whose notification weeks have passed at `now`.
  ExpiryRun expire(core::TimePoint now);

 private:
  Outcome after_discovered(const core::DiscoveredAddress& d, const core::DiscoverySettings& s);
  // In one transaction: when discovery is active for the address's company and the address
  // is not a user, alias or invalid, applies `rule` to its discovered entry (new if none).
  // While the database is busy (another process's import or sync holds the write: SQLite
  // gives up after 5 s), the count is tried again, for up to `patience_`: the counts queued
  // behind it wait with it instead of each being lost. Once one ran out of patience, the
  // next try once each until one gets through, so that a long outage (or a shutdown in one)
  // does not hold every queued count a minute.
  Outcome record(
      const core::Address& address,
      const std::function<Outcome(core::DiscoveredAddress&, const core::DiscoverySettings&)>& rule);
  store::Store& store_;
  const core::Clock& clock_;
  std::chrono::steady_clock::duration patience_;
  std::atomic<bool> patient_{true};
  core::Actor actor_{"discovery"};
};

}  // namespace mailroster::lifecycle
