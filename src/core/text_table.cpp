#include "core/text_table.hpp"

#include <algorithm>
#include <sstream>

namespace mailroster::core {

std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows,
                         const TableStyle& style) {
  std::ostringstream out;
  write_table(
      out, header, rows.size(), [&rows](std::size_t i) { return rows[i]; }, style);
  return out.str();
}

void write_table(std::ostream& out, const std::vector<std::string>& header, std::size_t count,
                 const std::function<std::vector<std::string>(std::size_t)>& row,
                 const TableStyle& style) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (std::size_t r = 0; r < count; ++r) {
    const auto cells = row(r);
    for (std::size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], cells[i].size());
    }
  }
  std::string text;
  auto line = [&](const std::vector<std::string>& cells) {
    text = style.indent;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      text += cells[i];
      if (i + 1 < cells.size()) text += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    text += "\n";
    out << text;
  };
  line(header);
  if (style.rule) {
    std::vector<std::string> dashes;
    for (auto w : width) dashes.emplace_back(w, '-');
    line(dashes);
  }
  for (std::size_t r = 0; r < count; ++r) line(row(r));
}

}  // namespace mailroster::core
