#include "directory/csv/csv_reader.hpp"

#include <algorithm>
#include <string_view>
#include <utility>

#include "core/address.hpp"

namespace mailroster::directory::csv {

CsvReader::CsvReader(std::istream& in, std::size_t max_field_bytes)
    : in_(in), max_field_(max_field_bytes) {}

int CsvReader::get() {
  if (first_pos_ < first_line_.size()) return static_cast<unsigned char>(first_line_[first_pos_++]);
  return in_.get();
}

int CsvReader::peek() {
  if (first_pos_ < first_line_.size()) return static_cast<unsigned char>(first_line_[first_pos_]);
  return in_.peek();
}

void CsvReader::start() {
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
  // The first line (as far as a field may reach), read ahead and given back by get().
  std::size_t counts[3] = {};  // , ; tab, outside quotes
  bool quoted = false;
  for (int c; first_line_.size() < max_field_ && (c = in_.get()) != EOF;) {
    first_line_.push_back(static_cast<char>(c));
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    if (c == '\n') break;
    if (c == ',') ++counts[0];
    if (c == ';') ++counts[1];
    if (c == '\t') ++counts[2];
  }
  if (in_.eof()) in_.clear(in_.rdstate() & ~std::ios::eofbit & ~std::ios::failbit);
  // UTF-16 and UTF-32 (a byte order mark, else a third of the bytes NUL or more): what Excel
  // writes as "Unicode Text". Said once, on the first record, where "NUL byte" would puzzle.
  const auto starts = [this](std::string_view bytes) { return first_line_.starts_with(bytes); };
  const auto nuls = std::count(first_line_.begin(), first_line_.end(), '\0');
  if (starts(std::string_view("\xFF\xFE", 2)) || starts(std::string_view("\xFE\xFF", 2)) ||
      starts(std::string_view("\0\0\xFE\xFF", 4)) ||
      (first_line_.size() >= 4 && nuls * 3 >= static_cast<std::ptrdiff_t>(first_line_.size()))) {
    encoding_error_ =
        "the file is UTF-16 or UTF-32 (Excel's \"Unicode Text\"), not UTF-8: save it as UTF-8 "
        "(in Excel: \"CSV UTF-8\")";
  }
  if (counts[1] > counts[0] && counts[1] >= counts[2]) {
    separator_ = ';';
  } else if (counts[2] > counts[0] && counts[2] > counts[1]) {
    separator_ = '\t';
  }
}

std::optional<Record> CsvReader::next() {
  if (!started_) start();
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
    if (encoding_error_) fail(*std::exchange(encoding_error_, std::nullopt));
    auto end_field = [&] {
      if (!core::is_valid_utf8(field))
        fail("field " + std::to_string(r.fields.size() + 1) +
             " is not valid UTF-8 (save the file as UTF-8; in Excel: \"CSV UTF-8\")");
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
          if (peek() == '"') {
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
      if (c == separator_) {
        end_field();
        continue;
      }
      if (c == '\r' && peek() == '\n') continue;  // CRLF
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
