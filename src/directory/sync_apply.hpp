// Applying a sync plan (core/sync_planner.hpp) to the store: one transaction, all of it or
// none; every change an audit event with the source as actor ("sync:csv", "sync:ldap").
// The deletion guard refuses a plan it flagged unless forced.
#pragma once

#include <string>

#include "core/sync_planner.hpp"
#include "store/store.hpp"

namespace mailroster::directory {

struct ApplyResult {
  std::size_t created = 0;
  std::size_t updated = 0;
  std::size_t deleted = 0;
};

// Gathers what the planner needs for a company and a snapshot: its users and aliases, and
// who owns the snapshot's other addresses (other companies, the invalid list).
core::Plan plan_for(store::Store& store, core::Id company_id, const core::Snapshot& snapshot,
                    const core::SyncOptions& options);

// Throws core::Failure (conflict) when the guard refuses and force is false, or when a change
// fails; then nothing was changed.
ApplyResult apply_plan(store::Store& store, const core::Plan& plan, bool force);

}  // namespace mailroster::directory
