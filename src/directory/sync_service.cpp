#include "directory/sync_service.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "core/json.hpp"
#include "core/read_ahead.hpp"

namespace mailroster::directory {

using core::ErrorCode;
using core::Failure;
using nlohmann::json;

namespace {

std::string name_of(core::Source kind) { return std::string(core::to_string(kind)); }

core::SyncConfig config_of(const store::DirectorySync& sync) {
  auto c = core::sync_config_from_json(json::parse(sync.options, nullptr, false));
  if (!c)
    throw Failure(ErrorCode::internal, "stored sync options are damaged: " + c.error().message);
  return *c;
}

json run_json(const RunResult& r) {
  return {{"create", r.creates},
          {"update", r.updates},
          {"delete", r.deletes},
          {"skip", r.skips},
          {"company_users", r.company_users},
          {"source_complete", r.source_complete}};
}

json time_or_null(const std::optional<core::TimePoint>& t) {
  return t ? json(core::format_iso8601(*t)) : json(nullptr);
}

// What a sync keeps between runs (DirectorySync::state): the source's own state (AD's change
// number, Graph's delta link), when the last full read was, and a fingerprint of the settings
// and options that read was made with. A run reads only changes while both still hold;
// otherwise it reads the whole directory:
//  - at least every kFullReadEvery: only a full read finds deletions (an ordinary LDAP search
//    never shows deleted objects; Graph's user delta has no groups) and repairs anything an
//    incremental read missed;
//  - after any change of what is read or how it is planned (another base DN, filter, host or
//    tenant; an include flag, the default role or an action turned on): entries the old
//    settings left out have not changed, so only a full read brings them in.
constexpr auto kFullReadEvery = std::chrono::hours(24);

struct KeptState {
  std::string source;
  std::optional<core::TimePoint> full_at;
  std::string config;
};

KeptState parse_kept(const std::string& text) {
  const auto j = json::parse(text, nullptr, false);
  KeptState k;
  if (!j.is_object() || !j.contains("source") || !j["source"].is_string()) {
    k.source = text;  // kept before the fingerprint was: a full read next
    return k;
  }
  k.source = j["source"].get<std::string>();
  if (j.contains("full_at") && j["full_at"].is_string()) {
    if (auto t = core::parse_iso8601(j["full_at"].get<std::string>())) k.full_at = *t;
  }
  k.config = j.value("config", "");
  return k;
}

// The settings and the options that change what a read brings in or how it is planned; the
// schedule and the deletion guard's limits do not.
std::string fingerprint(const store::DirectorySync& sync) {
  auto options = json::parse(sync.options, nullptr, false);
  if (options.is_object()) {
    for (const char* key : {"frequency_hours", "max_delete_count", "max_delete_share"}) {
      options.erase(key);
    }
  }
  const auto text = sync.settings + "\n" + options.dump();
  unsigned char hash[16];
  crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(text.data()),
                     text.size(), nullptr, 0);
  std::string hex(sizeof hash * 2, '0');
  sodium_bin2hex(hex.data(), hex.size() + 1, hash, sizeof hash);
  return hex;
}

// The source state a run at `now` reads with: empty means a full read.
std::string read_state(const store::DirectorySync& sync, core::TimePoint now) {
  const auto kept = parse_kept(sync.state);
  if (kept.source.empty() || !kept.full_at || now - *kept.full_at >= kFullReadEvery ||
      now < *kept.full_at || kept.config != fingerprint(sync)) {
    return {};
  }
  return kept.source;
}

// What to keep after a successful run started at `started`.
std::string state_after(const store::DirectorySync& sync, const SourceRead& r,
                        core::TimePoint started) {
  if (r.state.empty()) return {};  // the source cannot read changes only
  const auto full_at =
      r.snapshot.complete ? std::optional(started) : parse_kept(sync.state).full_at;
  json j = {{"source", r.state}, {"config", fingerprint(sync)}};
  if (full_at) j["full_at"] = core::format_iso8601(*full_at);
  return j.dump();
}

}  // namespace

