#include "core/text_table.hpp"

#include <algorithm>

namespace mailroster::core {

std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows,
                         const TableStyle& style) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    out += style.indent;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    out += "\n";
  };
  line(header);
  if (style.rule) {
    std::vector<std::string> dashes;
    for (auto w : width) dashes.emplace_back(w, '-');
    line(dashes);
  }
  for (const auto& row : rows) line(row);
  return out;
}

}  // namespace mailroster::core
