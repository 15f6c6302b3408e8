#include "store/sqlite/sqlite_db.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace mailroster::store::sqlite {
namespace {

struct Row {
  std::int64_t number;
  std::string name;
  std::optional<std::string> note;
};

class RowSetTest : public ::testing::Test {
 protected:
  testing::TempDir dir;
  Database db{dir.file("rows.db")};
  std::vector<Row> rows{{7, "seven", std::nullopt}, {3, "three", "odd"}, {11, "eleven", ""}};
  RowsOf<Row, void (*)(const Row&, int, Cell&)> set{rows, "itt",
                                                    [](const Row& r, int column, Cell& out) {
                                                      switch (column) {
                                                        case 0:
                                                          return out.set(r.number);
                                                        case 1:
                                                          return out.set(r.name);
                                                        default:
                                                          return out.set(r.note);
                                                      }
                                                    }};
};

TEST_F(RowSetTest, AStatementReadsTheBoundRowsInOrder) {
  auto s = db.prepare("SELECT rowid, c0, c1, c2 IS NULL, c2 FROM mailroster_rows(?1)");
  s.bind(1, set);
  std::vector<std::string> read;
  while (s.step()) {
    read.push_back(std::to_string(s.int64(0)) + " " + std::to_string(s.int64(1)) + " " + s.text(2) +
                   " " + (s.boolean(3) ? "null" : "'" + s.text(4) + "'"));
  }
  EXPECT_EQ(read,
            (std::vector<std::string>{"0 7 seven null", "1 3 three 'odd'", "2 11 eleven ''"}));
}

TEST_F(RowSetTest, InsertsAndJoinsLikeATable) {
  db.exec("CREATE TABLE t(n INTEGER, name TEXT); INSERT INTO t VALUES (3, 'x'), (11, 'y')");
  db.prepare("INSERT INTO t SELECT c0, c1 FROM mailroster_rows(?1) ORDER BY rowid")
      .bind(1, set)
      .run();
  auto count = db.prepare("SELECT count(*) FROM t");
  ASSERT_TRUE(count.step());
  EXPECT_EQ(count.int64(0), 5);
  // The rows as the outer loop of a join, in their order.
  auto s = db.prepare(
      "SELECT b.c1, t.name FROM mailroster_rows(?1) b JOIN t ON t.n = b.c0 AND t.name <> b.c1 "
      "ORDER BY b.rowid");
  s.bind(1, set);
  std::vector<std::string> read;
  while (s.step()) read.push_back(s.text(0) + "=" + s.text(1));
  EXPECT_EQ(read, (std::vector<std::string>{"three=x", "eleven=y"}));
}

TEST_F(RowSetTest, WithoutRowsBoundItIsEmptyAndWithoutArgumentRefused) {
  auto s = db.prepare("SELECT count(*) FROM mailroster_rows(?1)");
  ASSERT_TRUE(s.step());  // ?1 left NULL: no rows, no crash
  EXPECT_EQ(s.int64(0), 0);
  EXPECT_THROW(db.prepare("SELECT count(*) FROM mailroster_rows"), DbError);
}

}  // namespace
}  // namespace mailroster::store::sqlite