json rejected_json(const std::vector<Rejected>& list) {
  auto out = json::array();
  for (const auto& r : list) out.push_back({{"what", r.what}, {"reason", r.reason}});
  return out;
}

SyncService::SyncService(store::Store& store, const store::SecretBox& secrets,
                         const core::Clock& clock)
    : store_(store), secrets_(secrets), clock_(clock) {}

void SyncService::add_source(DirectorySource& source) { sources_[source.kind()] = &source; }

DirectorySource& SyncService::source(core::Source kind) {
  auto it = sources_.find(kind);
  if (it == sources_.end()) {
    throw Failure(ErrorCode::invalid_argument, "no directory source '" + name_of(kind) + "'");
  }
  return *it->second;
}

store::DirectorySync SyncService::require(core::Id company_id, core::Source kind) {
  auto sync = store_.directory_sync(company_id, kind);
  if (!sync) {
    throw Failure(ErrorCode::not_found,
                  "no " + name_of(kind) + " sync is configured for this company (configure first)");
  }
  return *sync;
}

store::DirectorySync SyncService::configure(core::Id company_id, core::Source kind,
                                            const json& settings, const json& options,
                                            const std::optional<std::string>& secret,
                                            const core::Actor& actor) {
  auto& src = source(kind);
  const auto existing = store_.directory_sync(company_id, kind);
  if (!settings.is_object() || !options.is_object()) {
    throw Failure(ErrorCode::invalid_argument, "settings and options must be JSON objects");
  }
  json merged = existing ? json::parse(existing->settings) : json::object();
  merged.update(settings);
  auto checked = src.check_settings(merged);
  if (!checked) throw Failure(checked.error());
  const auto base = existing ? config_of(*existing) : core::SyncConfig{};
  auto config = core::sync_config_from_json(options, base);
  if (!config) throw Failure(config.error());
  if (!existing && !secret) {
    throw Failure(ErrorCode::invalid_argument, "a password or secret is needed the first time",
                  "secret");
  }
  store::DirectorySync d;
  d.company_id = company_id;
  d.kind = kind;
  d.settings = checked->dump();
  d.options = core::to_json_value(*config).dump();
  d.frequency_hours = config->frequency_hours;
  store_.save_directory_sync(d, secret ? std::optional(secrets_.seal(*secret)) : std::nullopt,
                             actor);
  return require(company_id, kind);
}

namespace {

// Only the company's own domains: anything else is rejected here, never planned.
void keep_company_domains(std::vector<core::DirectoryEntry>& entries,
                          const std::set<std::string>& domains, std::vector<Rejected>& rejected) {
  std::erase_if(entries, [&](core::DirectoryEntry& e) {
    if (!domains.count(e.address.domain())) {
      rejected.push_back(
          {e.address.str(), "domain '" + e.address.domain() + "' is not a domain of this company"});
      return true;
    }
    if (e.aliases) {
      std::erase_if(*e.aliases, [&](const core::Address& a) {
        if (domains.count(a.domain())) return false;
        rejected.push_back({a.str(), "alias of " + e.address.str() + ": domain '" + a.domain() +
                                         "' is not a domain of this company"});
        return true;
      });
    }
    return false;
  });
}

}  // namespace

SourceRead SyncService::read(const store::DirectorySync& sync, const std::string& state,
                             const std::set<std::string>& domains,
                             const core::EntrySink& on_entries) {
  auto secret = secrets_.unseal(sync.sealed_secret);
  if (!secret) throw Failure(secret.error());
  std::vector<Rejected> rejected;  // from batches handed over while reading
  core::EntrySink sink;
  if (on_entries) {
    sink = [&](std::vector<core::DirectoryEntry>&& batch) {
      keep_company_domains(batch, domains, rejected);
      return batch.empty() || on_entries(std::move(batch));
    };
  }
  auto r = source(sync.kind).read(json::parse(sync.settings), *secret, state, sink);
  if (!r) {
    throw Failure(ErrorCode::unavailable,
                  name_of(sync.kind) + " sync failed, nothing was changed: " + r.error().message);
  }
  auto out = std::move(r).value();
  keep_company_domains(out.snapshot.entries, domains, rejected);
  out.rejected.insert(out.rejected.end(), std::make_move_iterator(rejected.begin()),
                      std::make_move_iterator(rejected.end()));
  return out;
}

