// Running a sync: the planner (core/sync_planner.hpp) fed from a source batch by batch, each
// batch's plan reported to a sink and, when applying, written at once; every change an audit
// event with the source as actor ("sync:csv", "sync:ldap"). Apply inside Store::atomically so
// that the whole run is one transaction: a later failure or a refusal by the deletion guard
// undoes the earlier batches.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/sync_planner.hpp"
#include "store/store.hpp"

namespace mailroster::directory {

struct RunResult {
  std::size_t creates = 0, updates = 0, deletes = 0, skips = 0;
  std::size_t company_users = 0;  // before the run
  bool source_complete = true;
  std::optional<std::string> guard;  // the deletion guard's refusal, if it refused
};

// The refusal of a run whose deletes the guard stops (why: core::deletion_guard's reason).
core::Failure guard_failure(const std::string& why);

class SyncRun {
 public:
  using Sink = std::function<void(const core::PlanItem&)>;

  // apply: write each batch as soon as it is planned. sink (may be empty) sees every item:
  // each batch's creates, updates and skips, then the deletes. When applying, the sink is
  // called from another thread while add() writes the batch (never two calls at once).
  SyncRun(store::Store& store, core::Id company_id, core::Source source,
          const core::SyncOptions& options, bool apply, Sink sink);

  // Plans (and applies) one batch. Batches must not repeat an address (core::SyncPlanner).
  void add(const std::vector<core::DirectoryEntry>& batch);

  // The deletions of users no entry matched, when deleting is on and the source was complete,
  // and of users whose source ids the source reported removed: those reported removed first,
  // then the others a page (5000) at a time, each in address order. When applying, deletes
  // the guard refuses throw core::Failure (conflict) unless force, before any is written.
  RunResult finish(bool source_complete, bool force,
                   const std::vector<std::string>& removed_ids = {});

 private:
  // Applies the plan (when applying) and reports it to the sink.
  void write(const core::Plan& plan);
  void report(const core::Plan& plan);

  // The part of the company a batch concerns: cut from the index once there is one, else
  // looked up in the store.
  core::CompanyView view(const std::vector<std::string>& keys, const std::vector<std::string>& ids);
  // The company's users (of this source) with these source ids. The map of them is read at
  // the first need: users this run creates later are not in it, and need not be (batches
  // never repeat a source id).
  std::vector<core::Id> users_of(const std::vector<std::string>& source_ids);

  store::Store& store_;
  core::Id company_id_;
  core::Source source_;
  core::SyncPlanner planner_;
  bool apply_;
  Sink sink_;
  RunResult result_;
  core::Actor actor_;
  std::vector<core::Id> before_;  // the source's users before the run, when deleting
  bool first_batch_ = true;
  std::unique_ptr<core::CompanyIndex> index_;  // made at the first batch, or never
  std::optional<std::unordered_map<std::string, core::Id>> by_source_id_;
  std::map<core::Id, std::string> company_names_;  // of other companies holding addresses
};

}  // namespace mailroster::directory
