#include "directory/csv/csv_import.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "core/clock.hpp"
#include "directory/csv/csv_export.hpp"
#include "store/sql/sql_store.hpp"
#include "test_support.hpp"

namespace mailroster::directory::csv {
namespace {

const std::set<std::string> kDomains = {"acme.example", "acme.test"};

CsvSnapshot read(const std::string& text) {
  std::istringstream in(text);
  return read_user_csv(in, kDomains).value();
}

TEST(UserCsv, ColumnsInAnyOrderWithRolesTypesAndAliases) {
  const auto r = read(
      "aliases,Email,role,type,surname,first_name,notes\n"
      "al@acme.example; a.liddell@acme.test ,alice@acme.example,end_user,user,Liddell,Alice,x\n"
      ",room1@acme.example,,functional,,,\n");
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.unknown_columns, std::vector<std::string>{"notes"});
  ASSERT_EQ(r.snapshot.entries.size(), 2u);
  const auto& alice = r.snapshot.entries[0];
  EXPECT_EQ(alice.address.str(), "alice@acme.example");
  EXPECT_EQ(alice.first_name, "Alice");
  EXPECT_EQ(alice.role, core::Role::end_user);
  ASSERT_TRUE(alice.aliases);
  ASSERT_EQ(alice.aliases->size(), 2u);
  EXPECT_EQ((*alice.aliases)[1].str(), "a.liddell@acme.test");
  EXPECT_EQ(alice.line, 2u);
  EXPECT_TRUE(r.snapshot.entries[1].functional);
}

TEST(UserCsv, EveryBadRowIsReportedWithItsLine) {
  const auto r = read(
      "email,role,type,aliases\n"
      "ok@acme.example,,,\n"                // 2
      "not an address,,,\n"                 // 3
      "x@elsewhere.example,,,\n"            // 4
      "ok@acme.example,,,\n"                // 5 duplicate
      "y@acme.example,boss,,\n"             // 6
      "z@acme.example,,robot,\n"            // 7
      "w@acme.example,,,ok@acme.example\n"  // 8 alias clash
      "v@acme.example,,,bad alias\n"        // 9
      "u@acme.example,,\n"                  // 10 field count
      ",,,\n");                             // 11 empty email
  ASSERT_EQ(r.errors.size(), 9u);
  const std::vector<std::pair<std::size_t, std::string>> expected = {
      {3, "bad address"},
      {4, "not a domain of this company"},
      {5, "already used on line 2"},
      {6, "unknown role 'boss'"},
      {7, "unknown type 'robot'"},
      {8, "clashes with line 2"},
      {9, "bad alias"},
      {10, "expected 4 fields, found 3"},
      {11, "email is empty"}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(r.errors[i].line, expected[i].first) << r.errors[i].message;
    EXPECT_NE(r.errors[i].message.find(expected[i].second), std::string::npos)
        << r.errors[i].message;
  }
  EXPECT_EQ(r.snapshot.entries.size(), 1u);
  EXPECT_EQ(r.rows, 10u);
}

TEST(UserCsv, WholeFileProblemsFail) {
  std::istringstream empty("");
  EXPECT_FALSE(read_user_csv(empty, kDomains));
  std::istringstream no_email("name,role\nx,y\n");
  auto r = read_user_csv(no_email, kDomains);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no 'email' column"), std::string::npos);
  std::istringstream twice("email,EMAIL\n");
  EXPECT_FALSE(read_user_csv(twice, kDomains));
}

TEST(UserCsv, WithoutAnAliasesColumnAliasesAreNotManaged) {
  const auto r = read("email\nalice@acme.example\n");
  ASSERT_EQ(r.snapshot.entries.size(), 1u);
  EXPECT_FALSE(r.snapshot.entries[0].aliases);
}

// Reading ahead on a second thread delivers every row and every error, in file order, in
// batches, whatever mix of good and bad rows a batch has (a last batch of bad rows only).
TEST(ReadAhead, DeliversEveryRowAndErrorInOrder) {
  std::string text = "email\n";
  for (int i = 0; i < 25; ++i) text += "u" + std::to_string(i) + "@acme.example\n";
  text += "bad one\nbad two\n";
  std::istringstream in(text);
  auto reader = UserCsvReader::open(in, kDomains).value();
  ReadAhead ahead(reader, in, 5);
  std::vector<std::string> got;
  std::vector<std::size_t> error_lines;
  std::size_t batches = 0, rows = 0;
  while (auto b = ahead.next()) {
    ++batches;
    EXPECT_LE(b->entries.size(), 5u);
    EXPECT_GE(b->rows, rows);
    rows = b->rows;
    for (const auto& e : b->entries) got.push_back(e.address.str());
    for (const auto& e : b->errors) error_lines.push_back(e.line);
  }
  ASSERT_EQ(got.size(), 25u);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(got[i], "u" + std::to_string(i) + "@acme.example");
  EXPECT_EQ(error_lines, (std::vector<std::size_t>{27, 28}));
  EXPECT_EQ(rows, 27u);
  EXPECT_EQ(batches, 6u);  // five batches of 5 good rows, then the two bad ones alone
  EXPECT_FALSE(ahead.next());
}

// A caller that stops early (a failed batch) does not wait for the rest of the file.
TEST(ReadAhead, StopsWhenTheCallerGivesUp) {
  std::string text = "email\n";
  for (int i = 0; i < 50000; ++i) text += "u" + std::to_string(i) + "@acme.example\n";
  std::istringstream in(text);
  auto reader = UserCsvReader::open(in, kDomains).value();
  {
    ReadAhead ahead(reader, in, 10);
    ASSERT_TRUE(ahead.next());
  }
  EXPECT_LT(reader.rows(), 1000u);  // at most a few batches were read ahead
}

// import_users: the one CSV import of the CLI and the API, against a real store.
class ImportUsers : public ::testing::TestWithParam<store::sql::Dialect> {
 protected:
  ImportUsers()
      : clock(core::TimePoint{std::chrono::sys_days{std::chrono::year{2026} / 11 / 2}}),
        owned(database.open(clock)),
        store(*owned) {
    acme = store.add_company({"acme", "", "", {}}, admin);
    store.add_domain(acme.id, "acme.example", core::Endpoint::parse("h").value(), admin);
  }
  struct Seen {
    std::vector<std::string> items;
    std::vector<std::size_t> error_lines;
  };
  ImportOutcome run(const std::string& text, const ImportMode& mode, Seen* seen = nullptr) {
    std::istringstream in(text);
    ImportSinks sinks;
    if (seen) {
      sinks.item = [seen](const core::PlanItem& i) {
        seen->items.push_back(std::string(core::to_string(i.action)) + " " + i.address.str());
      };
      sinks.error = [seen](const RowError& e) { seen->error_lines.push_back(e.line); };
    }
    return import_users(store, acme.id, in, mode, sinks).value();
  }
  std::size_t events() { return store.list_audit({acme.id, 0}).size(); }

