// The database drivers (SQLite, PostgreSQL) against the one interface the store uses: the same
// SQL text, the same answers.
#include "store/sql/database.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/json.hpp"
#include "store/migrations/migration.hpp"
#include "test_support.hpp"

namespace mailroster::store::sql {
namespace {

struct Row {
  std::int64_t number;
  std::string name;
  std::optional<std::string> note;
};

void row_cell(const Row& r, int column, Cell& out) {
  switch (column) {
    case 0:
      return out.set(r.number);
    case 1:
      return out.set(r.name);
    default:
      return out.set(r.note);
  }
}

class DatabaseTest : public ::testing::TestWithParam<Dialect> {
 protected:
  testing::TestDatabase database{GetParam()};
  std::unique_ptr<Database> db = database.connect();
  std::vector<Row> rows{{7, "seven", std::nullopt}, {3, "thr\"ee\\", "odd 'quote'"}, {11, "", ""}};
  RowsOf<Row, void (*)(const Row&, int, Cell&)> set{rows, "itt", row_cell};
};

INSTANTIATE_TEST_SUITE_P(Databases, DatabaseTest,
                         ::testing::Values(Dialect::sqlite, Dialect::postgres),
                         [](const auto& p) { return testing::dialect_name(p.param); });

TEST_P(DatabaseTest, AStatementReadsTheBoundRowsInOrder) {
  auto s =
      db->prepare("SELECT rowid, c0, c1, c2 IS NULL, c2 FROM mailroster_rows(?1) ORDER BY rowid");
  s.bind(1, set);
  std::vector<std::string> read;
  while (s.step()) {
    read.push_back(std::to_string(s.int64(0)) + " " + std::to_string(s.int64(1)) + " " + s.text(2) +
                   " " + (s.boolean(3) ? "null" : "'" + s.text(4) + "'"));
  }
  EXPECT_EQ(read, (std::vector<std::string>{"0 7 seven null", "1 3 thr\"ee\\ 'odd 'quote''",
                                            "2 11  ''"}));
}

TEST_P(DatabaseTest, RowsInsertAndJoinLikeATableWithOrWithoutAnAlias) {
  db->exec("CREATE TABLE t(n BIGINT, name TEXT)");
  db->exec("INSERT INTO t VALUES (3, 'x'), (11, 'y')");
  db->prepare("INSERT INTO t SELECT c0, c1 FROM mailroster_rows(?1) ORDER BY rowid")
      .bind(1, set)
      .run();
  auto count = db->prepare("SELECT count(*) FROM t WHERE n IN (SELECT c0 FROM mailroster_rows(?))");
  count.bind(1, set);
  ASSERT_TRUE(count.step());
  EXPECT_EQ(count.int64(0), 5);
  auto s = db->prepare(
      "SELECT b.c1, t.name FROM mailroster_rows(?1) AS b JOIN t ON t.n = b.c0 AND t.name <> b.c1 "
      "WHERE b.c0 > ?2 ORDER BY b.rowid");
  s.bind(1, set).bind(2, std::int64_t{4});
  std::vector<std::string> read;
  while (s.step()) read.push_back(s.text(0) + "=" + s.text(1));
  EXPECT_EQ(read, (std::vector<std::string>{"=y"}));
}

TEST_P(DatabaseTest, EmptyRowsAreAnEmptyTableOfTheirTypes) {
  const std::vector<Row> none;
  RowsOf<Row, void (*)(const Row&, int, Cell&)> empty{none, "itt", row_cell};
  db->exec("CREATE TABLE t(n BIGINT)");
  auto s = db->prepare("SELECT count(*) FROM t WHERE n IN (SELECT c0 FROM mailroster_rows(?1))");
  s.bind(1, empty);
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.int64(0), 0);
}

// Numbered, repeated and bare parameters, a '?' inside a literal, NULLs of either type, and a
// boolean read as an integer.
TEST_P(DatabaseTest, ParametersAsSQLiteNumbersThem) {
  auto s = db->prepare(
      "SELECT ?2 || '?' || ?1, ?, ?2 IS NULL, (?4 IS NULL OR 5 = ?4), COALESCE(?5, 'none'), "
      "?1 = 'a'");
  s.bind(1, "a").bind(2, "b").bind(3, std::int64_t{42}).bind_null(4, true).bind_null(5, false);
  ASSERT_TRUE(s.step());
  EXPECT_EQ(s.text(0), "b?a");
  EXPECT_EQ(s.int64(1), 42);
  EXPECT_FALSE(s.boolean(2));
  EXPECT_TRUE(s.boolean(3));
  EXPECT_EQ(s.text(4), "none");
  EXPECT_TRUE(s.boolean(5));
}

TEST_P(DatabaseTest, JsonObjectAndTheSQLiteFunctionsTheStoreUses) {
  if (GetParam() == Dialect::postgres) {
    for (const auto& m : postgres_migrations()) db->exec(m.sql);
  }
  auto s = db->prepare(
      "SELECT json_object('a', ?1, 'n', 5), strftime('%Y-%m-%dT%H:%M:%SZ', 1764547200, "
      "'unixepoch'), instr('mailroster', 'roster')");
  s.bind(1, "x\"y");
  ASSERT_TRUE(s.step());
  const auto j = nlohmann::json::parse(s.text(0));
  EXPECT_EQ(j, (nlohmann::json{{"a", "x\"y"}, {"n", 5}}));
  EXPECT_EQ(s.text(1), "2025-12-01T00:00:00Z");
  EXPECT_EQ(s.int64(2), 5);
}

TEST_P(DatabaseTest, ConstraintViolationsAreToldApart) {
  db->exec("CREATE TABLE t(k TEXT PRIMARY KEY)");
  db->exec("INSERT INTO t VALUES ('a')");
  try {
    db->exec("INSERT INTO t VALUES ('a')");
    ADD_FAILURE() << "a duplicate key went in";
  } catch (const DbError& e) {
    EXPECT_TRUE(e.is_constraint()) << e.what();
  }
  try {
    db->exec("SELECT * FROM no_such_table");
    ADD_FAILURE() << "no error";
  } catch (const DbError& e) {
    EXPECT_FALSE(e.is_constraint()) << e.what();
  }
}

// SQLite: another connection's commit, and a row this one changed, grow the count; reads do
// not. (PostgreSQL's notifications: PostgresConnection below.)
TEST(SqliteConnection, ChangeCountGrowsWithCommitsOnly) {
  const testing::TestDatabase database(Dialect::sqlite);
  auto db = database.connect();
  auto other = database.connect();
  other->exec("CREATE TABLE t (n INTEGER)");
  const auto first = db->change_count();
  db->exec("SELECT count(*) FROM t");
  EXPECT_EQ(db->change_count(), first);
  other->exec("INSERT INTO t VALUES (1)");
  const auto second = db->change_count();
  EXPECT_GT(second, first);
  db->exec("INSERT INTO t VALUES (2)");
  EXPECT_GT(db->change_count(), second);
}

TEST_P(DatabaseTest, ATransactionRollsBackUnlessCommittedAndSavepointsNest) {
  db->exec("CREATE TABLE t(n BIGINT)");
  {
    Transaction outer(*db);
    db->exec("INSERT INTO t VALUES (1)");
    {
      Transaction inner(*db);
      db->exec("INSERT INTO t VALUES (2)");
    }  // rolled back to its savepoint
    db->exec("INSERT INTO t VALUES (3)");
    outer.commit();
  }
  {
    Transaction dropped(*db);
    db->exec("INSERT INTO t VALUES (4)");
  }
  auto s = db->prepare("SELECT n FROM t ORDER BY n");
  std::vector<std::int64_t> n;
  while (s.step()) n.push_back(s.int64(0));
  EXPECT_EQ(n, (std::vector<std::int64_t>{1, 3}));
  auto changed = db->prepare("UPDATE t SET n = n + 10");
  changed.run();
  EXPECT_EQ(db->changes(), 2);
}

// A server that drops the connection (a restart, a failover, an idle timeout): the next
// command reconnects and runs, unless a transaction was open on the lost connection, when that
// command fails, as the database being unavailable (worth trying again, not the command's
// fault), and the one after it works.
TEST(PostgresConnection, AConnectionTheServerDroppedIsOpenedAgain) {
  const testing::TestDatabase database(Dialect::postgres);
  auto db = database.connect();
  auto other = database.connect();
  auto drop = [&] {
    auto pid = db->prepare("SELECT pg_backend_pid()");
    ASSERT_TRUE(pid.step());
    auto kill = other->prepare("SELECT pg_terminate_backend(CAST(?1 AS INTEGER))");
    kill.bind(1, pid.int64(0));
    ASSERT_TRUE(kill.step());
    ASSERT_TRUE(kill.boolean(0));
  };
  drop();
  auto one = db->prepare("SELECT 1");
  ASSERT_TRUE(one.step());
  EXPECT_EQ(one.int64(0), 1);
  auto setting = db->prepare("SELECT current_setting('random_page_cost')");
  ASSERT_TRUE(setting.step());
  EXPECT_EQ(setting.text(0), "1.1") << "the new connection has the session's settings";
  {
    Transaction tx(*db);
    drop();
    try {
      db->exec("SELECT 1");
      ADD_FAILURE() << "ran on a dropped connection";
    } catch (const DbError& e) {
      EXPECT_TRUE(e.is_unavailable()) << e.what();
    }
  }
  EXPECT_NO_THROW(db->exec("SELECT 1"));
}

// A statement is prepared on the server once per connection and then only executed; a
// connection opened again prepares it again.
TEST(PostgresConnection, AStatementIsPreparedOnceAndAgainOnANewConnection) {
  const testing::TestDatabase database(Dialect::postgres);
  auto db = database.connect();
  auto other = database.connect();
  const auto prepared = [&] {
    auto s = db->prepare(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%mr_marker_%'");
    s.step();
    return s.int64(0);
  };
  const auto run = [&](std::int64_t n) {
    auto s = db->prepare("SELECT ?1 + 1 AS mr_marker_");
    s.bind(1, n);
    EXPECT_TRUE(s.step());
    return s.int64(0);
  };
  EXPECT_EQ(run(1), 2);
  EXPECT_EQ(run(41), 42);
  EXPECT_EQ(prepared(), 2) << "the statement and the count itself, each once";
  auto pid = db->prepare("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid.step());
  auto kill = other->prepare("SELECT pg_terminate_backend(CAST(?1 AS INTEGER))");
  kill.bind(1, pid.int64(0));
  ASSERT_TRUE(kill.step());
  EXPECT_EQ(run(2), 3) << "prepared again on the new connection";
  EXPECT_EQ(prepared(), 2);
}

// change_count() hears the schema's notifications (the triggers of migration 0002 send them;
// here they are sent by hand), not another schema's, and counts a connection opened again,
// which listens again.
TEST(PostgresConnection, ChangeCountHearsTheSchemasNotificationsAndCountsAReconnect) {
  const testing::TestDatabase database(Dialect::postgres);
  auto db = database.connect();
  auto other = database.connect();
  auto grows_from = [&](std::uint64_t count) {
    for (int i = 0; i < 1000; ++i) {
      if (db->change_count() > count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  const auto first = db->change_count();
  EXPECT_EQ(db->change_count(), first);
  other->exec("SELECT pg_notify('mailroster_lookups', current_schema())");
  EXPECT_TRUE(grows_from(first));
  auto count = db->change_count();
  other->exec("SELECT pg_notify('mailroster_lookups', 'another_schema')");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(db->change_count(), count);

  auto pid = db->prepare("SELECT pg_backend_pid()");
  ASSERT_TRUE(pid.step());
  auto kill = other->prepare("SELECT pg_terminate_backend(CAST(?1 AS INTEGER))");
  kill.bind(1, pid.int64(0));
  ASSERT_TRUE(kill.step());
  EXPECT_NO_THROW(db->exec("SELECT 1"));  // opened again
  EXPECT_GT(db->change_count(), count);
  count = db->change_count();
  other->exec("SELECT pg_notify('mailroster_lookups', current_schema())");
  EXPECT_TRUE(grows_from(count)) << "the new connection listens too";
}

}  // namespace
}  // namespace mailroster::store::sql
