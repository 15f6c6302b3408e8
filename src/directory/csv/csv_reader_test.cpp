#include "directory/csv/csv_reader.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace mailroster::directory::csv {
namespace {

std::vector<Record> all(const std::string& text, std::size_t max_field = 64 * 1024) {
  std::istringstream in(text);
  CsvReader r(in, max_field);
  std::vector<Record> out;
  while (auto rec = r.next()) out.push_back(*rec);
  return out;
}

TEST(CsvReader, Rfc4180QuotingCommasQuotesAndNewlines) {
  const auto recs = all("a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\r\nlines\"\r\nlast,,\r\n");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1].fields, (std::vector<std::string>{"x, y", "say \"hi\"", "two\r\nlines"}));
  EXPECT_EQ(recs[2].line, 4u);  // the quoted newline counted
  EXPECT_EQ(recs[2].fields, (std::vector<std::string>{"last", "", ""}));
  for (const auto& r : recs) EXPECT_FALSE(r.error);
}

// What spreadsheets write where the comma is the decimal mark (semicolons), and what is pasted
// from one (tabs): the first line decides, counting outside quotes only.
TEST(CsvReader, TheFirstLineChoosesCommaSemicolonOrTab) {
  struct Case {
    std::string text;
    char separator;
    std::vector<std::string> second;
  };
  for (const auto& c : std::vector<Case>{
           {"email;first_name;aliases\r\na@x;\"Smith, J\";\"b@x;c@x\"\r\n",
            ';',
            {"a@x", "Smith, J", "b@x;c@x"}},
           {"\xEF\xBB\xBF\"email\";\"name\"\na@x;\"Ann\"\n", ';', {"a@x", "Ann"}},
           {"email\tfirst_name\na@x\tAnn, B\n", '\t', {"a@x", "Ann, B"}},
           {"email,first_name;x\na@x,b;c\n", ',', {"a@x", "b;c"}},  // more commas
           {"\"e;mail\",name\na@x,Ann\n", ',', {"a@x", "Ann"}},     // a quoted ';' is text
           {"email\na@x\n", ',', {"a@x"}},                          // one column
           {"email;name", ';', {}},                                 // no newline at all
       }) {
    std::istringstream in(c.text);
    CsvReader r(in);
    const auto header = r.next();
    ASSERT_TRUE(header) << c.text;
    EXPECT_EQ(r.separator(), c.separator) << c.text;
    EXPECT_FALSE(header->error) << c.text;
    const auto second = r.next();
    if (c.second.empty()) {
      EXPECT_FALSE(second) << c.text;
      continue;
    }
    ASSERT_TRUE(second) << c.text;
    EXPECT_EQ(second->fields, c.second) << c.text;
    EXPECT_EQ(second->line, 2u);
    EXPECT_FALSE(r.next());
  }
}

TEST(CsvReader, LfLineEndingsBomAndBlankLines) {
  const auto recs =
      all("\xEF\xBB\xBF"
          "email\n\nalice@x.example\n\n\nbob@x.example");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].fields[0], "email");  // BOM gone
  EXPECT_EQ(recs[1].line, 3u);
  EXPECT_EQ(recs[2].line, 6u);
  EXPECT_EQ(recs[2].fields[0], "bob@x.example");  // no final newline
}

TEST(CsvReader, UnterminatedQuoteIsALineNumberedError) {
  const auto recs = all("email\nok@x.example\n\"open@x.example,rest\nmore\n");
  ASSERT_EQ(recs.size(), 3u);
  ASSERT_TRUE(recs[2].error);
  EXPECT_NE(recs[2].error->find("unterminated quoted field (opened on line 3)"), std::string::npos);
}

TEST(CsvReader, NulBytesAndInvalidUtf8AreErrorsAndReadingGoesOn) {
  const auto recs = all(std::string("a\nb\0c\nd\xC3\x28\ngood\n", 15));
  ASSERT_EQ(recs.size(), 4u);
  ASSERT_TRUE(recs[1].error);
  EXPECT_NE(recs[1].error->find("NUL"), std::string::npos);
  EXPECT_EQ(recs[1].line, 2u);
  ASSERT_TRUE(recs[2].error);
  EXPECT_NE(recs[2].error->find("not valid UTF-8"), std::string::npos);
  EXPECT_FALSE(recs[3].error);
  EXPECT_EQ(recs[3].fields[0], "good");
}

// Excel's "Unicode Text" is UTF-16 (little-endian, with a byte order mark): the first record
// says what the file is and what to do, once; a NUL in a UTF-8 file is still a NUL.
TEST(CsvReader, Utf16AndUtf32FilesAreNamedOnTheFirstRecord) {
  const auto utf16 = [](std::string_view ascii, bool bom, bool big_endian) {
    std::string out = bom ? (big_endian ? "\xFE\xFF" : "\xFF\xFE") : "";
    for (const char c : ascii) {
      out += big_endian ? std::string{'\0', c} : std::string{c, '\0'};
    }
    return out;
  };
  for (const auto& file :
       {utf16("email,name\na@x,Ann\n", true, false), utf16("email,name\na@x,Ann\n", true, true),
        utf16("email,name\na@x,Ann\n", false, false),
        std::string("\0\0\xFE\xFF\0\0\0e\0\0\0\n", 12)}) {
    const auto recs = all(file);
    ASSERT_FALSE(recs.empty());
    ASSERT_TRUE(recs[0].error);
    EXPECT_EQ(recs[0].line, 1u);
    EXPECT_NE(recs[0].error->find("UTF-16 or UTF-32"), std::string::npos) << *recs[0].error;
    EXPECT_NE(recs[0].error->find("CSV UTF-8"), std::string::npos);
    for (std::size_t i = 1; i < recs.size(); ++i) {
      if (recs[i].error) {
        EXPECT_EQ(recs[i].error->find("UTF-16"), std::string::npos);
      }
    }
  }
  const auto recs = all(std::string("email\0,name\na@x,Ann\n", 17));
  ASSERT_TRUE(recs[0].error);
  EXPECT_NE(recs[0].error->find("NUL"), std::string::npos) << *recs[0].error;
}

TEST(CsvReader, AHugeFieldIsRefusedWithoutHoldingIt) {
  const std::string huge(1 << 20, 'x');
  const auto recs = all("a\n" + huge + "\n\"" + huge + "\"\nafter\n");
  ASSERT_EQ(recs.size(), 4u);
  ASSERT_TRUE(recs[1].error);
  EXPECT_NE(recs[1].error->find("longer than 65536 bytes"), std::string::npos);
  EXPECT_LE(recs[1].fields[0].size(), 65536u);
  ASSERT_TRUE(recs[2].error);
  EXPECT_EQ(recs[3].fields[0], "after");
}

TEST(CsvReader, StrayQuotesAreErrors) {
  const auto recs = all("a\nab\"c\n\"ab\"c\n");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_TRUE(recs[1].error);
  EXPECT_TRUE(recs[2].error);
}

TEST(CsvReader, EmptyInputHasNoRecords) {
  EXPECT_TRUE(all("").empty());
  EXPECT_TRUE(all("\n\n").empty());
}

}  // namespace
}  // namespace mailroster::directory::csv
