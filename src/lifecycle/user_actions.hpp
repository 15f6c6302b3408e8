// An administrator's actions on several of a company's users at once (the Users page's
// checkboxes, `user remove A B C`, POST /companies/{c}/users/actions): all of them or none,
// each with an audit event naming the administrator.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "store/store.hpp"

namespace mailroster::lifecycle {

struct UserAction {
  enum class Kind { set_role, remove };
  Kind kind = Kind::set_role;
  core::Address address;           // the user's primary address
  std::optional<core::Role> role;  // set_role
};

// What an error about an address that is no user says when the address is an alias: " (it is
// an alias of bob@acme.example)", else "". Only within company_id when one is given (another
// company's aliases are not told).
std::string alias_note(store::Store& store, const core::Address& address,
                       std::optional<core::Id> company_id = std::nullopt);

// Applies the actions in one transaction, or none of them: every address must be a user of
// the company (another company's user is told as an unknown one) and come once. Removing two
// users or more passes the deletion guard (SPEC: 500 users or 10 % of the company's), as a sync
// must, unless forced: a page of users ticked by mistake is not a mass delete. Throws Failure
// (invalid_argument naming "address", or conflict naming "force" from the guard). Returns how
// many users changed.
std::size_t apply_user_actions(store::Store& store, const core::Company& company,
                               const std::vector<UserAction>& actions, bool force,
                               const core::Actor& actor);

}  // namespace mailroster::lifecycle
