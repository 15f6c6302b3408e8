#include "directory/sync_service.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <future>

#include "core/discovery.hpp"
#include "store/sql/sql_store.hpp"
#include "test_support.hpp"

namespace mailroster::directory {
namespace {

using nlohmann::json;

core::Address addr(const std::string& a) { return core::Address::parse(a).value(); }

// A directory in memory (the real LDAP source is tested against slapd): what it holds, the
// secret it expects, and whether it is down or cut off mid-read. When the sync takes entries
// as they are read, it hands them over one by one (cut_after: fail after that many).
class MemoryDirectory : public DirectorySource {
 public:
  core::Source kind() const override { return core::Source::ldap; }
  core::Result<json> check_settings(const json& s) const override {
    if (!s.contains("host")) return core::invalid("'host' is required", "host");
    return s;
  }
  core::Result<json> test(const json&, const std::string& secret) override {
    if (secret != "s3cret") return core::Error{core::ErrorCode::unavailable, "bind refused", ""};
    return json{{"server", "memory"}};
  }
  core::Result<SourceRead> read(const json&, const std::string& secret, const std::string& state,
                                const core::EntrySink& on_entries) override {
    last_state = state;
    if (throws) throw std::runtime_error("a bug in the source");
    if (secret != "s3cret") return core::Error{core::ErrorCode::unavailable, "bind refused", ""};
    if (down) return core::Error{core::ErrorCode::unavailable, "connection lost on page 3", ""};
    SourceRead r;
    r.snapshot.source = core::Source::ldap;
    std::size_t handed = 0;
    for (const auto& [id, address] : entries) {
      core::DirectoryEntry e;
      e.source_id = id;
      e.address = addr(address);
      if (!on_entries) {
        r.snapshot.entries.push_back(e);
        continue;
      }
      if (handed == 0 && before_first) before_first();
      if (cut_after && handed == *cut_after) {
        return core::Error{core::ErrorCode::unavailable, "connection lost mid-read", ""};
      }
      ++handed;
      if (!on_entries({e})) return core::Error{core::ErrorCode::unavailable, "stopped", ""};
    }
    r.state = "usn-" + std::to_string(++reads);
    r.snapshot.complete = !incremental || state.empty();
    return r;
  }
  std::vector<std::pair<std::string, std::string>> entries;
  bool down = false;
  bool throws = false;       // a fault that is no core::Failure
  bool incremental = false;  // a read from a state is of changes only (as AD's)
  std::optional<std::size_t> cut_after;
  std::function<void()> before_first;  // called before the first entry is handed over
  int reads = 0;
  std::string last_state;
};

class SyncServiceTest : public ::testing::TestWithParam<store::sql::Dialect> {
 protected:
  SyncServiceTest()
      : clock(core::parse_iso8601("2026-11-24T10:07:00Z").value()),
        owned(database.open(clock)),
        store(*owned),
        secrets(store::SecretBox::open_key_file(dir.file("key"))),
        service(store, secrets, clock) {
    service.add_source(source);
    corp = store.add_company({"corp", "", "", {}}, admin);
    store.add_domain(corp.id, "corp.example", core::Endpoint::parse("h").value(), admin);
    source.entries = {
        {"g1", "alice@corp.example"}, {"g2", "bob@corp.example"}, {"g3", "eve@elsewhere.example"}};
  }
  void configure(const json& options = json::object()) {
    service.configure(corp.id, core::Source::ldap, {{"host", "dc1"}}, options,
                      std::string("s3cret"), admin);
  }
  testing::TempDir dir;
  core::ManualClock clock;
  testing::TestDatabase database{GetParam()};
  std::unique_ptr<store::sql::SqlStore> owned;
  store::sql::SqlStore& store;
  store::SecretBox secrets;
  SyncService service;
  MemoryDirectory source;
  core::Actor admin{"admin:test"};
  core::Company corp;
};

INSTANTIATE_TEST_SUITE_P(Databases, SyncServiceTest,
                         ::testing::Values(store::sql::Dialect::sqlite,
                                           store::sql::Dialect::postgres),
                         [](const auto& p) { return testing::dialect_name(p.param); });

TEST_P(SyncServiceTest, SecretIsSealedAndNeverShown) {
  EXPECT_THROW(service.configure(corp.id, core::Source::ldap, {{"host", "dc1"}}, json::object(),
                                 std::nullopt, admin),
               core::Failure);  // the first configuration needs the secret
  configure();
  const auto sync = store.directory_sync(corp.id, core::Source::ldap).value();
  EXPECT_EQ(sync.sealed_secret.find("s3cret"), std::string::npos);
  EXPECT_EQ(secrets.unseal(sync.sealed_secret).value(), "s3cret");
  const auto status = service.status(corp.id, core::Source::ldap).dump();
  EXPECT_EQ(status.find("s3cret"), std::string::npos);
  EXPECT_NE(status.find("\"secret_set\":true"), std::string::npos);
  for (const auto& e : store.list_audit({corp.id, 0})) {
    EXPECT_EQ(e.after.find("s3cret"), std::string::npos);
    EXPECT_EQ(e.after.find(sync.sealed_secret), std::string::npos);
  }
  // Changing settings keeps the secret.
  service.configure(corp.id, core::Source::ldap, {{"port", 636}}, json::object(), std::nullopt,
                    admin);
  EXPECT_EQ(service.test(corp.id, core::Source::ldap)["server"], "memory");
  EXPECT_THROW(service.configure(corp.id, core::Source::ldap, json::object(),
                                 {{"frequency_hours", 5}}, std::nullopt, admin),
               core::Failure);
}

TEST_P(SyncServiceTest, PreviewChangesNothingRunAppliesAndForeignDomainsAreRejected) {
  configure();
  std::vector<std::string> items;
  const auto p = service.preview(corp.id, core::Source::ldap, [&](const core::PlanItem& i) {
    items.push_back(std::string(core::to_string(i.action)) + " " + i.address.str());
  });
  EXPECT_EQ(p.result.creates, 2u);
  EXPECT_EQ(items.size(), 2u);
  ASSERT_EQ(p.rejected.size(), 1u);
  EXPECT_EQ(p.rejected[0].what, "eve@elsewhere.example");
  EXPECT_EQ(store.count_users(corp.id), 0u);
  const auto r = service.run(corp.id, core::Source::ldap, false);
  EXPECT_EQ(r.result.creates, 2u);
  EXPECT_EQ(store.count_users(corp.id), 2u);
  const auto st = service.status(corp.id, core::Source::ldap);
  EXPECT_EQ(st["last_success"], "2026-11-24T10:07:00Z");
  EXPECT_TRUE(st["last_error"].is_null());
  EXPECT_EQ(st["last_result"]["create"], 2);
  // The incremental state of a successful run is handed to the next read.
  service.run(corp.id, core::Source::ldap, false);
  EXPECT_EQ(source.last_state, "usn-2");
}

TEST_P(SyncServiceTest, AFailedReadAppliesAndDeletesNothingAndIsRecorded) {
  configure({{"delete_removed", true}, {"max_delete_share", 1.0}});
  service.run(corp.id, core::Source::ldap, false);
  source.down = true;
  clock.advance(std::chrono::hours(1));
  EXPECT_THROW(service.run(corp.id, core::Source::ldap, false), core::Failure);
  EXPECT_EQ(store.count_users(corp.id), 2u);
  const auto st = service.status(corp.id, core::Source::ldap);
  EXPECT_EQ(st["last_success"], "2026-11-24T10:07:00Z");
  EXPECT_EQ(st["last_attempt"], "2026-11-24T11:07:00Z");
  EXPECT_NE(st["last_error"].get<std::string>().find("connection lost"), std::string::npos);
  // A source that answers with fewer entries deletes (the guard allows 100 % here).
  source.down = false;
  source.entries.pop_back();
  source.entries.pop_back();
  service.run(corp.id, core::Source::ldap, false);
  EXPECT_EQ(store.count_users(corp.id), 1u);
}

// Until the source hands over its first entries (connecting, binding, a slow first page) the
// run holds no transaction: other callers can use the store meanwhile.
TEST_P(SyncServiceTest, TheStoreIsFreeUntilTheFirstEntriesArrive) {
  configure();
  bool free = false;
  std::future<std::size_t> other;  // outlives the hook: were the store held, it ends after the run
  source.before_first = [&] {
    other = std::async(std::launch::async, [&] { return store.count_users(corp.id); });
    free = other.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  };
  service.run(corp.id, core::Source::ldap, false);
  EXPECT_TRUE(free);
  EXPECT_EQ(store.count_users(corp.id), 2u);
}

// A run writes each batch while the next is read, all in one transaction: a read cut off
// after some batches were written leaves the company as it was.
TEST_P(SyncServiceTest, AReadCutOffAfterSomeBatchesUndoesThemAll) {
  configure({{"delete_removed", true}, {"max_delete_share", 1.0}});
  source.entries = {{"g1", "alice@corp.example"}};
  service.run(corp.id, core::Source::ldap, false);
  source.entries = {{"g2", "bob@corp.example"},
                    {"g3", "eve@elsewhere.example"},
                    {"g4", "carol@corp.example"},
                    {"g5", "dave@corp.example"}};
  source.cut_after = 3;
  clock.advance(std::chrono::hours(1));
  EXPECT_THROW(service.run(corp.id, core::Source::ldap, false), core::Failure);
  const auto users = store.list_users({.company_id = corp.id});
  ASSERT_EQ(users.size(), 1u);  // bob and carol undone, alice not deleted
  EXPECT_EQ(users[0].address.str(), "alice@corp.example");
  EXPECT_NE(service.status(corp.id, core::Source::ldap)["last_error"].get<std::string>().find(
                "connection lost mid-read"),
            std::string::npos);
  // Whole, the same entries apply, and a streamed entry outside the company's domains is
  // rejected like any other.
  source.cut_after.reset();
  const auto r = service.run(corp.id, core::Source::ldap, false);
  EXPECT_EQ(r.result.creates, 3u);
  EXPECT_EQ(r.result.deletes, 1u);
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(r.rejected[0].what, "eve@elsewhere.example");
  EXPECT_EQ(store.count_users(corp.id), 3u);
}

TEST_P(SyncServiceTest, ScheduledRunsStartAtTheTopOrBottomOfTheHour) {
  configure({{"frequency_hours", 1}});
  EXPECT_EQ(service.run_due(clock.now()), 1u);  // never ran: due now (10:07, slot 10:00)
  EXPECT_EQ(service.run_due(clock.now() + std::chrono::minutes(40)), 0u);  // 10:47
  EXPECT_EQ(service.run_due(core::parse_iso8601("2026-11-24T11:00:00Z").value()), 1u);
  source.down = true;  // a failure is recorded, not thrown, and waits for its next slot
  EXPECT_EQ(service.run_due(core::parse_iso8601("2026-11-24T12:00:05Z").value()), 1u);
  EXPECT_EQ(service.run_due(core::parse_iso8601("2026-11-24T12:20:00Z").value()), 0u);
  service.configure(corp.id, core::Source::ldap, json::object(), {{"frequency_hours", nullptr}},
                    std::nullopt, admin);
  EXPECT_EQ(service.run_due(core::parse_iso8601("2026-11-25T12:00:00Z").value()), 0u);
}

// Changes only while the last full read is under 24 hours old and made with the same
// settings and options (what decides what is read or planned); else a full read.
TEST_P(SyncServiceTest, TheSourceReadsChangesOnlyAfterARecentFullReadWithTheSameSettings) {
  configure();
  source.incremental = true;
  auto read_with = [&] {
    service.run(corp.id, core::Source::ldap, false);
    return source.last_state;
  };
  EXPECT_EQ(read_with(), "");  // never read: full
  EXPECT_EQ(read_with(), "usn-1");
  clock.advance(std::chrono::hours(23));
  EXPECT_EQ(read_with(), "usn-2");
  clock.advance(std::chrono::hours(1));
  EXPECT_EQ(service.status(corp.id, core::Source::ldap)["next_read"], "full");
  EXPECT_EQ(read_with(), "");  // 24 hours since the full read
  EXPECT_EQ(service.status(corp.id, core::Source::ldap)["last_full_read"], "2026-11-25T10:07:00Z");
  EXPECT_EQ(read_with(), "usn-4");
  service.configure(corp.id, core::Source::ldap, json::object(), {{"frequency_hours", 6}},
                    std::nullopt, admin);
  EXPECT_EQ(read_with(), "usn-5");  // the schedule is not what is read
  service.configure(corp.id, core::Source::ldap, json::object(), {{"default_role", "end_user"}},
                    std::nullopt, admin);
  EXPECT_EQ(read_with(), "");
  service.configure(corp.id, core::Source::ldap, {{"host", "dc2"}}, json::object(), std::nullopt,
                    admin);
  EXPECT_EQ(read_with(), "");
  EXPECT_EQ(read_with(), "usn-8");
  source.down = true;  // a failed run keeps what was kept
  EXPECT_THROW(service.run(corp.id, core::Source::ldap, false), core::Failure);
  source.down = false;
  EXPECT_EQ(read_with(), "usn-9");
}

// A fault that is not the source's (an exception of ours) is recorded like any failure, and
// the scheduler goes on to the next sync instead of retrying it at every tick.
TEST_P(SyncServiceTest, AnInternalErrorIsRecordedAndTheSchedulerGoesOn) {
  configure({{"frequency_hours", 1}});
  source.throws = true;
  EXPECT_EQ(service.run_due(clock.now()), 1u);
  const auto st = service.status(corp.id, core::Source::ldap);
  EXPECT_EQ(st["last_attempt"], "2026-11-24T10:07:00Z");
  EXPECT_NE(st["last_error"].get<std::string>().find("internal error: a bug in the source"),
            std::string::npos)
      << st["last_error"];
  EXPECT_EQ(service.run_due(clock.now() + std::chrono::minutes(20)), 0u);
  EXPECT_EQ(store.count_users(corp.id), 0u);
}

// The observer (serve's sync metrics) hears of every outcome; its own failure is not the run's.
TEST_P(SyncServiceTest, EveryOutcomeIsToldAndATellingThatFailsIsNotTheRunsFailure) {
  configure();
  std::vector<std::string> told;
  service.on_outcome([&] {
    told.push_back(service.status(corp.id, core::Source::ldap)["last_error"].is_null() ? "ok"
                                                                                       : "failed");
    if (told.size() == 1) throw std::runtime_error("the metrics are gone");
  });
  service.run(corp.id, core::Source::ldap, false);
  source.down = true;
  EXPECT_THROW(service.run(corp.id, core::Source::ldap, false), core::Failure);
  EXPECT_EQ(told, (std::vector<std::string>{"ok", "failed"}));
  EXPECT_TRUE(service.status(corp.id, core::Source::ldap)["last_success"].is_string());
  EXPECT_EQ(store.count_users(corp.id), 2u);
}

// Sync in the web UI while the scheduler runs the same sync: refused at once, not queued, and
// no failure of the sync; the run under way goes on.
TEST_P(SyncServiceTest, ASecondRunOfTheSameSyncMeanwhileIsRefusedNotQueued) {
  configure();
  std::optional<core::Failure> refused;
  source.before_first = [&] {
    try {
      service.run(corp.id, core::Source::ldap, false);
    } catch (const core::Failure& f) {
      refused = f;
    }
  };
  service.run(corp.id, core::Source::ldap, false);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->code(), core::ErrorCode::conflict);
  EXPECT_NE(std::string(refused->what()).find("running now"), std::string::npos);
  EXPECT_EQ(store.count_users(corp.id), 2u);
  EXPECT_TRUE(service.status(corp.id, core::Source::ldap)["last_error"].is_null());
  source.before_first = {};
  source.down = true;  // a run that failed leaves the sync free for the next
  EXPECT_THROW(service.run(corp.id, core::Source::ldap, false), core::Failure);
  source.down = false;
  EXPECT_NO_THROW(service.run(corp.id, core::Source::ldap, false));
}

TEST_P(SyncServiceTest, ADailySyncTurnsDiscoveryOff) {
  EXPECT_FALSE(store.directory_sync_hours(corp.id));
  configure({{"frequency_hours", 24}});
  EXPECT_EQ(store.directory_sync_hours(corp.id), 24);
  EXPECT_FALSE(core::discovery_active(store.discovery_settings(corp.id),
                                      store.directory_sync_hours(corp.id)));
}

}  // namespace
}  // namespace mailroster::directory
