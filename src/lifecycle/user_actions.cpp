#include "lifecycle/user_actions.hpp"

#include <algorithm>
#include <set>

#include "core/sync_planner.hpp"

namespace mailroster::lifecycle {

using core::ErrorCode;
using core::Failure;

std::string alias_note(store::Store& store, const core::Address& address,
                       std::optional<core::Id> company_id) {
  const auto alias = store.find_alias(address);
  if (!alias || (company_id && alias->company_id != *company_id)) return "";
  const auto user = store.user_by_id(alias->user_id);
  return user ? " (it is an alias of " + user->address.str() + ")" : "";
}

std::size_t apply_user_actions(store::Store& store, const core::Company& company,
                               const std::vector<UserAction>& actions, bool force,
                               const core::Actor& actor) {
  store.atomically([&] {
    std::vector<std::pair<core::Id, const UserAction*>> steps;
    std::set<core::Id> seen;
    for (const auto& a : actions) {
      auto user = store.find_user(a.address);
      if (!user || user->company_id != company.id) {
        throw Failure(ErrorCode::invalid_argument,
                      "'" + a.address.str() + "' is not a user of " + company.name +
                          alias_note(store, a.address, company.id),
                      "address");
      }
      if (!seen.insert(user->id).second) {
        throw Failure(ErrorCode::invalid_argument, user->address.str() + " is in the list twice",
                      "address");
      }
      if (a.kind == UserAction::Kind::set_role && !a.role) {
        throw Failure(ErrorCode::invalid_argument, "set_role needs a role", "role");
      }
      steps.emplace_back(user->id, &a);
    }
    const auto removes = static_cast<std::size_t>(
        std::count_if(actions.begin(), actions.end(),
                      [](const UserAction& a) { return a.kind == UserAction::Kind::remove; }));
    if (!force) {
      if (auto why = core::removal_guard(removes, store.count_users(company.id))) {
        throw Failure(
            ErrorCode::conflict,
            "deletion guard: this " + *why + "; nothing was changed (force to remove them)",
            "force");
      }
    }
    for (const auto& [id, a] : steps) {
      if (a->kind == UserAction::Kind::remove) {
        store.remove_user(id, actor);
      } else {
        store::UserChange change;
        change.role = a->role;
        store.update_user(id, change, actor);
      }
    }
  });
  return actions.size();
}

}  // namespace mailroster::lifecycle
