#include "core/text_table.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace mailroster::core {
namespace {

TEST(TextTable, ColumnsAreAsWideAsTheirWidestCell) {
  EXPECT_EQ(format_table({"A", "LONG HEADER"}, {{"wide cell", "x"}, {"y", "z"}}),
            "A          LONG HEADER\n"
            "wide cell  x\n"
            "y          z\n");
  EXPECT_EQ(format_table({"A", "B"}, {{"1", "2"}}, {.indent = "  ", .rule = true}),
            "  A  B\n"
            "  -  -\n"
            "  1  2\n");
}

// Written line by line from rows made on demand: the same text, each row made twice (once for
// the widths, once for its line), never all held at once.
TEST(TextTable, WrittenRowByRowAsFormatted) {
  const std::vector<std::vector<std::string>> rows = {{"alice@acme.example", "Alice"},
                                                      {"bob@acme.example", "Robert"}};
  std::ostringstream out;
  std::vector<std::size_t> asked;
  write_table(out, {"ADDRESS", "NAME"}, rows.size(), [&](std::size_t i) {
    asked.push_back(i);
    return rows[i];
  });
  EXPECT_EQ(out.str(), format_table({"ADDRESS", "NAME"}, rows));
  EXPECT_EQ(asked, (std::vector<std::size_t>{0, 1, 0, 1}));
}

}  // namespace
}  // namespace mailroster::core