json SyncService::test(core::Id company_id, core::Source kind) {
  const auto sync = require(company_id, kind);
  auto secret = secrets_.unseal(sync.sealed_secret);
  if (!secret) throw Failure(secret.error());
  auto r = source(kind).test(json::parse(sync.settings), *secret);
  if (!r) throw Failure(ErrorCode::unavailable, r.error().message);
  return *r;
}

Preview SyncService::preview(core::Id company_id, core::Source kind, const SyncRun::Sink& sink,
                             bool full) {
  const auto sync = require(company_id, kind);
  SourceRead r;
  std::chrono::steady_clock::time_point read_done;
  Preview p;
  p.result = stream(sync, full ? std::string() : read_state(sync, clock_.now()), false, false, sink,
                    r, read_done);
  p.rejected = std::move(r.rejected);
  p.info = std::move(r.info);
  return p;
}

RunResult SyncService::stream(const store::DirectorySync& sync, const std::string& state,
                              bool apply, bool force, const SyncRun::Sink& sink, SourceRead& r,
                              std::chrono::steady_clock::time_point& read_done) {
  const auto options = config_of(sync).options;
  const auto company_domains = store::domain_names(store_, sync.company_id);
  core::ReadAhead<std::vector<core::DirectoryEntry>> ahead(
      [&](const auto& push) {
        r = read(sync, state, company_domains,
                 [&](std::vector<core::DirectoryEntry>&& batch) { return push(std::move(batch)); });
      },
      8);
  // The transaction starts with the first batch: connecting, binding and a server that does
  // not answer keep nobody else from the store. A read that fails halfway undoes the batches
  // already written.
  auto first = ahead.next();
  RunResult result;
  auto plan = [&] {
    SyncRun run(store_, sync.company_id, sync.kind, options, apply, sink);
    for (auto batch = std::move(first); batch; batch = ahead.next()) run.add(*batch);
    read_done = std::chrono::steady_clock::now();
    run.add(r.snapshot.entries);  // what the source kept to the end (LDAP: the groups)
    result = run.finish(r.snapshot.complete, force, r.snapshot.removed);
  };
  if (apply) {
    store_.atomically(plan);
  } else {
    plan();
  }
  return result;
}

RunReport SyncService::run(core::Id company_id, core::Source kind, bool force, bool full) {
  return run_at(company_id, kind, force, full, clock_.now());
}

RunReport SyncService::run_at(core::Id company_id, core::Source kind, bool force, bool full,
                              core::TimePoint started) {
  const auto sync = require(company_id, kind);
  const std::pair key{company_id, kind};
  {
    std::lock_guard lock(running_mutex_);
    if (!running_.insert(key).second) {
      throw Failure(ErrorCode::conflict, "this company's " + name_of(kind) +
                                             " sync is running now; try again when it has "
                                             "finished");
    }
  }
  struct Done {
    SyncService& service;
    std::pair<core::Id, core::Source> key;
    ~Done() {
      std::lock_guard lock(service.running_mutex_);
      service.running_.erase(key);
    }
  } done{*this, key};
  try {
    // Durations are measurements for the operator, not rules: a steady clock.
    using Steady = std::chrono::steady_clock;
    const auto t0 = Steady::now();
    RunReport report;
    SourceRead r;
    Steady::time_point t1;
    report.result =
        stream(sync, full ? std::string() : read_state(sync, started), true, force, {}, r, t1);
    const auto t2 = Steady::now();
    report.rejected = std::move(r.rejected);
    report.info = std::move(r.info);
    auto seconds = [](Steady::duration d) { return std::chrono::duration<double>(d).count(); };
    // read: until the last page read was written (reading and writing overlap); apply: the
    // rest (groups, deletions, the commit).
    report.info["read_seconds"] = seconds(t1 - t0);
    report.info["apply_seconds"] = seconds(t2 - t1);
    json result = run_json(report.result);
    result["rejected"] = report.rejected.size();
    result["info"] = report.info;
    store_.record_sync_outcome(
        company_id, kind, started,
        {.success = true, .result = result.dump(), .state = state_after(sync, r, started)});
    told();
    return report;
  } catch (const Failure& f) {
    store_.record_sync_outcome(company_id, kind, started, {.success = false, .error = f.what()});
    told();
    throw;
  } catch (const std::exception& e) {  // a fault of ours, not the source's: recorded the same
    const Failure f(
        ErrorCode::internal,
        name_of(kind) + " sync failed, nothing was changed: internal error: " + e.what());
    store_.record_sync_outcome(company_id, kind, started, {.success = false, .error = f.what()});
    told();
    throw f;
  }
}

