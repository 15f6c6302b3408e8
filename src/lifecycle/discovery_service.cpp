#include "lifecycle/discovery_service.hpp"

#include <spdlog/spdlog.h>

#include "core/discovery.hpp"

namespace mailroster::lifecycle {

using core::ErrorCode;
using core::Failure;
using store::AddressOwner;

std::string_view to_string(Outcome o) {
  switch (o) {
    case Outcome::none:
      return "none";
    case Outcome::counted:
      return "counted";
    case Outcome::discovered:
      return "discovered";
    case Outcome::became_alias:
      return "became_alias";
    case Outcome::became_user:
      return "became_user";
    case Outcome::became_invalid:
      return "became_invalid";
  }
  return "?";
}

namespace {
core::Id company_of(store::Store& store, const core::Address& a) {
  auto d = store.find_domain(a.domain());
  if (!d) {
    throw Failure(ErrorCode::invalid_argument, "domain '" + a.domain() + "' is not registered");
  }
  return d->company_id;
}

// A user the discovery lifecycle creates.
store::NewUser discovered_user(const core::Address& a, core::Role role) {
  store::NewUser u;
  u.address = a;
  u.role = role;
  u.source = core::Source::discovery;
  return u;
}

// The discovered entry of an address, or a fresh one when the address is nothing yet;
// nullopt when it already is a user, alias or invalid.
std::optional<core::DiscoveredAddress> discovered_or_new(store::Store& store,
                                                         const core::Address& a) {
  if (auto d = store.find_discovered(a)) return d;
  if (store.resolve(a).kind != AddressOwner::Kind::none) return std::nullopt;
  core::DiscoveredAddress d;
  d.address = a;
  return d;
}
}  // namespace

DiscoveryService::DiscoveryService(store::Store& store, const core::Clock& clock)
    : store_(store), clock_(clock) {}

Outcome DiscoveryService::after_discovered(const core::DiscoveredAddress& d,
                                           const core::DiscoverySettings& s) {
  // The company's users with the same local part: not the whole company, read inside the
  // write transaction of a discovery count (a million users took a second, and every write
  // of mail flow and of the command line waited).
  const auto users =
      store_.list_users({.company_id = d.company_id, .local_part = d.address.local()});
  const auto candidate = core::alias_candidate(d.address, users);
  if (!candidate) return Outcome::discovered;
  if (s.auto_add_aliases) {
    store_.add_alias(*candidate, d.address, actor_);  // removes the discovered entry
    spdlog::info("discovery: {} added as alias of user {}", d.address.str(),
                 store_.user_by_id(*candidate)->address.str());
    return Outcome::became_alias;
  }
  auto suggested = d;
  suggested.suggested_alias_of = candidate;
  store_.save_discovered(suggested, actor_);
  return Outcome::discovered;
}

Outcome DiscoveryService::count(const CleanMail& mail, ActiveSettings& active) {
  const auto& address = mail.address;
  auto known = active.find(address.domain());
  if (known == active.end()) {
    const auto company_id = company_of(store_, address);
    auto settings = store_.discovery_settings(company_id);
    const bool on = core::discovery_active(settings, store_.directory_sync_hours(company_id));
    known = active.emplace(address.domain(), on ? std::optional(std::move(settings)) : std::nullopt)
                .first;
  }
  if (!known->second) return Outcome::none;
  const auto& settings = *known->second;
  auto d = discovered_or_new(store_, address);
  if (!d) return Outcome::none;
  if (mail.direction == CleanMail::Direction::inbound) {
    const auto outcome = core::on_clean_delivery(*d, settings, mail.at.value_or(clock_.now()));
    if (!outcome.changed) return Outcome::none;
    auto saved = store_.save_discovered(*d, actor_);
    return outcome.became_discovered ? after_discovered(saved, settings) : Outcome::counted;
  }
  const auto outcome = core::on_clean_outbound(*d, settings, mail.at.value_or(clock_.now()));
  if (outcome.create_user) {
    store_.add_user(discovered_user(address, settings.default_role), actor_);
    return Outcome::became_user;
  }
  auto saved = store_.save_discovered(*d, actor_);
  return outcome.became_discovered ? after_discovered(saved, settings) : Outcome::counted;
}

Outcome DiscoveryService::record(const CleanMail& mail) {
  Outcome result = Outcome::none;
  store_.atomically([&] {
    ActiveSettings active;
    result = count(mail, active);
  });
  return result;
}

Outcome DiscoveryService::record_clean_inbound(const core::Address& address) {
  return record({CleanMail::Direction::inbound, address});
}

Outcome DiscoveryService::record_clean_outbound(const core::Address& sender) {
  return record({CleanMail::Direction::outbound, sender});
}

namespace {
// A count that failed: worth trying again when the database could not take it now (busy, its
// disk full, gone), not when the count itself was refused.
Counted failed(const std::exception& e) {
  const auto* failure = dynamic_cast<const Failure*>(&e);
  return {Outcome::none, e.what(), failure && failure->code() == ErrorCode::unavailable};
}
}  // namespace

std::vector<Counted> DiscoveryService::record_clean(const std::vector<CleanMail>& mails) {
  std::vector<Counted> counted(mails.size());
  try {
    store_.atomically([&] {
      ActiveSettings active;
      for (std::size_t i = 0; i < mails.size(); ++i) counted[i].outcome = count(mails[i], active);
    });
    return counted;
  } catch (const std::exception& e) {
    const auto why = failed(e);
    if (mails.size() == 1 || why.again) {
      counted.assign(mails.size(), why);
      return counted;
    }
  }
  // One of them failed (a domain removed since its mail came, ...): each alone.
  for (std::size_t i = 0; i < mails.size(); ++i) {
    try {
      counted[i] = {record(mails[i]), ""};
    } catch (const std::exception& e) {
      counted[i] = failed(e);
    }
  }
  return counted;
}

void DiscoveryService::apply(core::Id company_id, const std::vector<DiscoveredAction>& actions,
                             const core::Actor& actor) {
  store_.atomically([&] {
    const auto settings = store_.discovery_settings(company_id);
    for (const auto& a : actions) {
      auto d = store_.find_discovered(a.address);
      if (!d || d->company_id != company_id) {
        throw Failure(ErrorCode::not_found,
                      a.address.str() + " is not on the discovered list of this company",
                      "address");
      }
      switch (a.kind) {
        case DiscoveredAction::Kind::create_user:
        case DiscoveredAction::Kind::create_functional: {
          auto u = discovered_user(a.address, a.kind == DiscoveredAction::Kind::create_functional
                                                  ? core::Role::functional
                                                  : a.role.value_or(settings.default_role));
          u.first_name = a.first_name;
          u.surname = a.surname;
          store_.add_user(u, actor);
          break;
        }
        case DiscoveredAction::Kind::mark_invalid:
          store_.add_invalid(a.address, "marked invalid from the discovered list", actor);
          break;
        case DiscoveredAction::Kind::add_alias: {
          auto target = store_.find_user(a.alias_of);
          if (!target || target->company_id != company_id) {
            throw Failure(ErrorCode::invalid_argument,
                          a.alias_of.str() + " is not a user of this company", "alias_of");
          }
          store_.add_alias(target->id, a.address, actor);
          break;
        }
      }
    }
  });
}

core::User DiscoveryService::create_user_from_invalid(const core::Address& address,
                                                      std::string first_name, std::string surname,
                                                      std::optional<core::Role> role,
                                                      const core::Actor& actor) {
  core::User created;
  store_.atomically([&] {
    auto invalid = store_.find_invalid(address);
    if (!invalid) throw Failure(ErrorCode::not_found, address.str() + " is not marked invalid");
    store::NewUser u;
    u.address = address;
    u.first_name = std::move(first_name);
    u.surname = std::move(surname);
    u.role = role.value_or(store_.discovery_settings(invalid->company_id).default_role);
    created = store_.add_user(u, actor);  // removes the invalid entry: "creating a user fixes it"
  });
  return created;
}

ExpiryRun DiscoveryService::expire(core::TimePoint now) {
  ExpiryRun run;
  for (const auto& company : store_.list_companies()) {
    const auto settings = store_.discovery_settings(company.id);
    for (const auto& d : store_.list_discovered(company.id)) {
      const auto action = core::expiry_action(d, settings, now);
      if (action == core::ExpiryAction::none) continue;
      store_.atomically([&] {
        if (action == core::ExpiryAction::make_user) {
          store_.add_user(discovered_user(d.address, settings.default_role), actor_);
          run.changed.emplace_back(d.address.str(), Outcome::became_user);
        } else {
          store_.add_invalid(d.address,
                             "discovered and not handled within " +
                                 std::to_string(settings.notification_weeks) + " weeks",
                             actor_);
          run.changed.emplace_back(d.address.str(), Outcome::became_invalid);
        }
      });
      spdlog::info("discovery: {} expired -> {}", d.address.str(),
                   to_string(run.changed.back().second));
    }
  }
  return run;
}

}  // namespace mailroster::lifecycle
