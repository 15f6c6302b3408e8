// libFuzzer target: what an LDAP server sends, read as mailroster reads it. The input is
// lines "attribute: value" (a value may hold any byte but a newline). Checks:
//  - escape_filter_value leaves no byte RFC 4515 says to escape, and unescapes to the value;
//  - to_entry (user and group), ranged member values and DN normalisation never crash, and an
//    entry it accepts has a primary address that parses again.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/address.hpp"
#include "directory/ldap/ldap_entry.hpp"

namespace ldap = mailroster::directory::ldap;

namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

void check_escape(const std::string& value) {
  const auto escaped = ldap::escape_filter_value(value);
  std::string back;
  for (std::size_t i = 0; i < escaped.size(); ++i) {
    const auto c = static_cast<unsigned char>(escaped[i]);
    if (c == '*' || c == '(' || c == ')' || c == 0 || c >= 0x80) __builtin_trap();
    if (c != '\\') {
      back += static_cast<char>(c);
      continue;
    }
    if (i + 2 >= escaped.size()) __builtin_trap();  // a backslash starts \XX
    const int hi = hex(escaped[i + 1]), lo = hex(escaped[i + 2]);
    if (hi < 0 || lo < 0) __builtin_trap();
    back += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  if (back != value) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ldap::Attributes attrs;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const auto line = text.substr(start, end - start);
    start = end + 1;
    const auto colon = line.find(": ");
    if (colon == std::string_view::npos) {
      check_escape(std::string(line));
      continue;
    }
    const std::string name(line.substr(0, colon)), value(line.substr(colon + 2));
    attrs[name].push_back(value);
    check_escape(value);
    (void)ldap::parse_range(name, "member");
    (void)ldap::normalize_dn(value);
    (void)ldap::parse_integer(value);
    (void)ldap::guid_text(value);
  }
  for (const bool group : {false, true}) {
    const auto entry = ldap::to_entry(attrs, group);
    if (entry && !mailroster::core::Address::parse(entry->address.str())) __builtin_trap();
  }
  (void)ldap::ranged_values(attrs, "member");
  return 0;
}
