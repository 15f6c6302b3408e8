// The SMTP Discovery lifecycle over the store: it records what the pure rules of
// core/discovery.hpp decide, for every path alike (inbound and outbound mail, the CLI, the
// HTTP API, the maintenance job):
//   - clean inbound deliveries and clean outbound messages of non-users;
//   - alias detection when an address becomes discovered (auto-add or suggestion);
//   - expiry of discovered addresses nobody handled (-> user or invalid);
//   - the administrator's actions on discovered and invalid addresses, several at once and
//     all-or-nothing, each with an audit event naming the actor.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
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

// One clean message for SMTP Discovery to count: delivered to an address of a company that
// is not a user's (inbound), or sent out by one (outbound).
struct CleanMail {
  enum class Direction { inbound, outbound };
  Direction direction = Direction::inbound;
  core::Address address;
  // When it was delivered (sent); none: now. A count written late (it waited for a database
  // that could not take it) counts when its mail came.
  std::optional<core::TimePoint> at;
};

// What counting one CleanMail did; error: why it could not be counted; again: because the
// database could not take it now (busy with another write, its disk full, gone), so that it is
// worth trying again.
struct Counted {
  Outcome outcome = Outcome::none;
  std::string error;
  bool again = false;
};

struct ExpiryRun {
  std::vector<std::pair<std::string, Outcome>> changed;  // address -> user or invalid
};

class DiscoveryService {
 public:
  DiscoveryService(store::Store& store, const core::Clock& clock);

  // One clean inbound message was delivered to a non-user address of company_id (one
  // transaction; throws what the store threw).
  Outcome record_clean_inbound(const core::Address& address);
  // One clean outbound message from a sender of the company that is not a user.
  Outcome record_clean_outbound(const core::Address& sender);
  // Counts many in one transaction, each company's settings read once: mail flow on
  // PostgreSQL came in faster than a transaction per count could be written (about 400 a
  // second). When one of them fails, the transaction is undone and each is counted in one of
  // its own, so that the others still count; the result says what each did, in order. When
  // the database cannot take them now, none is counted and each says `again` (serve's
  // gateway::DiscoveryCounts keeps them and tries again).
  std::vector<Counted> record_clean(const std::vector<CleanMail>& mails);

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
  // Each domain's discovery settings, nullopt where discovery is not active: read once per
  // transaction.
  using ActiveSettings = std::unordered_map<std::string, std::optional<core::DiscoverySettings>>;

  Outcome after_discovered(const core::DiscoveredAddress& d, const core::DiscoverySettings& s);
  // Inside the caller's transaction: when discovery is active for the address's company and
  // the address is not a user, alias or invalid, counts the mail on its discovered entry (new
  // if none).
  Outcome count(const CleanMail& mail, ActiveSettings& active);
  // Counts one in a transaction of its own.
  Outcome record(const CleanMail& mail);
  store::Store& store_;
  const core::Clock& clock_;
  core::Actor actor_{"discovery"};
};

}  // namespace mailroster::lifecycle
