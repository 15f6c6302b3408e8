// Plain-text tables with aligned columns, for the CLI's listings and the weekly report.
#pragma once

#include <cstddef>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace mailroster::core {

struct TableStyle {
  std::string indent;  // before every line
  bool rule = false;   // a line of dashes under the header
};

// Columns are as wide as their widest cell, two spaces apart; lines end in "\n".
std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows,
                         const TableStyle& style = {});

// The same table written to out line by line, its rows made by row(0) ... row(count - 1),
// each asked twice (for the widths, then for its line): a listing of a million rows needs no
// copy of all its cells at once.
void write_table(std::ostream& out, const std::vector<std::string>& header, std::size_t count,
                 const std::function<std::vector<std::string>(std::size_t)>& row,
                 const TableStyle& style = {});

}  // namespace mailroster::core
