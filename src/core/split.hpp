// Splitting text at a separator, without copying: "a,,b" at ',' is {"a", "", "b"}; "" is {""}.
#pragma once

#include <string_view>
#include <vector>

namespace mailroster::core {

inline std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const auto at = text.find(separator, start);
    if (at == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, at - start));
    start = at + 1;
  }
}

}  // namespace mailroster::core
