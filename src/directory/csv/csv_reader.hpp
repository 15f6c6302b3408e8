// RFC 4180 CSV, read as a stream: quoted fields with embedded commas, quotes ("") and line
// breaks; CRLF or LF; a UTF-8 byte order mark at the start is skipped. The separator is
// found in the first line: a comma, or a semicolon (what spreadsheets write where the comma
// is the decimal mark) or a tab (text pasted from a spreadsheet), whichever it holds most of
// outside quotes; a comma when it holds none. Memory is bounded by
// the longest record, not the file. Hostile input (unterminated quotes, NUL bytes, invalid
// UTF-8, huge fields) yields a record with an error and its line number, never a crash. A
// file in UTF-16 or UTF-32 (Excel's "Unicode Text"; a byte order mark, or a first line a
// third or more of whose bytes are NUL) has its first record say so, not "NUL byte".
#pragma once

#include <istream>
#include <optional>
#include <string>
#include <vector>

namespace mailroster::directory::csv {

struct Record {
  std::size_t line = 0;  // line number where the record starts (1-based)
  std::vector<std::string> fields;
  std::optional<std::string> error;  // the record is unusable when set
};

class CsvReader {
 public:
  explicit CsvReader(std::istream& in, std::size_t max_field_bytes = 64 * 1024);
  // The next record, or nullopt at the end of input. Empty lines are skipped.
  std::optional<Record> next();
  // The separator the first line chose (known once next() was called).
  char separator() const { return separator_; }

 private:
  void start();
  int get();
  int peek();
  std::istream& in_;
  std::size_t max_field_;
  std::size_t line_ = 1;
  bool started_ = false;
  char separator_ = ',';
  std::string first_line_;  // read ahead to find the separator; get() returns it first
  std::size_t first_pos_ = 0;
  std::optional<std::string> encoding_error_;  // the first record's, when not UTF-8
};

}  // namespace mailroster::directory::csv
