#include "directory/csv/csv_reader.hpp"

#include "core/address.hpp"

namespace mailroster::directory::csv {

CsvReader::CsvReader(std::istream& in, std::size_t max_field_bytes)
    : in_(in), max_field_(max_field_bytes) {}

int CsvReader::get() { return in_.get(); }

std::optional<Record> CsvReader::next() {
  if (!started_) {
    started_ = true;
    // UTF-8 byte order mark
    if (in_.peek() == 0xEF) {
      char bom[3] = {};
      in_.read(bom, 3);
      if (!(bom[0] == '\xEF' && bom[1] == '\xBB' && bom[2] == '\xBF')) {
        in_.clear();
        in_.seekg(0);
      }
    }
  }
  for (;;) {
    Record r;
    r.line = line_;
    std::string field;
    bool quoted = false;      // inside a quoted field
    bool was_quoted = false;  // the current field started with a quote
    bool any = false;         // the record has content
    bool too_long = false;
    auto fail = [&](std::string why) {
      if (!r.error) r.error = std::move(why);
    };
    auto end_field = [&] {
      if (!core::is_valid_utf8(field))
        fail("field " + std::to_string(r.fields.size() + 1) + " is not valid UTF-8");
      r.fields.push_back(std::move(field));
      field.clear();
      was_quoted = false;
    };
    for (;;) {
      const int c = get();
      if (c == EOF) {
        if (quoted)
          fail("unterminated quoted field (opened on line " + std::to_string(r.line) + ")");
        if (!any && field.empty() && r.fields.empty()) return std::nullopt;
        end_field();
        return r;
      }
      any = true;
      if (c == 0) {
        fail("NUL byte in the data");
        continue;
      }
      if (quoted) {
        if (c == '"') {
          if (in_.peek() == '"') {
            get();
            field.push_back('"');
          } else {
            quoted = false;
          }
        } else {
          if (c == '\n') ++line_;
          if (field.size() < max_field_) {
            field.push_back(static_cast<char>(c));
          } else if (!too_long) {
            too_long = true;
            fail("field longer than " + std::to_string(max_field_) + " bytes");
          }
        }
        continue;
      }
      if (c == ',') {
        end_field();
        continue;
      }
      if (c == '\r' && in_.peek() == '\n') continue;  // CRLF
      if (c == '\n') {
        ++line_;
        if (r.fields.empty() && field.empty() && !was_quoted) {  // empty line
          r.line = line_;
          any = false;
          continue;
        }
        end_field();
        return r;
      }
      if (c == '"') {
        if (field.empty() && !was_quoted) {
          quoted = was_quoted = true;
        } else {
          fail(
              "quote inside an unquoted field (RFC 4180: quote the whole field, double the quote)");
        }
        continue;
      }
      if (was_quoted) {
        fail("text after the closing quote of a field");
        continue;
      }
      if (field.size() < max_field_) {
        field.push_back(static_cast<char>(c));
      } else if (!too_long) {
        too_long = true;
        fail("field longer than " + std::to_string(max_field_) + " bytes");
      }
    }
  }
}

}  // namespace mailroster::directory::csv
