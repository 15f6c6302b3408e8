// Plain-text tables with aligned columns, for the CLI's listings and the weekly report.
#pragma once

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

}  // namespace mailroster::core
