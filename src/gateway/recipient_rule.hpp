// What the inbound gateway answers for a recipient before it would ask the destination
// (SPEC.md "SMTP Discovery / Inbound"), from what the store says: one place for the SMTP path
// (inbound.cpp) and for the tools that explain it (`mailroster verify explain`, the API).
//   no company has the domain        -> relay_denied (550 5.7.1)
//   a user's or an alias's           -> accept (250, no callout)
//   marked invalid                   -> invalid (550 5.1.1 ... marked invalid)
//   unknown, discovery off           -> unknown (550 5.1.1 user unknown); not for postmaster
//   otherwise                        -> callout: the destination's answer decides
// With sub-addressing an address nobody has is decided as the address without its extension
// (Lookups::resolve).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/address.hpp"
#include "core/model.hpp"
#include "gateway/lookups.hpp"
#include "smtp/protocol.hpp"
#include "store/store.hpp"

namespace mailroster::gateway {

struct RecipientRule {
  enum class Kind { relay_denied, accept, invalid, unknown, callout };
  Kind kind = Kind::relay_denied;
  std::optional<core::Domain> domain;  // when a company has it
  store::AddressOwner owner;           // what the store says of `meant`
  core::Address meant;                 // the address, or the address without its extension
  bool discovering = false;            // the company's discovery is active (only when asked)
};

std::string_view to_string(RecipientRule::Kind kind);

// The rule for mail to `address`; delimiters: [smtp] recipient_delimiter. postmaster: the
// address is where RCPT TO:<postmaster> (no domain) goes, asked of the destination like
// postmaster@ any domain when nobody has it.
RecipientRule recipient_rule(Lookups& lookups, const core::Address& address,
                             std::string_view delimiters, bool postmaster = false);

// The reply of a rule that needs no callout, the recipient as the client wrote it (path);
// for callout, none (code 0): the destination's answer is the one.
smtp::Reply rule_reply(RecipientRule::Kind kind, const std::string& path);

// The rule for an administrator, as `verify explain --json` and the API give it: address,
// answer (to_string(kind)), reply {code, text} (null for a callout), domain, company_id and
// destination (null when no company has the domain), decided_as (the address, or without its
// extension), owner {kind: user|alias|invalid|discovered|none, address}, discovering,
// counted_as (what a clean message counts toward in discovery; null when none), why (a
// sentence).
nlohmann::json explain(const RecipientRule& rule, const core::Address& address);

}  // namespace mailroster::gateway
