// The fields of a message's header section (RFC 5322 2.2), walked in place: what the built-in
// checks count, what a rewritten Subject replaces, the X-Spam fields dropped before relaying,
// the Received fields that tell a mail loop. Pure, no copies.
#pragma once

#include <cstddef>
#include <string_view>

namespace mailroster::gateway {

struct HeaderField {
  std::string_view name;  // as written before the colon ("" when its first line has none)
  std::size_t begin = 0;  // its octets in the message: [begin, end), CRLFs and folded lines in
  std::size_t end = 0;
};

// Whether a field name is `lower` (lower-case ASCII), in any case.
constexpr bool header_name_is(std::string_view name, std::string_view lower) {
  if (name.size() != lower.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i] >= 'A' && name[i] <= 'Z' ? char(name[i] - 'A' + 'a') : name[i];
    if (c != lower[i]) return false;
  }
  return true;
}

// Calls f(const HeaderField&) for each field of the header section (up to the first empty line,
// or the whole message when it has none), in order; a field goes on over the lines that start
// with a space or a tab (folding, RFC 5322 2.2.3). f returns false to stop.
template <class F>
void for_each_header_field(std::string_view message, F&& f) {
  const auto blank = message.find("\r\n\r\n");
  const auto header_end = blank == std::string_view::npos ? message.size() : blank + 2;
  // Where the line starting at `at` ends, its CRLF included.
  const auto line_end = [&](std::size_t at) {
    const auto eol = message.find("\r\n", at);
    return eol == std::string_view::npos || eol >= header_end ? header_end : eol + 2;
  };
  std::size_t at = 0;
  while (at < header_end) {
    HeaderField field{.begin = at, .end = line_end(at)};
    const auto first = message.substr(at, field.end - at);
    if (const auto colon = first.find(':'); colon != std::string_view::npos) {
      field.name = first.substr(0, colon);
    }
    while (field.end < header_end && (message[field.end] == ' ' || message[field.end] == '\t')) {
      field.end = line_end(field.end);
    }
    if (!f(static_cast<const HeaderField&>(field))) return;
    at = field.end;
  }
}

}  // namespace mailroster::gateway
