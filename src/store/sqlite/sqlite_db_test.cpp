// What only the SQLite driver does (store/sql/database_test.cpp runs the rest on both drivers).
#include "store/sqlite/sqlite_db.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace mailroster::store::sqlite
