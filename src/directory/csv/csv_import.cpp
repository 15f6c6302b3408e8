#include "directory/csv/csv_import.hpp"

#include "directory/csv/csv_export.hpp"
#include "directory/csv/csv_reader.hpp"

namespace mailroster::directory::csv {

namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// The items of an aliases cell: split at each ';' outside a quoted local part, so that
// "a;b"@x (a valid address) stays one item.
std::vector<std::string_view> split_aliases(std::string_view text) {
  std::vector<std::string_view> items;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (quoted && text[i] == '\\') {
      ++i;  // a quoted pair
    } else if (text[i] == '"') {
      quoted = !quoted;
    } else if (text[i] == ';' && !quoted) {
      items.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  items.push_back(text.substr(start));
  return items;
}

constexpr const char* kNames[] = {"email", "first_name", "surname", "role", "type", "aliases"};

}  // namespace

core::Result<UserCsvReader> UserCsvReader::open(std::istream& in,
                                                std::set<std::string> company_domains) {
  UserCsvReader r(in);
  r.domains_ = std::move(company_domains);
  auto header = r.reader_->next();
  if (!header)
    return core::invalid("the file is empty: a header row with an email column is needed");
  if (header->error) {
    return core::invalid("line " + std::to_string(header->line) + ": " + *header->error);
  }
  std::fill(std::begin(r.index_), std::end(r.index_), -1);
  for (std::size_t i = 0; i < header->fields.size(); ++i) {
    const auto name = core::ascii_lower(trim(header->fields[i]));
    bool known = false;
    for (int c = 0; c < kColumns; ++c) {
      if (name != kNames[c]) continue;
      if (r.index_[c] >= 0) return core::invalid("line 1: column '" + name + "' appears twice");
      r.index_[c] = static_cast<int>(i);
      known = true;
    }
    if (!known) r.unknown_columns_.push_back(header->fields[i]);
  }
  if (r.index_[kEmail] < 0) return core::invalid("line 1: the header has no 'email' column");
  r.header_fields_ = header->fields.size();
  return r;
}

std::vector<core::DirectoryEntry> UserCsvReader::next(
    std::size_t max_entries, const std::function<void(RowError)>& on_error) {
  std::vector<core::DirectoryEntry> out;
  out.reserve(std::min<std::size_t>(max_entries, 128));  // grows as rows come
  while (out.size() < max_entries) {
    auto rec = reader_->next();
    if (!rec) break;
    ++rows_;
    if (auto e = entry(*rec, on_error)) out.push_back(std::move(*e));
  }
  return out;
}

std::optional<core::DirectoryEntry> UserCsvReader::entry(
    const Record& rec, const std::function<void(RowError)>& on_error) {
  auto bad = [&](std::string why) {
    on_error({rec.line, std::move(why)});
    return std::nullopt;
  };
  if (rec.error) return bad(*rec.error);
  if (rec.fields.size() != header_fields_) {
    return bad("expected " + std::to_string(header_fields_) + " fields, found " +
               std::to_string(rec.fields.size()));
  }
  auto field = [&](Column c) {
    // An apostrophe the export put before what a spreadsheet would take for a formula goes.
    return index_[c] < 0 ? std::string() : std::string(unguard(trim(rec.fields[index_[c]])));
  };
  auto domain_ok = [&](const core::Address& a) { return domains_.count(a.domain()) > 0; };

  core::DirectoryEntry e;
  e.line = rec.line;
  const auto email = field(kEmail);
  if (email.empty()) return bad("email is empty");
  auto address = core::Address::parse(email);
  if (!address) return bad("bad address '" + email + "': " + address.error().message);
  if (!domain_ok(*address)) {
    return bad(address->str() + ": domain '" + address->domain() +
               "' is not a domain of this company");
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
    return bad("unknown role '" + field(kRole) + "' (end_user or silent_user)");
  }
  const auto type = core::ascii_lower(field(kType));
  if (type == "functional") {
    e.functional = true;
  } else if (!type.empty() && type != "user") {
    return bad("unknown type '" + field(kType) + "' (user or functional)");
  }

  if (index_[kAliases] >= 0) {
    std::vector<core::Address> aliases;
    const auto text = field(kAliases);
    for (const auto part : split_aliases(text)) {
      const auto item = trim(part);
      if (item.empty()) continue;
      auto a = core::Address::parse(item);
      if (!a) return bad("bad alias '" + item + "': " + a.error().message);
      if (!domain_ok(*a)) {
        return bad("alias " + a->str() + ": domain '" + a->domain() +
                   "' is not a domain of this company");
      }
      if (!(*a == e.address)) aliases.push_back(*a);
    }
    e.aliases = std::move(aliases);
  }
  // Duplicates and clashes within the file.
  if (auto line = seen_.holder(e.address.key())) {
    return bad(e.address.str() + " is already used on line " + std::to_string(*line));
  }
  if (e.aliases) {
    for (const auto& a : *e.aliases) {
      if (auto line = seen_.holder(a.key())) {
        return bad("alias " + a.str() + " clashes with line " + std::to_string(*line));
      }
    }
  }
  seen_.claim(e.address.key(), rec.line);
  if (e.aliases) {
    for (const auto& a : *e.aliases) seen_.claim(a.key(), rec.line);
  }
  return e;
}

ReadAhead::ReadAhead(UserCsvReader& reader, std::istream& in, std::size_t batch_size,
                     std::size_t depth)
    : ahead_(
          [&reader, &in, batch_size](const core::ReadAhead<Batch>::Push& push) {
            while (true) {
              Batch b;
              b.entries =
                  reader.next(batch_size, [&](RowError e) { b.errors.push_back(std::move(e)); });
              b.rows = reader.rows();
              b.position = in ? static_cast<std::streamoff>(in.tellg()) : -1;
              if (b.entries.empty() && b.errors.empty()) return;  // the end of the file
              if (!push(std::move(b))) return;
            }
          },
          depth) {}

core::Result<CsvSnapshot> read_user_csv(std::istream& in,
                                        const std::set<std::string>& company_domains,
                                        const std::function<void(std::size_t)>& progress) {
  auto opened = UserCsvReader::open(in, company_domains);
  if (!opened) return opened.error();
  auto reader = std::move(opened).value();
  CsvSnapshot out;
  out.snapshot.source = core::Source::csv;
  out.unknown_columns = reader.unknown_columns();
  auto on_error = [&](RowError e) { out.errors.push_back(std::move(e)); };
  while (true) {
    auto batch = reader.next(10000, on_error);
    if (batch.empty()) break;
    if (progress) progress(reader.rows());
    for (auto& e : batch) out.snapshot.entries.push_back(std::move(e));
  }
  out.rows = reader.rows();
  return out;
}

}  // namespace mailroster::directory::csv
