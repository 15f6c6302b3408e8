#include "store/sqlite/sqlite_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "core/json.hpp"
#include "store/migrations/migration.hpp"
#include "test_support.hpp"

namespace mailroster::store::sqlite {
namespace {

using core::Address;
using core::ErrorCode;
using core::Failure;
using namespace std::chrono;

Address addr(const char* text) { return Address::parse(text).value(); }

using testing::expect_failure;

TEST(SqliteStoreOpen, RefusesASchemaNewerThanTheBinary) {
  testing::TempDir dir;
  core::SystemClock clock;
  { SqliteStore s(dir.file("state.db"), clock); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (9999, 'future', 0)", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  expect_failure([&] { SqliteStore s(dir.file("state.db"), clock); }, ErrorCode::internal,
                 "schema version 9999 is newer");
}

// A database made by an earlier version, with data, is migrated without losing any of it, and
// the rebuilt tables keep their rules (claims, checks, foreign keys).
TEST(SqliteStoreOpen, MigratesADatabaseWithDataFromVersion4) {
  testing::TempDir dir;
  core::SystemClock clock;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("state.db").c_str(), &db), SQLITE_OK);
  auto exec = [&](const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << " in " << sql.substr(0, 80);
    sqlite3_free(err);
    return rc;
  };
  exec(
      "PRAGMA foreign_keys = ON; CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
      "name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
  for (const auto& m : sqlite_migrations()) {
    if (m.version > 4) break;
    exec(std::string(m.sql));
    exec("INSERT INTO schema_migrations VALUES (" + std::to_string(m.version) + ", '" +
         std::string(m.name) + "', 0)");
  }
  exec(
      "INSERT INTO companies VALUES (1, 'acme', '', '', 0);"
      "INSERT INTO domains VALUES (1, 1, 'acme.example', '127.0.0.1', 25, 0);"
      "INSERT INTO users VALUES (7, 1, 1, 'Ann@acme.example', 'ann@acme.example', 'Ann', 'Lee', "
      "'end_user', 'csv', '', 0, 0);"
      "INSERT INTO aliases VALUES (3, 1, 1, 7, 'a.lee@acme.example', 'a.lee@acme.example', 0);"
      "INSERT INTO logins VALUES (1, 'ann@acme.example', 'x', 'end_user', 1, 7, 0);"
      "INSERT INTO invalid_addresses VALUES (5, 1, 1, 'old@acme.example', 'old@acme.example', "
      "'left', 0);");
  sqlite3_close(db);

  SqliteStore store(dir.file("state.db"), clock);
  EXPECT_EQ(store.schema_version(), sqlite_migrations().back().version);
  EXPECT_EQ(testing::claim_mismatches(dir.file("state.db")), 0);  // each claim names its row
  EXPECT_EQ(store.resolve(addr("A.Lee@acme.example")).user_id, 7);
  EXPECT_EQ(store.resolve(addr("old@acme.example")).kind, AddressOwner::Kind::invalid);
  const auto ann = store.find_user(addr("ann@acme.example"));
  ASSERT_TRUE(ann);
  EXPECT_EQ(ann->id, 7);
  EXPECT_EQ(ann->first_name, "Ann");
  ASSERT_TRUE(store.find_alias(addr("a.lee@acme.example")));
  EXPECT_EQ(store.find_alias(addr("a.lee@acme.example"))->user_id, 7);
  ASSERT_TRUE(store.find_login("ann@acme.example"));
  const core::Actor actor{"test"};
  NewUser clash;
  clash.address = addr("a.lee@acme.example");
  expect_failure([&] { store.add_user(clash, actor); }, ErrorCode::conflict, "already an alias");
  clash.address = addr("bob@acme.example");
  EXPECT_EQ(store.add_user(clash, actor).address.str(), "bob@acme.example");
  store.remove_user(7, actor);  // its alias goes, its claim is freed, its login cascades
  EXPECT_FALSE(store.find_login("ann@acme.example"));
  store.add_alias(store.find_user(addr("bob@acme.example"))->id, addr("a.lee@acme.example"), actor);
  EXPECT_EQ(testing::claim_mismatches(dir.file("state.db")), 0);

  ASSERT_EQ(sqlite3_open(dir.file("state.db").c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_NE(sqlite3_exec(db,
                         "INSERT INTO users VALUES (9, 1, 1, 'x@acme.example', 'x@acme.example', "
                         "'', '', 'boss', 'csv', '', 0, 0)",
                         nullptr, nullptr, &err),
            SQLITE_OK);
  EXPECT_NE(std::string(err ? err : "").find("CHECK constraint failed"), std::string::npos);
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST(SqliteStoreOpen, UsesWalAndForeignKeys) {
  testing::TempDir dir;
  core::SystemClock clock;
  { SqliteStore s(dir.file("state.db"), clock); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("state.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

namespace {
int page_size_of(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &stmt, nullptr);
  const int size = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return size;
}
}  // namespace

TEST(SqliteStoreOpen, ANewDatabaseHas16KiBPagesAnOldOneKeepsItsOwn) {
  testing::TempDir dir;
  core::SystemClock clock;
  { SqliteStore s(dir.file("new.db"), clock); }
  EXPECT_EQ(page_size_of(dir.file("new.db")), 16384);
  // A database made with SQLite's default page size (as before) opens, migrates and works.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("old.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE "
                         "t (x)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  {
    SqliteStore s(dir.file("old.db"), clock);
    s.add_company({"acme", "it@acme.example", "", {}}, core::Actor{"test"});
    EXPECT_TRUE(s.find_company("acme"));
  }
  EXPECT_EQ(page_size_of(dir.file("old.db")), 4096);
}

TEST(SqliteStoreOpen, UnopenablePathIsAClearError) {
  core::SystemClock clock;
  expect_failure([&] { SqliteStore s("/nonexistent-dir/x/state.db", clock); }, ErrorCode::internal,
                 "cannot open database");
}

// ---- companies ------------------------------------------------------------------------------

}  // namespace
}  // namespace mailroster::store::sqlite
