#include "core/sync_planner.hpp"

#include <algorithm>
#include <iterator>
#include <unordered_set>

namespace mailroster::core {

std::string_view to_string(PlanItem::Action a) {
  switch (a) {
    case PlanItem::Action::create:
      return "create";
    case PlanItem::Action::update:
      return "update";
    case PlanItem::Action::remove:
      return "delete";
    case PlanItem::Action::skip:
      return "skip";
  }
  return "?";
}

namespace {

// Why an entry is left out by the include flags, or nullopt when it is in.
std::optional<std::string> excluded(const DirectoryEntry& e, const SyncOptions& o) {
  if (e.security_group && !o.include_security_groups) return "security groups are not included";
  if (e.hidden && !o.include_hidden) return "hidden from the address list, not included";
  if (e.disabled && !o.include_disabled) return "disabled account, not included";
  if (e.functional && !o.include_functional) return "functional account, not included";
  if (!e.disabled && !e.functional && !e.security_group && !o.include_active) {
    return "active users are not included";
  }
  return std::nullopt;
}

bool by_address(const PlanItem& a, const PlanItem& b) { return a.address.key() < b.address.key(); }

}  // namespace

CompanyIndex::CompanyIndex(Source source, std::vector<User> users, std::vector<Alias> aliases)
    : source_(source), users_(std::move(users)), aliases_(std::move(aliases)) {
  user_by_key_.reserve(users_.size());
  user_by_id_.reserve(users_.size());
  for (std::size_t i = 0; i < users_.size(); ++i) {
    const auto& u = users_[i];
    user_by_key_.emplace(u.address.key(), i);
    user_by_id_.emplace(u.id, i);
    if (u.source == source_ && !u.source_id.empty()) user_by_source_id_.emplace(u.source_id, i);
  }
  alias_by_key_.reserve(aliases_.size());
  for (std::size_t i = 0; i < aliases_.size(); ++i) {
    alias_by_key_.emplace(aliases_[i].address.key(), i);
    aliases_of_[aliases_[i].user_id].push_back(i);
  }
}

bool CompanyIndex::holds(std::string_view key) const {
  return user_by_key_.count(key) || alias_by_key_.count(key);
}

CompanyView CompanyIndex::view(const std::vector<std::string>& address_keys,
                               const std::vector<std::string>& source_ids) const {
  CompanyView v;
  std::unordered_set<std::size_t> users, aliases;
  auto add_user = [&](std::size_t i) {
    if (!users.insert(i).second) return;
    v.users.push_back(users_[i]);
    if (auto it = aliases_of_.find(users_[i].id); it != aliases_of_.end()) {
      for (const auto a : it->second) {
        if (aliases.insert(a).second) v.aliases.push_back(aliases_[a]);
      }
    }
  };
  for (const auto& k : address_keys) {
    if (auto it = user_by_key_.find(k); it != user_by_key_.end()) add_user(it->second);
    if (auto it = alias_by_key_.find(k); it != alias_by_key_.end()) {
      if (auto u = user_by_id_.find(aliases_[it->second].user_id); u != user_by_id_.end()) {
        add_user(u->second);
      } else if (aliases.insert(it->second).second) {
        v.aliases.push_back(aliases_[it->second]);
      }
    }
  }
  for (const auto& id : source_ids) {
    if (auto it = user_by_source_id_.find(id); it != user_by_source_id_.end()) add_user(it->second);
  }
  return v;
}

Plan SyncPlanner::plan(const std::vector<DirectoryEntry>& entries, const CompanyView& view) {
  const auto& o = options_;
  Plan plan;
  plan.source = source_;
  plan.creates.reserve(entries.size());

  // Keys point into the view, which outlives this call.
  std::unordered_map<std::string_view, const User*> by_address;
  std::unordered_map<std::string_view, const User*> by_source_id;
  std::unordered_map<Id, const User*> by_id;
  by_address.reserve(view.users.size());
  by_id.reserve(view.users.size());
  for (const auto& u : view.users) {
    by_address[u.address.key()] = &u;
    by_id[u.id] = &u;
    if (u.source == source_ && !u.source_id.empty()) by_source_id[u.source_id] = &u;
  }
  std::unordered_map<std::string_view, const Alias*> alias_by_address;
  std::unordered_map<Id, std::vector<const Alias*>> aliases_of;
  for (const auto& a : view.aliases) {
    alias_by_address[a.address.key()] = &a;
    aliases_of[a.user_id].push_back(&a);
  }
  const auto& foreign = view.foreign;

  std::unordered_set<Id> seen_users;             // matched by an entry of this batch
  std::unordered_set<std::string_view> claimed;  // address keys the batch uses (primary + alias)
  claimed.reserve(entries.size());
  auto skip = [&](const DirectoryEntry& e, const Address& a, std::string reason) {
    PlanItem item;
    item.action = PlanItem::Action::skip;
    item.line = e.line;
    item.address = a;
    item.reason = std::move(reason);
    plan.skips.push_back(std::move(item));
  };
  // Who else holds this address, for a conflict message; nullopt when user `owner` (0: a new
  // user) may use it.
  auto conflict = [&](const Address& a, Id owner) -> std::optional<std::string> {
    if (auto f = foreign.find(a.key()); f != foreign.end()) return "belongs to " + f->second.what;
    if (auto u = by_address.find(a.key()); u != by_address.end() && u->second->id != owner) {
      return "is already the address of user " + u->second->address.str();
    }
    if (auto al = alias_by_address.find(a.key());
        al != alias_by_address.end() && al->second->user_id != owner) {
      const auto target = by_id.find(al->second->user_id);
      return "is already an alias of " +
             (target != by_id.end() ? target->second->address.str() : std::string("a user"));
    }
    return std::nullopt;
  };

  for (const auto& e : entries) {
    if (!claimed.insert(e.address.key()).second) {
      skip(e, e.address, "appears more than once in the source");
      continue;
    }
    if (auto why = excluded(e, o)) {
      skip(e, e.address, *why);
      continue;
    }
    const User* user = nullptr;
    if (!e.source_id.empty()) {
      if (auto it = by_source_id.find(e.source_id); it != by_source_id.end()) user = it->second;
    }
    if (!user) {
      if (auto it = by_address.find(e.address.key()); it != by_address.end()) user = it->second;
    }
    if (user && (!seen_users.insert(user->id).second || matched(user->id))) {
      skip(e, e.address,
           "matches user " + user->address.str() + " already matched by another entry");
      continue;
    }
    const Id owner = user ? user->id : 0;
    if (auto c = conflict(e.address, owner)) {
      skip(e, e.address, e.address.str() + " " + *c);
      continue;
    }

    // Aliases the entry wants: each must be free (or already this user's).
    std::vector<Address> wanted;
    if (e.aliases) {
      for (const auto& a : *e.aliases) {
        if (a == e.address) continue;  // an entry is never its own alias
        if (!claimed.insert(a.key()).second) {
          skip(e, a,
               "alias " + a.str() + " of " + e.address.str() +
                   " appears more than once in the source");
          continue;
        }
        if (auto c = conflict(a, owner)) {
          skip(e, a, "alias " + a.str() + " of " + e.address.str() + " " + *c);
          continue;
        }
        wanted.push_back(a);
      }
    }

    if (!user) {
      if (!o.create) {
        skip(e, e.address, "new entry, but creating is switched off");
        continue;
      }
      PlanItem item;
      item.action = PlanItem::Action::create;
      item.line = e.line;
      item.address = e.address;
      item.entry = e;
      item.role =
          e.functional || e.security_group ? Role::functional : e.role.value_or(o.default_role);
      item.add_aliases = std::move(wanted);
      item.reason = "new in the source";
      plan.creates.push_back(std::move(item));
      continue;
    }

    PlanItem item;
    item.action = PlanItem::Action::update;
    item.line = e.line;
    item.address = e.address;
    item.user_id = user->id;
    item.entry = e;
    auto change = [&](const char* field, const std::string& before, const std::string& after) {
      if (before != after) item.changes.push_back({field, before, after});
    };
    change("address", user->address.str(), e.address.str());
    change("first_name", user->first_name, e.first_name);
    change("surname", user->surname, e.surname);
    const auto role =
        e.functional || e.security_group ? std::optional<Role>(Role::functional) : e.role;
    if (role) change("role", std::string(to_string(user->role)), std::string(to_string(*role)));
    item.role = role.value_or(user->role);
    if (e.aliases) {
      std::unordered_set<std::string> wanted_keys;
      for (const auto& a : wanted) wanted_keys.insert(a.key());
      std::unordered_set<std::string> have_keys;
      for (const auto* a : aliases_of[user->id]) {
        have_keys.insert(a->address.key());
        if (!wanted_keys.count(a->address.key())) item.remove_aliases.push_back(a->address);
      }
      for (const auto& a : wanted) {
        if (!have_keys.count(a.key())) item.add_aliases.push_back(a);
      }
    }
    if (item.changes.empty() && item.add_aliases.empty() && item.remove_aliases.empty()) continue;
    if (!o.update) {
      skip(e, e.address, "changed in the source, but updating is switched off");
      continue;
    }
    item.reason = "changed in the source";
    plan.updates.push_back(std::move(item));
  }

  matched_.insert(seen_users.begin(), seen_users.end());
  return plan;
}

bool SyncPlanner::matched(Id user) const { return matched_.contains(user); }

std::vector<PlanItem> SyncPlanner::deletes(const std::vector<User>& users,
                                           const std::string& reason) const {
  std::vector<const User*> gone;  // sorted before the (large) items are made
  for (const auto& u : users) {
    if (u.source == source_ && !matched(u.id)) gone.push_back(&u);
  }
  std::sort(gone.begin(), gone.end(),
            [](const User* a, const User* b) { return a->address.key() < b->address.key(); });
  std::vector<PlanItem> out(gone.size());
  for (std::size_t i = 0; i < gone.size(); ++i) {
    out[i].action = PlanItem::Action::remove;
    out[i].address = gone[i]->address;
    out[i].user_id = gone[i]->id;
    out[i].reason = reason;
  }
  return out;
}

Plan SyncPlanner::finish(const std::vector<User>& source_users, std::size_t company_users,
                         bool complete, const std::vector<User>& removed_users) {
  Plan plan;
  plan.source = source_;
  plan.company_users = company_users;
  plan.source_complete = complete;
  if (options_.delete_removed) {
    std::unordered_set<Id> seen;  // each user once, with the first reason that applies
    auto once = [&](const std::vector<User>& users) {
      std::vector<User> out;
      for (const auto& u : users) {
        if (seen.insert(u.id).second) out.push_back(u);
      }
      return out;
    };
    plan.deletes = deletes(once(removed_users), "removed in the source");
    if (complete) {
      auto rest = deletes(once(source_users), "no longer in the source");
      std::move(rest.begin(), rest.end(), std::back_inserter(plan.deletes));
      std::sort(plan.deletes.begin(), plan.deletes.end(), by_address);
    }
  }
  plan.guard = deletion_guard(plan.deletes.size(), company_users, options_);
  return plan;
}

std::optional<std::string> deletion_guard(std::size_t n, std::size_t company_users,
                                          const SyncOptions& o) {
  if (n > o.max_delete_count) {
    return "would delete " + std::to_string(n) + " users, more than the limit of " +
           std::to_string(o.max_delete_count);
  }
  if (n > 0 && static_cast<double>(n) > o.max_delete_share * static_cast<double>(company_users)) {
    return "would delete " + std::to_string(n) + " of " + std::to_string(company_users) +
           " users, more than " + std::to_string(static_cast<int>(o.max_delete_share * 100)) + " %";
  }
  return std::nullopt;
}

std::optional<std::string> removal_guard(std::size_t removes, std::size_t company_users) {
  if (removes < 2) return std::nullopt;
  return deletion_guard(removes, company_users, SyncOptions{});
}

Plan plan_sync(const std::vector<User>& users, const std::vector<Alias>& aliases,
               const std::unordered_map<std::string, ForeignOwner>& foreign,
               const Snapshot& snapshot, const SyncOptions& o) {
  SyncPlanner planner(snapshot.source, o);
  auto plan = planner.plan(snapshot.entries, {users, aliases, foreign});
  auto rest = planner.finish(users, users.size(), snapshot.complete);
  plan.deletes = std::move(rest.deletes);
  plan.guard = std::move(rest.guard);
  plan.company_users = rest.company_users;
  plan.source_complete = rest.source_complete;
  return plan;
}

}  // namespace mailroster::core
