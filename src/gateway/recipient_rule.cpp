#include "gateway/recipient_rule.hpp"

#include "core/discovery.hpp"

namespace mailroster::gateway {

std::string_view to_string(RecipientRule::Kind kind) {
  switch (kind) {
    case RecipientRule::Kind::relay_denied:
      return "relay_denied";
    case RecipientRule::Kind::accept:
      return "accept";
    case RecipientRule::Kind::invalid:
      return "invalid";
    case RecipientRule::Kind::unknown:
      return "unknown";
    case RecipientRule::Kind::callout:
      return "callout";
  }
  return "callout";
}

RecipientRule recipient_rule(Lookups& lookups, const core::Address& address,
                             std::string_view delimiters, bool postmaster) {
  RecipientRule rule;
  rule.meant = address;
  rule.domain = lookups.find_domain(address.domain());
  if (!rule.domain) return rule;
  auto [owner, meant] = lookups.resolve(address, delimiters);
  rule.owner = std::move(owner);
  rule.meant = std::move(meant);
  switch (rule.owner.kind) {
    case store::AddressOwner::Kind::user:
    case store::AddressOwner::Kind::alias:
      rule.kind = RecipientRule::Kind::accept;
      return rule;
    case store::AddressOwner::Kind::invalid:
      rule.kind = RecipientRule::Kind::invalid;
      return rule;
    case store::AddressOwner::Kind::discovered:
    case store::AddressOwner::Kind::none:
      break;
  }
  const auto company = rule.domain->company_id;
  rule.discovering = core::discovery_active(lookups.discovery_settings(company),
                                            lookups.directory_sync_hours(company));
  // postmaster at every domain served MUST be taken (RFC 5321 4.5.1) even when it is no user:
  // without discovery it is asked of the destination too.
  rule.kind = rule.discovering || postmaster || core::ascii_lower(address.local()) == "postmaster"
                  ? RecipientRule::Kind::callout
                  : RecipientRule::Kind::unknown;
  return rule;
}

smtp::Reply rule_reply(RecipientRule::Kind kind, const std::string& path) {
  switch (kind) {
    case RecipientRule::Kind::relay_denied:
      return {550, "5.7.1 <" + path + ">: relay access denied"};
    case RecipientRule::Kind::accept:
      return {250, "2.1.5 Ok"};
    case RecipientRule::Kind::invalid:
      return {550, "5.1.1 <" + path + ">: recipient address rejected: address is marked invalid"};
    case RecipientRule::Kind::unknown:
      return {550, "5.1.1 <" + path + ">: recipient address rejected: user unknown"};
    case RecipientRule::Kind::callout:
      break;
  }
  return {};
}

namespace {
std::string_view owner_kind(store::AddressOwner::Kind kind) {
  switch (kind) {
    case store::AddressOwner::Kind::user:
      return "user";
    case store::AddressOwner::Kind::alias:
      return "alias";
    case store::AddressOwner::Kind::invalid:
      return "invalid";
    case store::AddressOwner::Kind::discovered:
      return "discovered";
    case store::AddressOwner::Kind::none:
      break;
  }
  return "none";
}
}  // namespace

nlohmann::json explain(const RecipientRule& rule, const core::Address& address) {
  using Kind = RecipientRule::Kind;
  const auto reply = rule_reply(rule.kind, address.str());
  const auto meant = rule.meant.str();
  const bool extension = !(rule.meant == address);
  const bool counted = rule.kind == Kind::callout && rule.discovering;
  std::string why;
  switch (rule.kind) {
    case Kind::relay_denied:
      why = "no company has the domain " + address.domain() + ": the gateway relays for none";
      break;
    case Kind::accept:
      why = rule.owner.address +
            (rule.owner.kind == store::AddressOwner::Kind::alias ? " is an alias of a user"
                                                                 : " is a user") +
            ": taken without asking the destination";
      break;
    case Kind::invalid:
      why = rule.owner.address + " is marked invalid";
      break;
    case Kind::unknown:
      why = "nobody has " + meant + " and the company's SMTP Discovery is off";
      break;
    case Kind::callout:
      why = counted ? "nobody has " + meant +
                          " yet: the destination is asked (a callout) and its answer decides; "
                          "each clean message then counts toward discovering " +
                          meant
                    : "postmaster: the destination is asked (a callout) even with SMTP "
                      "Discovery off; not counted";
      break;
  }
  if (extension && rule.kind != Kind::relay_denied) {
    why += " (" + address.str() + " is decided as " + meant + ": sub-addressing)";
  }
  nlohmann::json out = {
      {"address", address.str()},
      {"answer", to_string(rule.kind)},
      {"reply", rule.kind == Kind::callout
                    ? nlohmann::json(nullptr)
                    : nlohmann::json{{"code", reply.code}, {"text", reply.text}}},
      {"domain", rule.domain ? nlohmann::json(rule.domain->name) : nlohmann::json(nullptr)},
      {"company_id",
       rule.domain ? nlohmann::json(rule.domain->company_id) : nlohmann::json(nullptr)},
      {"destination",
       rule.domain ? nlohmann::json(rule.domain->destination.str()) : nlohmann::json(nullptr)},
      {"decided_as", meant},
      {"owner", {{"kind", owner_kind(rule.owner.kind)}, {"address", rule.owner.address}}},
      {"discovering", rule.discovering},
      {"counted_as", counted ? nlohmann::json(meant) : nlohmann::json(nullptr)},
      {"why", why}};
  return out;
}

}  // namespace mailroster::gateway
