// Directory syncs as an administrator runs them (seeds/import-users.txt): configure a source
// for a company (settings, options, frequency; the secret sealed), test the connection,
// Search Now (the plan as a preview), Sync (apply), status, and the scheduler's due runs.
// One place for the CLI, the scheduler in `serve` and the HTTP API. Fault rules: a read that
// failed, timed out or was cut off applies nothing and deletes nothing; every attempt is
// recorded (last success, last error) for `status`.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/sync_schedule.hpp"
#include "directory/sync_apply.hpp"
#include "store/secret_box.hpp"
#include "store/store.hpp"

namespace mailroster::directory {

struct Rejected {
  std::string what;  // DN, Graph id, address
  std::string reason;
};

nlohmann::json rejected_json(const std::vector<Rejected>& list);

struct SourceRead {
  core::Snapshot snapshot;
  std::vector<Rejected> rejected;
  std::string state;    // incremental state to keep once the run succeeded
  nlohmann::json info;  // what the source says about the read (pages, incremental, ...)
};

// A directory the sync reads: LDAP (directory/ldap), Microsoft Graph (directory/graph).
class DirectorySource {
 public:
  virtual ~DirectorySource() = default;
  virtual core::Source kind() const = 0;
  // The settings (no secret) made valid and complete, or why they are not.
  virtual core::Result<nlohmann::json> check_settings(const nlohmann::json& settings) const = 0;
  // Connects and authenticates; what the server is.
  virtual core::Result<nlohmann::json> test(const nlohmann::json& settings,
                                            const std::string& secret) = 0;
  // The directory (or what changed since `state`, then snapshot.complete is false). A source
  // may hand entries to on_entries (when set) batch by batch as it reads them, on the thread
  // that called read(); those are not in the snapshot, which holds the rest. When on_entries
  // returns false, read stops and fails.
  virtual core::Result<SourceRead> read(const nlohmann::json& settings, const std::string& secret,
                                        const std::string& state,
                                        const core::EntrySink& on_entries) = 0;
};

// One company's sync as operators survey them (`sync list`, GET /api/v1/syncs, /metrics).
struct SyncOverview {
  core::Id company_id = 0;
  std::string company;
  core::Source kind = core::Source::ldap;
  std::optional<int> frequency_hours;  // nullopt: by hand
  std::optional<core::TimePoint> last_success;
  std::optional<core::TimePoint> last_attempt;
  std::optional<core::TimePoint> last_full_read;
  std::string last_error;  // of the last attempt; empty when it succeeded
  bool full_next = true;   // the next run reads the whole directory

  bool failing() const { return !last_error.empty(); }
};
nlohmann::json to_json_value(const SyncOverview& s);

struct Preview {
  RunResult result;  // the counts; the items went to the sink
  std::vector<Rejected> rejected;
  nlohmann::json info;
};

struct RunReport {
  RunResult result;
  std::vector<Rejected> rejected;
  nlohmann::json info;
};

class SyncService {
 public:
  SyncService(store::Store& store, const store::SecretBox& secrets, const core::Clock& clock);
  void add_source(DirectorySource& source);
  // Called after each run's outcome is recorded (success or failure), on the run's thread.
  void on_outcome(std::function<void()> observer) { on_outcome_ = std::move(observer); }

  // Creates or changes a company's sync: settings and options are merged over the stored
  // ones; secret: a new password/secret (nullopt keeps the stored one; required at first).
  store::DirectorySync configure(core::Id company_id, core::Source kind,
                                 const nlohmann::json& settings, const nlohmann::json& options,
                                 const std::optional<std::string>& secret,
                                 const core::Actor& actor);
  // Throws core::Failure (unavailable) with the reason when the source cannot be reached.
  nlohmann::json test(core::Id company_id, core::Source kind);
  // Search Now: reads and plans as a run does, batch by batch, and writes nothing. Each item
  // goes to sink (when set) as it is planned: the plan of a large directory is never whole in
  // memory. Throws core::Failure (unavailable) when the read fails.
  // full: plan from the whole directory, as run(..., full) applies it, even where the next
  // scheduled run would read changes only.
  Preview preview(core::Id company_id, core::Source kind, const SyncRun::Sink& sink = {},
                  bool full = false);
  // Reads and applies; records the outcome either way. Throws on failure (nothing applied).
  // One run of a company's sync at a time in this process: another one asked for meanwhile
  // (Sync in the web UI while the scheduler runs it) is refused at once (conflict), not
  // queued behind it, and is no failure of the sync.
  // full: read the whole directory even where the source could give changes only.
  RunReport run(core::Id company_id, core::Source kind, bool force, bool full = false);
  // Runs every scheduled sync that is due at `now`; returns how many ran (failures included,
  // recorded and logged, never thrown).
  std::size_t run_due(core::TimePoint now);

  // Every company's syncs (or one company's), by company name and kind.
  std::vector<SyncOverview> overview(std::optional<core::Id> company_id = std::nullopt);

  // What `status` shows: settings, options, schedule, last outcome, when the last full read
  // was and whether the next run reads everything or changes only; never the secret.
  nlohmann::json status(core::Id company_id, core::Source kind);

 private:
  store::DirectorySync require(core::Id company_id, core::Source kind);
  void told() noexcept;  // on_outcome_, whose failure is logged, never the run's
  RunReport run_at(core::Id company_id, core::Source kind, bool force, bool full,
                   core::TimePoint started);
  // Reads the source on a second thread, a few batches ahead, while this one plans (and, when
  // applying, writes, all in one transaction) what came before. read_done: when the last
  // batch the source handed over was planned.
  // state: the source's state to read with (empty: the whole directory).
  RunResult stream(const store::DirectorySync& sync, const std::string& state, bool apply,
                   bool force, const SyncRun::Sink& sink, SourceRead& r,
                   std::chrono::steady_clock::time_point& read_done);
  DirectorySource& source(core::Source kind);
  // Reads the source; entries outside the company's domains are rejected, not planned. Uses
  // no store (a run reads on another thread while this one writes): the caller passes the
  // company's domains.
  SourceRead read(const store::DirectorySync& sync, const std::string& state,
                  const std::set<std::string>& domains, const core::EntrySink& on_entries);

  store::Store& store_;
  const store::SecretBox& secrets_;
  const core::Clock& clock_;
  std::map<core::Source, DirectorySource*> sources_;
  std::function<void()> on_outcome_;
  std::mutex running_mutex_;
  std::set<std::pair<core::Id, core::Source>> running_;  // runs under way in this process
};

}  // namespace mailroster::directory
