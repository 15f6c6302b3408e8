#include "directory/ldap/ldap_entry.hpp"

#include <charconv>
#include <cstdio>
#include <functional>

namespace mailroster::directory::ldap {

namespace {

const std::vector<std::string>* find(const Attributes& attrs, const std::string& name) {
  auto it = attrs.find(name);
  return it == attrs.end() || it->second.empty() ? nullptr : &it->second;
}

std::string first(const Attributes& attrs, const std::string& name) {
  const auto* v = find(attrs, name);
  return v ? v->front() : std::string();
}

}  // namespace

std::optional<std::string> guid_text(const std::string& b) {
  if (b.size() != 16) return std::nullopt;
  // Byte order of the text form; -1: a dash.
  constexpr int kOrder[] = {3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15};
  constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (const int i : kOrder) {
    if (i < 0) {
      out += '-';
      continue;
    }
    const auto c = static_cast<unsigned char>(b[i]);
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

std::optional<std::int64_t> parse_integer(const std::string& text) {
  std::int64_t v = 0;
  const auto* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || text.empty()) return std::nullopt;
  return v;
}

bool is_security_group(std::int64_t group_type) {
  return (static_cast<std::uint32_t>(group_type) & 0x80000000u) != 0;
}

core::Result<core::DirectoryEntry> to_entry(const Attributes& attrs, bool is_group) {
  core::DirectoryEntry e;
  if (const auto* g = find(attrs, "objectguid")) {
    auto text = guid_text(g->front());
    if (!text) return core::invalid("objectGUID is not 16 bytes");
    e.source_id = *text;
  } else {
    e.source_id = first(attrs, "entryuuid");
  }
  if (e.source_id.empty()) return core::invalid("no objectGUID or entryUUID");

  const auto* proxy_values = find(attrs, "proxyaddresses");
  auto addresses = mail_addresses(proxy_values ? *proxy_values : std::vector<std::string>{},
                                  first(attrs, "mail"));
  if (!addresses) return addresses.error();
  e.address = addresses->primary;
  e.aliases = addresses->aliases;
  e.first_name = first(attrs, "givenname");
  e.surname = first(attrs, "sn");
  for (const auto* s : {&e.first_name, &e.surname}) {
    if (!core::is_valid_utf8(*s)) return core::invalid("a name is not valid UTF-8");
  }

  if (const auto uac = parse_integer(first(attrs, "useraccountcontrol"))) {
    e.disabled = (*uac & 0x2) != 0;
  }
  e.hidden = core::ascii_lower(first(attrs, "msexchhidefromaddresslists")) == "true";
  if (const auto type = parse_integer(first(attrs, "msexchrecipienttypedetails"))) {
    e.functional = (*type & (0x4 | 0x10 | 0x20)) != 0;  // shared, room, equipment mailbox
  }
  if (is_group) {
    const auto type = parse_integer(first(attrs, "grouptype"));
    e.security_group = type && is_security_group(*type);
    if (!e.security_group) e.functional = true;  // a distribution list: an address, no person
  }
  return e;
}

std::string escape_filter_value(const std::string& value) {
  std::string out;
  for (const unsigned char c : value) {
    if (c == '*' || c == '(' || c == ')' || c == '\\' || c == 0 || c >= 0x80) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "\\%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::optional<Range> parse_range(const std::string& attribute, const std::string& base) {
  const auto prefix = base + ";range=";
  if (attribute.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const auto spec = attribute.substr(prefix.size());
  const auto dash = spec.find('-');
  if (dash == std::string::npos) return std::nullopt;
  Range r;
  const auto first_part = parse_integer(spec.substr(0, dash));
  if (!first_part || *first_part < 0) return std::nullopt;
  r.first = static_cast<std::size_t>(*first_part);
  const auto last = spec.substr(dash + 1);
  if (last != "*") {
    const auto l = parse_integer(last);
    if (!l || *l < *first_part) return std::nullopt;
    r.last = static_cast<std::size_t>(*l);
  }
  return r;
}

RangedValues ranged_values(const Attributes& attrs, const std::string& base) {
  RangedValues out;
  if (const auto* v = find(attrs, base)) {
    out.values = *v;
    return out;
  }
  for (const auto& [name, values] : attrs) {
    const auto r = parse_range(name, base);
    if (!r) continue;
    out.values = values;
    if (r->last) {
      out.next_request = base + ";range=" + std::to_string(*r->last + 1) + "-*";
    }
    break;
  }
  return out;
}

std::string normalize_dn(const std::string& dn) {
  std::string out;
  for (const char c : dn) {
    if (c == ' ' && (out.empty() || out.back() == ',' || out.back() == '=')) continue;
    if (c == ',' || c == '=') {
      while (!out.empty() && out.back() == ' ') out.pop_back();
    }
    out += c;
  }
  return core::ascii_lower(out);
}

std::map<std::string, std::set<std::string>> resolve_members(
    const std::map<std::string, std::vector<std::string>>& direct) {
  std::map<std::string, std::vector<std::string>> groups;
  for (const auto& [dn, members] : direct) {
    auto& list = groups[normalize_dn(dn)];
    for (const auto& m : members) list.push_back(normalize_dn(m));
  }
  std::map<std::string, std::set<std::string>> out;
  for (const auto& [dn, members] : groups) {
    std::set<std::string> visited{dn};
    std::set<std::string>& users = out[dn];
    std::vector<std::string> todo(members.begin(), members.end());
    while (!todo.empty()) {
      const auto m = todo.back();
      todo.pop_back();
      if (auto g = groups.find(m); g != groups.end()) {
        if (visited.insert(m).second) todo.insert(todo.end(), g->second.begin(), g->second.end());
      } else {
        users.insert(m);
      }
    }
  }
  return out;
}

std::optional<std::string> incremental_filter(const std::optional<ServerState>& stored,
                                              const ServerState& server,
                                              const std::string& base_filter) {
  if (!stored || !stored->highest_usn || !server.highest_usn) return std::nullopt;
  if (stored->invocation_id.empty() || stored->invocation_id != server.invocation_id) {
    return std::nullopt;
  }
  return "(&" + base_filter + "(uSNChanged>=" + std::to_string(*stored->highest_usn + 1) + "))";
}

}  // namespace mailroster::directory::ldap