void SyncService::told() noexcept {
  if (!on_outcome_) return;
  try {
    on_outcome_();
  } catch (const std::exception& e) {
    spdlog::warn("after a sync's outcome: {}", e.what());
  }
}

std::size_t SyncService::run_due(core::TimePoint now) {
  std::size_t ran = 0;
  for (const auto& sync : store_.directory_syncs(std::nullopt)) {
    if (!core::sync_due(sync.frequency_hours, sync.last_attempt, now)) continue;
    ++ran;
    try {
      const auto report = run_at(sync.company_id, sync.kind, false, false, now);
      spdlog::info("sync {} company={}: create={} update={} delete={} skip={} rejected={}",
                   name_of(sync.kind), sync.company_id, report.result.creates,
                   report.result.updates, report.result.deletes, report.result.skips,
                   report.rejected.size());
    } catch (const Failure& f) {
      spdlog::warn("sync {} company={} failed: {}", name_of(sync.kind), sync.company_id, f.what());
    }
  }
  return ran;
}

json to_json_value(const SyncOverview& s) {
  const auto time = time_or_null;
  return {{"company", s.company},
          {"kind", name_of(s.kind)},
          {"frequency_hours", s.frequency_hours ? json(*s.frequency_hours) : json(nullptr)},
          {"last_success", time(s.last_success)},
          {"last_attempt", time(s.last_attempt)},
          {"last_error", s.last_error.empty() ? json(nullptr) : json(s.last_error)},
          {"failing", s.failing()},
          {"last_full_read", time(s.last_full_read)},
          {"next_read", s.full_next ? "full" : "incremental"}};
}

std::vector<SyncOverview> SyncService::overview(std::optional<core::Id> company_id) {
  std::map<core::Id, std::string> names;
  for (const auto& c : store_.list_companies()) names[c.id] = c.name;
  const auto now = clock_.now();
  std::vector<SyncOverview> out;
  for (const auto& s : store_.directory_syncs(company_id)) {
    out.push_back({.company_id = s.company_id,
                   .company = names[s.company_id],
                   .kind = s.kind,
                   .frequency_hours = s.frequency_hours,
                   .last_success = s.last_success,
                   .last_attempt = s.last_attempt,
                   .last_full_read = parse_kept(s.state).full_at,
                   .last_error = s.last_error,
                   .full_next = read_state(s, now).empty()});
  }
  std::sort(out.begin(), out.end(), [](const SyncOverview& a, const SyncOverview& b) {
    return std::tie(a.company, a.kind) < std::tie(b.company, b.kind);
  });
  return out;
}

json SyncService::status(core::Id company_id, core::Source kind) {
  const auto s = require(company_id, kind);
  const auto time = time_or_null;
  return {{"kind", name_of(kind)},
          {"settings", json::parse(s.settings)},
          {"options", json::parse(s.options)},
          {"secret_set", !s.sealed_secret.empty()},
          {"last_attempt", time(s.last_attempt)},
          {"last_success", time(s.last_success)},
          {"last_error", s.last_error.empty() ? json(nullptr) : json(s.last_error)},
          {"last_result", s.last_result.empty() ? json(nullptr) : json::parse(s.last_result)},
          {"last_full_read", time(parse_kept(s.state).full_at)},
          {"next_read", read_state(s, clock_.now()).empty() ? "full" : "incremental"}};
}

}  // namespace mailroster::directory
