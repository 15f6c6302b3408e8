// The sync planner (SPEC.md "Import and directory sync"): one place that compares a
// directory snapshot (CSV, LDAP, Graph) with a company's users and says what a sync would do,
// each change with its reason. Pure: the caller gathers the inputs and applies the plan.
//
// Rules:
//  - entries are matched to users by stable source id when the source has one, else by
//    primary address;
//  - an address that already belongs to another user of the company (as primary or alias),
//    to another company, or to the invalid list is a conflict: skipped, never stolen;
//  - only users that came from the same source are ever deleted (a CSV sync never deletes a
//    manual, LDAP or discovered user), and only when the snapshot is complete;
//  - the deletion guard refuses a plan deleting more than max_delete_count users or more than
//    max_delete_share of the company's users, unless forced.
#pragma once

#include <absl/container/flat_hash_set.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/model.hpp"

namespace mailroster::core {

struct DirectoryEntry {
  std::size_t line = 0;   // where the source had it (CSV line), for messages
  std::string source_id;  // stable identity (objectGUID, Graph id); empty when none
  Address address;
  std::string first_name;
  std::string surname;
  std::optional<Role> role;  // from the source; else the sync's default role (on create only)
  bool functional = false;   // shared / room / equipment mailbox
  bool disabled = false;
  bool hidden = false;  // hidden from the address list
  bool security_group = false;
  std::optional<std::vector<Address>> aliases;  // nullopt: the source does not manage aliases
  std::size_t members = 0;  // a group's members, nested membership resolved (shown, not stored)
};

struct Snapshot {
  Source source = Source::csv;
  std::vector<DirectoryEntry> entries;
  bool complete = true;  // false: the source failed or was partial -> never delete
  // Source ids the source itself reports as removed (Graph delta "@removed"): deleted when
  // deleting is on, even from an incremental (incomplete) snapshot.
  std::vector<std::string> removed;
};

// How a source that streams hands its entries over, batch by batch while it reads (a sync
// writes one batch while the next is read). Returns false when the taker is gone: stop reading.
using EntrySink = std::function<bool(std::vector<DirectoryEntry>&&)>;

struct SyncOptions {
  Role default_role = Role::silent_user;
  bool include_active = true;
  bool include_disabled = false;
  bool include_functional = true;
  bool include_security_groups = false;
  bool include_hidden = false;
  bool create = true;
  bool update = true;
  bool delete_removed = false;
  std::size_t max_delete_count = 500;
  double max_delete_share = 0.10;
};

// Who owns an address outside this company's users and aliases (other companies, invalid).
struct ForeignOwner {
  std::string what;  // "company globex", "the invalid list"
};

struct FieldChange {
  std::string field;
  std::string before;
  std::string after;
};

struct PlanItem {
  enum class Action { create, update, remove, skip };
  Action action = Action::skip;
  std::size_t line = 0;
  Address address;
  std::string reason;
  std::optional<Id> user_id;            // update / remove
  std::optional<DirectoryEntry> entry;  // create / update
  Role role = Role::silent_user;        // create: the role to give
  std::vector<FieldChange> changes;     // update
  std::vector<Address> add_aliases;     // create / update
  std::vector<Address> remove_aliases;  // update
};

struct Plan {
  Source source = Source::csv;
  std::vector<PlanItem> creates, updates, deletes, skips;
  std::size_t company_users = 0;
  bool source_complete = true;
  std::optional<std::string> guard;  // why the deletion guard refuses this plan, if it does

  bool empty() const { return creates.empty() && updates.empty() && deletes.empty(); }
};

std::string_view to_string(PlanItem::Action a);

// The part of a company a batch of entries concerns: its users that have one of the entries'
// addresses (as primary or alias) or source ids, those users' aliases, the aliases that hold
// one of the addresses (and their users), and who outside the company owns any of them.
// The whole company is always a valid view.
struct CompanyView {
  std::vector<User> users;
  std::vector<Alias> aliases;
  std::unordered_map<std::string, ForeignOwner> foreign;  // by address key
};

// A company's users and aliases held in memory, from which each batch's view is cut: a run
// whose batches cover much of a company reads it once instead of looking every batch up.
// The view has no foreign owners (the caller adds them, for the keys the view does not hold).
// Users and aliases written after the index was made are not in it: batches do not repeat
// addresses or source ids, so later batches do not need them (SyncRun still looks up any key
// the store says the company holds and the index does not).
class CompanyIndex {
 public:
  CompanyIndex(Source source, std::vector<User> users, std::vector<Alias> aliases);
  CompanyIndex(const CompanyIndex&) = delete;  // the maps point into the vectors
  CompanyIndex& operator=(const CompanyIndex&) = delete;

  // What a store's lookup would give for these keys and source ids (of this source).
  CompanyView view(const std::vector<std::string>& address_keys,
                   const std::vector<std::string>& source_ids) const;
  // Whether a user or alias of the company has this address key.
  bool holds(std::string_view key) const;

 private:
  Source source_;
  std::vector<User> users_;
  std::vector<Alias> aliases_;
  std::unordered_map<std::string_view, std::size_t> user_by_key_, user_by_source_id_, alias_by_key_;
  std::unordered_map<Id, std::size_t> user_by_id_;
  std::unordered_map<Id, std::vector<std::size_t>> aliases_of_;
};

// Plans a snapshot batch by batch, so a source of any size is planned in bounded memory:
// plan() each batch against its view, then finish() once for the deletions and the guard.
// Entries of different batches must not repeat an address or a source id (the CSV and LDAP
// readers refuse such entries); within a batch, repeats are skipped with a reason.
class SyncPlanner {
 public:
  SyncPlanner(Source source, const SyncOptions& options) : source_(source), options_(options) {}

  // The creates, updates and skips of one batch.
  Plan plan(const std::vector<DirectoryEntry>& entries, const CompanyView& view);

  // Users of this source (source_users: all of them, or a superset) that no entry matched
  // become deletes when deleting is on and the snapshot was complete, and so do the users
  // the source reported removed (removed_users); company_users sizes the guard.
  Plan finish(const std::vector<User>& source_users, std::size_t company_users, bool complete,
              const std::vector<User>& removed_users = {});

  // Whether some entry matched this user.
  bool matched(Id user) const;

  // The deletes of these users, in address order, each with `reason`: those of this source
  // that no entry matched (the caller leaves out users it already deletes). What finish()
  // does for a whole company, for a run that hands its deletes over a page at a time.
  std::vector<PlanItem> deletes(const std::vector<User>& users, const std::string& reason) const;

  const SyncOptions& options() const { return options_; }

 private:
  Source source_;
  SyncOptions options_;
  // Users some entry matched. A hash set: a vector sorted again whenever a batch had added
  // to it cost a million-user re-sync a second in sorting.
  absl::flat_hash_set<Id> matched_;
};

// The whole snapshot at once: current_users/current_aliases are the company's; foreign:
// addresses (by key) owned outside it.
Plan plan_sync(const std::vector<User>& current_users, const std::vector<Alias>& current_aliases,
               const std::unordered_map<std::string, ForeignOwner>& foreign,
               const Snapshot& snapshot, const SyncOptions& options);

// The deletion guard's verdict on deleting `deletes` of `company_users` users.
std::optional<std::string> deletion_guard(std::size_t deletes, std::size_t company_users,
                                          const SyncOptions& options);

// The same guard, with SPEC's limits (500 users or 10 %), on an administrator removing several
// of a company's users at once: one user is never stopped, as removing it alone is not.
std::optional<std::string> removal_guard(std::size_t removes, std::size_t company_users);

}  // namespace mailroster::core
