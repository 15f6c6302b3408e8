#include "directory/csv/csv_import.hpp"

#include <unordered_map>

#include "directory/csv/csv_reader.hpp"

namespace mailroster::directory::csv {

namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

enum Column { kEmail, kFirstName, kSurname, kRole, kType, kAliases, kColumns };
constexpr const char* kNames[kColumns] = {"email", "first_name", "surname",
                                          "role",  "type",       "aliases"};

}  // namespace

core::Result<CsvSnapshot> read_user_csv(std::istream& in,
                                        const std::set<std::string>& company_domains,
                                        const std::function<void(std::size_t)>& progress) {
  CsvReader reader(in);
  CsvSnapshot out;
  out.snapshot.source = core::Source::csv;

  auto header = reader.next();
  if (!header)
    return core::invalid("the file is empty: a header row with an email column is needed");
  if (header->error) {
    return core::invalid("line " + std::to_string(header->line) + ": " + *header->error);
  }
  int index[kColumns];
  std::fill(std::begin(index), std::end(index), -1);
  for (std::size_t i = 0; i < header->fields.size(); ++i) {
    const auto name = core::ascii_lower(trim(header->fields[i]));
    bool known = false;
    for (int c = 0; c < kColumns; ++c) {
      if (name != kNames[c]) continue;
      if (index[c] >= 0) return core::invalid("line 1: column '" + name + "' appears twice");
      index[c] = static_cast<int>(i);
      known = true;
    }
    if (!known) out.unknown_columns.push_back(header->fields[i]);
  }
  if (index[kEmail] < 0) return core::invalid("line 1: the header has no 'email' column");

  std::unordered_map<std::string, std::size_t> seen;  // address key -> line that used it
  auto domain_ok = [&](const core::Address& a) { return company_domains.count(a.domain()) > 0; };

  while (auto rec = reader.next()) {
    ++out.rows;
    if (progress && out.rows % 10000 == 0) progress(out.rows);
    auto bad = [&](std::string why) { out.errors.push_back({rec->line, std::move(why)}); };
    if (rec->error) {
      bad(*rec->error);
      continue;
    }
    if (rec->fields.size() != header->fields.size()) {
      bad("expected " + std::to_string(header->fields.size()) + " fields, found " +
          std::to_string(rec->fields.size()));
      continue;
    }
    auto field = [&](Column c) {
      return index[c] < 0 ? std::string() : trim(rec->fields[index[c]]);
    };

    core::DirectoryEntry e;
    e.line = rec->line;
    const auto email = field(kEmail);
    if (email.empty()) {
      bad("email is empty");
      continue;
    }
    auto address = core::Address::parse(email);
    if (!address) {
      bad("bad address '" + email + "': " + address.error().message);
      continue;
    }
    if (!domain_ok(*address)) {
      bad(address->str() + ": domain '" + address->domain() + "' is not a domain of this company");
      continue;
    }
    e.address = *address;
    e.first_name = field(kFirstName);
    e.surname = field(kSurname);

    const auto role = core::ascii_lower(field(kRole));
    if (role == "end_user" || role == "silent_user") {
      e.role = core::parse_role(role).value();
    } else if (role == "functional") {
      e.functional = true;
    } else if (!role.empty()) {
      bad("unknown role '" + field(kRole) + "' (end_user or silent_user)");
      continue;
    }
    const auto type = core::ascii_lower(field(kType));
    if (type == "functional") {
      e.functional = true;
    } else if (!type.empty() && type != "user") {
      bad("unknown type '" + field(kType) + "' (user or functional)");
      continue;
    }

    std::optional<RowError> alias_error;
    if (index[kAliases] >= 0) {
      std::vector<core::Address> aliases;
      const auto text = field(kAliases);
      std::size_t pos = 0;
      while (pos <= text.size() && !alias_error) {
        const auto semi = text.find(';', pos);
        const auto item = trim(std::string_view(text).substr(
            pos, semi == std::string::npos ? std::string::npos : semi - pos));
        pos = semi == std::string::npos ? text.size() + 1 : semi + 1;
        if (item.empty()) continue;
        auto a = core::Address::parse(item);
        if (!a) {
          alias_error = RowError{rec->line, "bad alias '" + item + "': " + a.error().message};
        } else if (!domain_ok(*a)) {
          alias_error = RowError{rec->line, "alias " + a->str() + ": domain '" + a->domain() +
                                                "' is not a domain of this company"};
        } else if (!(*a == e.address)) {
          aliases.push_back(*a);
        }
      }
      e.aliases = std::move(aliases);
    }
    if (alias_error) {
      out.errors.push_back(*alias_error);
      continue;
    }
    // Duplicates and clashes within the file.
    if (auto it = seen.find(e.address.key()); it != seen.end()) {
      bad(e.address.str() + " is already used on line " + std::to_string(it->second));
      continue;
    }
    bool clash = false;
    if (e.aliases) {
      for (const auto& a : *e.aliases) {
        if (auto it = seen.find(a.key()); it != seen.end()) {
          bad("alias " + a.str() + " clashes with line " + std::to_string(it->second));
          clash = true;
          break;
        }
      }
    }
    if (clash) continue;
    seen.emplace(e.address.key(), rec->line);
    if (e.aliases) {
      for (const auto& a : *e.aliases) seen.emplace(a.key(), rec->line);
    }
    out.snapshot.entries.push_back(std::move(e));
  }
  return out;
}

}  // namespace mailroster::directory::csv