  testing::TempDir dir;
  core::ManualClock clock;
  testing::TestDatabase database{GetParam()};
  std::unique_ptr<store::sql::SqlStore> owned;
  store::sql::SqlStore& store;
  core::Actor admin{"admin:test"};
  core::Company acme;
};

INSTANTIATE_TEST_SUITE_P(Databases, ImportUsers,
                         ::testing::Values(store::sql::Dialect::sqlite,
                                           store::sql::Dialect::postgres),
                         [](const auto& p) { return testing::dialect_name(p.param); });

const char* kTwoBadRows =
    "email,role\none@acme.example,\nbad address,\ntwo@acme.example,end_user\n"
    "three@acme.example,boss\nfour@acme.example,\n";

TEST_P(ImportUsers, APlanWritesNothingAndReportsEveryItemAndBadRow) {
  Seen seen;
  const auto before = events();
  const auto r = run(kTwoBadRows, {}, &seen);
  EXPECT_FALSE(r.applied);
  EXPECT_EQ((std::pair{r.rows, r.bad_rows}), (std::pair{std::size_t{5}, std::size_t{2}}));
  EXPECT_EQ(r.result.creates, 3u);
  EXPECT_EQ(seen.items,
            (std::vector<std::string>{"create one@acme.example", "create two@acme.example",
                                      "create four@acme.example"}));
  EXPECT_EQ(seen.error_lines, (std::vector<std::size_t>{3, 5}));
  EXPECT_EQ(store.count_users(acme.id), 0u);
  EXPECT_EQ(events(), before);
}

TEST_P(ImportUsers, BadRowsHoldTheWholeImportBackUnlessSkipped) {
  ImportMode mode;
  mode.apply = true;
  Seen seen;
  auto r = run(kTwoBadRows, mode, &seen);
  EXPECT_FALSE(r.applied);
  EXPECT_EQ(seen.error_lines, (std::vector<std::size_t>{3, 5}));  // read to its end
  EXPECT_EQ(store.count_users(acme.id), 0u);
  mode.skip_invalid = true;
  r = run(kTwoBadRows, mode);
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(store.count_users(acme.id), 3u);
}

TEST_P(ImportUsers, NewUsersGetTheCompanysDefaultRole) {
  auto settings = store.discovery_settings(acme.id);
  settings.default_role = core::Role::end_user;
  store.set_discovery_settings(acme.id, settings, admin);
  ImportMode mode;
  mode.apply = true;
  run("email\nnew@acme.example\n", mode);
  EXPECT_EQ(store.find_user(core::Address::parse("new@acme.example").value())->role,
            core::Role::end_user);
}

// What before_commit throws, after batches were written, undoes all of them: the API's apply
// refuses this way a file that no longer plans as previewed.
TEST_P(ImportUsers, WhatBeforeCommitThrowsUndoesEveryBatch) {
  std::string text = "email\n";
  for (int i = 0; i < 12000; ++i) text += "u" + std::to_string(i) + "@acme.example\n";
  ImportMode mode;
  mode.apply = true;
  std::size_t written = 0;
  mode.before_commit = [&](const RunResult& r) {
    written = store.count_users(acme.id);  // this thread's transaction sees its writes
    EXPECT_EQ(r.creates, 12000u);
    throw core::Failure(core::ErrorCode::conflict, "changed");
  };
  const auto before = events();
  EXPECT_THROW(run(text, mode), core::Failure);
  EXPECT_EQ(written, 12000u);
  EXPECT_EQ(store.count_users(acme.id), 0u);
  EXPECT_EQ(events(), before);
}

// The export's promise, against a real store: a company's users and aliases written out and
// imported back plan no change at all, and the other company's users are not in its file.
TEST_P(ImportUsers, AnExportedFileImportsBackAsNoChange) {
  store.add_domain(acme.id, "acme.test", core::Endpoint::parse("h").value(), admin);
  ImportMode mode;
  mode.apply = true;
  const auto r =
      run("email,first_name,surname,role,type,aliases\n"
          "alice@acme.example,Alice,\"Liddell, "
          "Jr.\",end_user,,\"alice@acme.test;\"\"a;l\"\"@acme.test\"\n"
          "bob@acme.example,\"=HYPERLINK(\"\"x\"\")\",\"two\nlines\",silent_user,,\n"
          "room@acme.example,Room,,,functional,\n",
          mode);
  ASSERT_TRUE(r.applied);
  ASSERT_EQ(r.bad_rows, 0u);
  store::NewUser manual;  // made by hand, not imported: exported all the same
  manual.address = core::Address::parse("carol@acme.example").value();
  manual.first_name = "@carol";
  manual.role = core::Role::silent_user;
  store.add_user(manual, admin);
  const auto other = store.add_company({"other", "", "", {}}, admin);
  store.add_domain(other.id, "other.example", core::Endpoint::parse("h").value(), admin);
  manual.address = core::Address::parse("dave@other.example").value();
  store.add_user(manual, admin);

  std::ostringstream out;
  EXPECT_EQ(export_users(store, acme.id, out), 4u);
  const auto file = out.str();
  EXPECT_EQ(file.find("other.example"), std::string::npos);
  EXPECT_NE(file.find("\"'=HYPERLINK(\"\"x\"\")\""), std::string::npos) << file;
  EXPECT_NE(file.find("carol@acme.example,'@carol,,silent_user,user,\r\n"), std::string::npos);

  Seen seen;
  const auto again = run(file, {}, &seen);
  EXPECT_EQ(again.bad_rows, 0u);
  EXPECT_EQ(again.rows, 4u);
  EXPECT_TRUE(seen.items.empty()) << seen.items.front();
  EXPECT_EQ(again.result.creates + again.result.updates + again.result.deletes, 0u);
}

}  // namespace
}  // namespace mailroster::directory::csv
