#include "directory/sync_apply.hpp"

namespace mailroster::directory {

using core::ErrorCode;
using core::Failure;

core::Plan plan_for(store::Store& store, core::Id company_id, const core::Snapshot& snapshot,
                    const core::SyncOptions& options) {
  const auto users = store.list_users({.company_id = company_id});
  const auto aliases = store.list_aliases(company_id, std::nullopt);
  std::unordered_map<std::string, core::ForeignOwner> foreign;
  auto check = [&](const core::Address& a) {
    const auto owner = store.resolve(a);
    if (owner.kind == store::AddressOwner::Kind::invalid) {
      foreign[a.key()] = {"the invalid list"};
    } else if ((owner.kind == store::AddressOwner::Kind::user ||
                owner.kind == store::AddressOwner::Kind::alias) &&
               owner.company_id != company_id) {
      const auto c = store.company_by_id(owner.company_id);
      foreign[a.key()] = {"company " + (c ? c->name : std::to_string(owner.company_id))};
    }
  };
  for (const auto& e : snapshot.entries) {
    check(e.address);
    if (e.aliases) {
      for (const auto& a : *e.aliases) check(a);
    }
  }
  return core::plan_sync(users, aliases, foreign, snapshot, options);
}

ApplyResult apply_plan(store::Store& store, const core::Plan& plan, bool force) {
  if (plan.guard && !force) {
    throw Failure(ErrorCode::conflict, "deletion guard: the sync " + *plan.guard +
                                           "; nothing was changed (force to apply)");
  }
  const core::Actor actor{"sync:" + std::string(core::to_string(plan.source))};
  ApplyResult result;
  store.atomically([&] {
    // Deletes first, then updates, then creates: addresses freed earlier can be reused later.
    for (const auto& d : plan.deletes) {
      store.remove_user(*d.user_id, actor);
      ++result.deleted;
    }
    for (const auto& u : plan.updates) {
      for (const auto& a : u.remove_aliases) {
        if (auto alias = store.find_alias(a)) store.remove_alias(alias->id, actor);
      }
      store::UserChange change;
      for (const auto& c : u.changes) {
        if (c.field == "address") change.address = u.entry->address;
        if (c.field == "first_name") change.first_name = u.entry->first_name;
        if (c.field == "surname") change.surname = u.entry->surname;
        if (c.field == "role") change.role = u.role;
      }
      if (!u.changes.empty()) store.update_user(*u.user_id, change, actor);
      for (const auto& a : u.add_aliases) store.add_alias(*u.user_id, a, actor);
      ++result.updated;
    }
    for (const auto& c : plan.creates) {
      store::NewUser u;
      u.address = c.entry->address;
      u.first_name = c.entry->first_name;
      u.surname = c.entry->surname;
      u.role = c.role;
      u.source = plan.source;
      u.source_id = c.entry->source_id;
      const auto created = store.add_user(u, actor);
      for (const auto& a : c.add_aliases) store.add_alias(created.id, a, actor);
      ++result.created;
    }
  });
  return result;
}

}  // namespace mailroster::directory
