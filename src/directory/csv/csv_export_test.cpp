#include "directory/csv/csv_export.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "directory/csv/csv_import.hpp"

namespace mailroster::directory::csv {
namespace {

core::User user(const std::string& address, std::string first, std::string surname,
                core::Role role = core::Role::end_user) {
  core::User u;
  u.address = core::Address::parse(address).value();
  u.first_name = std::move(first);
  u.surname = std::move(surname);
  u.role = role;
  return u;
}

std::vector<core::Address> addresses(const std::vector<std::string>& texts) {
  std::vector<core::Address> out;
  for (const auto& t : texts) out.push_back(core::Address::parse(t).value());
  return out;
}

TEST(CsvExport, FieldsAreQuotedOnlyWhereRfc4180NeedsIt) {
  EXPECT_EQ(csv_field("Alice"), "Alice");
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_field("Liddell, Jr."), "\"Liddell, Jr.\"");
  EXPECT_EQ(csv_field("Says \"hi\""), "\"Says \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field("cr\rhere"), "\"cr\rhere\"");
  EXPECT_EQ(csv_field("Zoë Ångström"), "Zoë Ångström");
}

// OWASP's CSV injection: what a spreadsheet would run gets an apostrophe in front, and the
// import takes exactly that apostrophe off again.
TEST(CsvExport, FormulaLikeFieldsAreGuardedAndTheImportUnguardsThem) {
  for (const std::string f : {"=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "'=x", "''+x"}) {
    EXPECT_TRUE(formula_guard(f)) << f;
    EXPECT_EQ(unguard("'" + f), f);
  }
  EXPECT_EQ(csv_field("=1+1"), "'=1+1");
  EXPECT_EQ(csv_field("'=x"), "''=x");
  EXPECT_EQ(csv_field("\rx"), "\"'\rx\"");
  EXPECT_EQ(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
  for (const std::string f : {"O'Brien", "'", "''", "' =x", "x=1", "a-b", ""}) {
    EXPECT_FALSE(formula_guard(f)) << f;
    EXPECT_EQ(unguard(f), f);
  }
}

TEST(CsvExport, RowsSayRoleAndTypeAsTheImportReadsThem) {
  EXPECT_EQ(user_csv_header(), "email,first_name,surname,role,type,aliases\r\n");
  EXPECT_EQ(user_csv_row(user("alice@acme.example", "Alice", "Liddell"),
                         addresses({"al@acme.example", "alice@acme.test"})),
            "alice@acme.example,Alice,Liddell,end_user,user,al@acme.example;alice@acme.test\r\n");
  EXPECT_EQ(user_csv_row(user("bob@acme.example", "", "", core::Role::silent_user), {}),
            "bob@acme.example,,,silent_user,user,\r\n");
  EXPECT_EQ(user_csv_row(user("room1@acme.example", "Room 1", "", core::Role::functional), {}),
            "room1@acme.example,Room 1,,,functional,\r\n");
}

// The property the export exists for: what it writes reads back as the same users, names with
// every character a CSV field can hold, quoted local parts with ';' and '"' included.
TEST(CsvExport, WhatItWritesReadsBackTheSame) {
  struct Row {
    core::User u;
    std::vector<core::Address> aliases;
  };
  const std::vector<Row> rows = {
      {user("alice@acme.example", "Alice", "Liddell, Jr."),
       addresses({"\"al;ice\"@acme.example", "\"q\\\"uote\"@acme.test", "a.l@acme.test"})},
      {user("bob@acme.example", "=HYPERLINK(\"http://x\")", "Says \"hi\"", core::Role::silent_user),
       {}},
      {user("-minus@acme.example", "two\nlines", "cr\r\nlf"), addresses({"=eq@acme.example"})},
      {user("room@acme.example", "'=quoted", "@home", core::Role::functional), {}},
      {user("zoe@acme.example", "Zoë", "Ångström"), {}},
  };
  std::string file = "\xEF\xBB\xBF" + user_csv_header();
  for (const auto& r : rows) file += user_csv_row(r.u, r.aliases);
  std::istringstream in(file);
  const auto read = read_user_csv(in, {"acme.example", "acme.test"}).value();
  ASSERT_TRUE(read.errors.empty()) << read.errors[0].line << ": " << read.errors[0].message;
  ASSERT_EQ(read.snapshot.entries.size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& e = read.snapshot.entries[i];
    const auto& u = rows[i].u;
    EXPECT_EQ(e.address.str(), u.address.str());
    EXPECT_EQ(e.first_name, u.first_name);
    EXPECT_EQ(e.surname, u.surname);
    EXPECT_EQ(e.functional, u.role == core::Role::functional);
    if (!e.functional) {
      EXPECT_EQ(e.role, u.role);
    }
    ASSERT_TRUE(e.aliases);
    ASSERT_EQ(e.aliases->size(), rows[i].aliases.size()) << u.address.str();
    for (std::size_t k = 0; k < e.aliases->size(); ++k) {
      EXPECT_EQ((*e.aliases)[k].str(), rows[i].aliases[k].str());
    }
  }
}

}  // namespace
}  // namespace mailroster::directory::csv
