#include "directory/sync_apply.hpp"

#include <algorithm>
#include <future>
#include <set>
#include <unordered_set>

namespace mailroster::directory {

using core::ErrorCode;
using core::Failure;

Failure guard_failure(const std::string& why) {
  return Failure(ErrorCode::conflict,
                 "deletion guard: the sync " + why + "; nothing was changed (force to apply)");
}

SyncRun::SyncRun(store::Store& store, core::Id company_id, core::Source source,
                 const core::SyncOptions& options, bool apply, Sink sink)
    : store_(store),
      company_id_(company_id),
      source_(source),
      planner_(source, options),
      apply_(apply),
      sink_(std::move(sink)),
      actor_{"sync:" + std::string(core::to_string(source))} {
  result_.company_users = store_.count_users(company_id);
  // Deletion candidates are the users of this source before the run: users an applied batch
  // creates are no candidates.
  if (options.delete_removed) before_ = store_.user_ids(company_id, source);
}

void SyncRun::report(const core::Plan& plan) {
  result_.creates += plan.creates.size();
  result_.updates += plan.updates.size();
  result_.deletes += plan.deletes.size();
  result_.skips += plan.skips.size();
  if (!sink_) return;
  for (const auto* list : {&plan.creates, &plan.updates, &plan.deletes, &plan.skips}) {
    for (const auto& item : *list) sink_(item);
  }
}

std::vector<core::Id> SyncRun::users_of(const std::vector<std::string>& source_ids) {
  std::vector<core::Id> out;
  if (source_ids.empty()) return out;
  if (!by_source_id_) {
    by_source_id_.emplace();
    for (auto& [id, user] : store_.source_ids(company_id_, source_)) {
      by_source_id_->emplace(std::move(id), user);
    }
  }
  for (const auto& id : source_ids) {
    if (auto it = by_source_id_->find(id); it != by_source_id_->end()) out.push_back(it->second);
  }
  return out;
}

core::CompanyView SyncRun::view(const std::vector<std::string>& keys,
                                const std::vector<std::string>& ids) {
  // When the first batch is as large as a good part of the company (a first sync or import,
  // a small company), the company is read whole, once, and each batch's view cut from that;
  // else every batch looks its keys up. Decided at the first batch: reading a large company
  // halfway through a run would hold up the writing of the batches behind it for longer
  // than the lookups it saves. Never for a company so large that holding it would break
  // bounded memory.
  constexpr std::size_t kIndexedUsers = 250'000;
  if (first_batch_) {
    first_batch_ = false;
    if (result_.company_users <= kIndexedUsers &&
        4 * (keys.size() + ids.size()) >= result_.company_users) {
      store::UserFilter all;
      all.company_id = company_id_;
      index_ = std::make_unique<core::CompanyIndex>(source_, store_.list_users(all),
                                                    store_.list_aliases(company_id_, std::nullopt));
    }
  }
  auto v = index_ ? index_->view(keys, ids) : store_.sync_view(company_id_, keys, users_of(ids));
  // Who else holds a key: only keys the view does not hold can be someone else's.
  std::unordered_set<std::string_view> own;
  for (const auto& u : v.users) own.insert(u.address.key());
  for (const auto& a : v.aliases) own.insert(a.address.key());
  std::vector<std::string_view> others;
  for (const auto& k : keys) {
    if (!own.count(k)) others.push_back(k);
  }
  std::vector<std::string> written;  // the company's, but written after the index was made
  for (auto& [key, company] : store_.holders(others)) {
    if (!company) {
      v.foreign[key] = {"the invalid list"};
    } else if (*company != company_id_) {
      auto name = company_names_.find(*company);
      if (name == company_names_.end()) {
        const auto c = store_.company_by_id(*company);
        name = company_names_.emplace(*company, c ? c->name : std::to_string(*company)).first;
      }
      v.foreign[key] = {"company " + name->second};
    } else {
      written.push_back(key);
    }
  }
  // Batches should not repeat an address (the sources see to it), but if one does, the
  // earlier batch's user or alias is looked up, so that it is a conflict like any other.
  if (!written.empty()) {
    auto more = store_.sync_view(company_id_, written, {});
    std::unordered_set<core::Id> users, aliases;
    for (const auto& u : v.users) users.insert(u.id);
    for (const auto& a : v.aliases) aliases.insert(a.id);
    for (auto& u : more.users) {
      if (users.insert(u.id).second) v.users.push_back(std::move(u));
    }
    for (auto& a : more.aliases) {
      if (aliases.insert(a.id).second) v.aliases.push_back(std::move(a));
    }
  }
  return v;
}

void SyncRun::add(const std::vector<core::DirectoryEntry>& batch) {
  if (batch.empty()) return;
  std::vector<std::string> keys, ids;
  keys.reserve(batch.size());
  for (const auto& e : batch) {
    keys.push_back(e.address.key());
    if (e.aliases) {
      for (const auto& a : *e.aliases) keys.push_back(a.key());
    }
    if (!e.source_id.empty()) ids.push_back(e.source_id);
  }
  write(planner_.plan(batch, view(keys, ids)));
}

void SyncRun::write(const core::Plan& plan) {
  if (!apply_ || plan.empty() || !sink_) {
    if (apply_ && !plan.empty()) store_.apply_plan(plan, actor_);
    report(plan);
    return;
  }
  // The sink (printing a million-row plan) runs on a second core while the batch is written;
  // both only read the plan. The future's destructor waits for it on every path.
  auto reported = std::async(std::launch::async, [&] { report(plan); });
  store_.apply_plan(plan, actor_);
  reported.get();
}

RunResult SyncRun::finish(bool source_complete, bool force,
                          const std::vector<std::string>& removed_ids) {
  result_.source_complete = source_complete;
  // The users the source reported removed (a delta's few), read at once; then, from a
  // complete source, the users of it no entry matched, counted by id for the guard and read
  // and written a page at a time: a run that deletes a million users holds one page of them.
  core::Plan removed;
  std::vector<core::Id> unmatched;
  if (planner_.options().delete_removed) {
    if (!removed_ids.empty()) {
      const std::set<std::string> ids(removed_ids.begin(), removed_ids.end());
      std::vector<core::User> users;
      for (auto& u : store_.sync_view(company_id_, {}, users_of(removed_ids)).users) {
        if (ids.count(u.source_id)) users.push_back(std::move(u));
      }
      removed.deletes = planner_.deletes(users, "removed in the source");
    }
    if (source_complete) {
      std::unordered_set<core::Id> gone;
      for (const auto& d : removed.deletes) gone.insert(*d.user_id);
      for (const auto id : before_) {
        if (!planner_.matched(id) && !gone.count(id)) unmatched.push_back(id);
      }
    }
  }
  result_.guard = core::deletion_guard(removed.deletes.size() + unmatched.size(),
                                       result_.company_users, planner_.options());
  if (apply_ && result_.guard && !force) throw guard_failure(*result_.guard);
  write(removed);
  constexpr std::size_t kPage = 5000;
  for (std::size_t at = 0; at < unmatched.size(); at += kPage) {
    const auto end =
        unmatched.begin() + static_cast<std::ptrdiff_t>(std::min(at + kPage, unmatched.size()));
    const std::vector<core::Id> page(unmatched.begin() + static_cast<std::ptrdiff_t>(at), end);
    core::Plan plan;
    plan.deletes =
        planner_.deletes(store_.sync_view(company_id_, {}, page).users, "no longer in the source");
    write(plan);
  }
  return result_;
}

}  // namespace mailroster::directory
