// What only the SQLite driver does (store/sql/database_test.cpp runs the rest on both drivers).
#include "store/sqlite/sqlite_db.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "test_support.hpp"

namespace mailroster::store::sqlite {
namespace {

// mailroster_rows is a table-valued function here: with its argument left NULL it is empty, and
// without an argument SQLite refuses it.
TEST(SqliteRows, WithoutRowsBoundItIsEmptyAndWithoutArgumentRefused) {
  testing::TempDir dir;
  Database db(dir.file("rows.db"));
  auto s = db.prepare("SELECT count(*) FROM mailroster_rows(?1)");
  ASSERT_TRUE(s.step());  // ?1 left NULL: no rows, no crash
  EXPECT_EQ(s.int64(0), 0);
  EXPECT_THROW(db.prepare("SELECT count(*) FROM mailroster_rows"), DbError);
}

// The WAL grows as large as the largest transaction that went through while readers held it
// (an import under a running serve: 1.3 GB); once a checkpoint lets it start over, it is cut
// back to 64 MiB instead of staying that large.
TEST(SqliteDatabase, CutsTheWalBackAfterALargeWrite) {
  testing::TempDir dir;
  Database db(dir.file("wal.db"));
  auto limit = db.prepare("PRAGMA journal_size_limit");
  ASSERT_TRUE(limit.step());
  EXPECT_EQ(limit.int64(0), 64 * 1024 * 1024);
}

// Another connection's write held past the busy wait is told apart from other errors: it is
// worth trying again (the store makes it "unavailable: database busy").
TEST(SqliteDatabase, AWriteHeldByAnotherConnectionIsBusy) {
  testing::TempDir dir;
  Database first(dir.file("busy.db"));
  Database second(dir.file("busy.db"));
  first.exec("CREATE TABLE t (x)");
  first.exec("PRAGMA busy_timeout = 0");
  second.exec("PRAGMA busy_timeout = 0");
  second.exec("BEGIN IMMEDIATE");
  try {
    first.exec("BEGIN IMMEDIATE");
    ADD_FAILURE() << "two writers at once";
  } catch (const DbError& e) {
    EXPECT_TRUE(e.is_busy()) << e.what();
    EXPECT_FALSE(e.is_constraint());
  }
  second.exec("COMMIT");
  EXPECT_NO_THROW(first.exec("BEGIN IMMEDIATE"));
  first.exec("COMMIT");
}

// A full disk (here: the database at its page limit) or a read-only one is told apart from the
// statement's own errors: the database cannot take writes now, worth trying again later (the
// store makes it "unavailable").
TEST(SqliteDatabase, AFullOrReadOnlyDiskIsUnavailable) {
  testing::TempDir dir;
  Database db(dir.file("full.db"));
  db.exec("CREATE TABLE t (x BLOB)");
  auto pages = db.prepare("PRAGMA page_count");
  ASSERT_TRUE(pages.step());
  db.exec("PRAGMA max_page_count = " + std::to_string(pages.int64(0)));
  const auto full = [](const std::function<void()>& write) {
    try {
      write();
      ADD_FAILURE() << "written past the limit";
    } catch (const DbError& e) {
      EXPECT_TRUE(e.is_unavailable()) << e.what();
      EXPECT_FALSE(e.is_constraint() || e.is_busy());
      EXPECT_TRUE(std::string(e.what()).find("full") != std::string::npos ||
                  std::string(e.what()).find("readonly") != std::string::npos)
          << e.what();
    }
  };
  full([&] { db.exec("INSERT INTO t VALUES (zeroblob(100000))"); });
  full([&] { db.prepare("INSERT INTO t VALUES (zeroblob(100000))").run(); });
  db.exec("PRAGMA max_page_count = 1000000");
  db.exec("PRAGMA query_only = 1");  // as a file system gone read-only
  full([&] { db.exec("INSERT INTO t VALUES (1)"); });
  db.exec("PRAGMA query_only = 0");
  try {
    db.exec("INSERT INTO nowhere VALUES (1)");
    ADD_FAILURE() << "a table that does not exist";
  } catch (const DbError& e) {
    EXPECT_FALSE(e.is_unavailable()) << "a mistake is not the database's state: " << e.what();
  }
}

}  // namespace
}  // namespace mailroster::store::sqlite
