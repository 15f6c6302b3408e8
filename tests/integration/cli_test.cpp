// The mailroster binary run as an administrator runs it: real processes, a real SQLite file,
// exit statuses and output checked. Scenarios follow issue #2's "done when".
#include <signal.h>

#include <gtest/gtest.h>
#include <atomic>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "store/sqlite/sqlite_db.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "test_support.hpp"

namespace mailroster::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class Cli : public ::testing::Test {
 protected:
  CommandResult run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--db", dir.file("state.db")});
    return run_command(MAILROSTER_BINARY, args);
  }

  // Runs and expects success; returns stdout.
  std::string ok(const std::vector<std::string>& args) {
    auto r = run(args);
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out;
  }

  // Runs and expects exit 1 with exactly one line on stderr containing text.
  void fails(const std::vector<std::string>& args, const std::string& text) {
    auto r = run(args);
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_NE(r.err.find(text), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  }

  json audit() { return json::parse(ok({"audit", "list", "--limit", "0", "--json"})); }

  void acme() {
    ok({"company", "add", "acme", "--tech-contact", "it@acme.example"});
    ok({"domain", "add", "acme.example", "--company", "acme", "--destination", "127.0.0.1:2526"});
  }

  TempDir dir;
};

TEST_F(Cli, IssueScenarioShowsAliceInTheJsonList) {
  EXPECT_EQ(ok({"company", "add", "acme", "--tech-contact", "it@acme.example"}),
            "company acme added\n");
  ok({"domain", "add", "acme.example", "--company", "acme", "--destination", "127.0.0.1:2526"});
  ok({"user", "add", "alice@acme.example", "--first-name", "Alice", "--surname", "Liddell"});
  const auto users = json::parse(ok({"user", "list", "--company", "acme", "--json"}));
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0]["address"], "alice@acme.example");
  EXPECT_EQ(users[0]["first_name"], "Alice");
  EXPECT_EQ(users[0]["surname"], "Liddell");
  EXPECT_EQ(users[0]["role"], "end_user");
  EXPECT_EQ(users[0]["source"], "manual");
}

TEST_F(Cli, HumanListingsAreTables) {
  acme();
  ok({"user", "add", "alice@acme.example", "--first-name", "Alice", "--surname", "Liddell"});
  const auto out = ok({"user", "list"});
  EXPECT_NE(out.find("ADDRESS"), std::string::npos);
  EXPECT_TRUE(std::regex_search(out, std::regex("alice@acme.example +Alice +Liddell +end_user")))
      << out;
  const auto companies = ok({"company", "list"});
  EXPECT_TRUE(std::regex_search(companies, std::regex("acme +it@acme.example +1"))) << companies;
  const auto domains = ok({"domain", "list", "--company", "acme"});
  EXPECT_TRUE(std::regex_search(domains, std::regex("acme.example +acme +127.0.0.1:2526")));
}

// Listings print one item at a time (a million users as one json value took 2 GB), exactly as
// the whole listing would print, and name each row's own company.
TEST_F(Cli, ListingsPrintItemByItemAsOneValueWould) {
  EXPECT_EQ(ok({"user", "list", "--json"}), "[]\n");
  acme();
  ok({"company", "add", "globex"});
  ok({"domain", "add", "globex.example", "--company", "globex", "--destination", "127.0.0.1:2526"});
  ok({"user", "add", "alice@acme.example", "--first-name", "Alice \"Al\"\nLi"});
  ok({"user", "add", "hank@globex.example", "--surname", "Scorpio"});
  ok({"user", "add", "bob@acme.example"});
  const auto out = ok({"user", "list", "--json"});
  const auto users = json::parse(out);
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(out, users.dump(2) + "\n");
  EXPECT_EQ(users[0]["first_name"], "Alice \"Al\"\nLi");
  const auto table = ok({"user", "list"});
  EXPECT_TRUE(std::regex_search(table, std::regex("bob@acme.example .* acme\n"))) << table;
  EXPECT_TRUE(std::regex_search(table, std::regex("hank@globex.example .* globex\n"))) << table;
  const auto one = ok({"user", "list", "--company", "globex", "--json"});
  EXPECT_EQ(json::parse(one).size(), 1u);
  EXPECT_EQ(one, json::parse(one).dump(2) + "\n");
}

TEST_F(Cli, FullLifecycleOfCompanyDomainUserAlias) {
  ok({"company", "add", "acme", "--tech-contact", "it@acme.example", "--admin-contact",
      "boss@acme.example", "--relay-network", "192.0.2.0/24", "--relay-network", "2001:db8::/48"});
  auto company = json::parse(ok({"company", "show", "acme", "--json"}));
  EXPECT_EQ(company["relay_networks"], json({"192.0.2.0/24", "2001:db8::/48"}));
  EXPECT_EQ(company["discovery"]["inbound_threshold"], 3);
  EXPECT_EQ(company["discovery"]["enabled"], false);

  ok({"company", "update", "acme", "--admin-contact", "ceo@acme.example"});
  EXPECT_EQ(json::parse(ok({"company", "show", "acme", "--json"}))["admin_contact"],
            "ceo@acme.example");

  ok({"domain", "add", "ACME.example", "--company", "acme", "--destination", "mx.acme.example"});
  ok({"domain", "add", "acme.test", "--company", "acme", "--destination", "[::1]:2526"});
  ok({"domain", "update", "acme.example", "--destination", "127.0.0.1:2600"});
  auto domains = json::parse(ok({"domain", "list", "--json"}));
  ASSERT_EQ(domains.size(), 2u);
  EXPECT_EQ(domains[0]["name"], "acme.example");
  EXPECT_EQ(domains[0]["destination"], "127.0.0.1:2600");
  EXPECT_EQ(domains[1]["destination"], "[::1]:2526");

  ok({"user", "add", "Alice@acme.example", "--first-name", "Alice", "--role", "silent_user"});
  EXPECT_EQ(json::parse(ok({"company", "list", "--json"}))[0]["users"], 1);  // as the table
  ok({"user", "add", "room1@acme.test", "--role", "functional", "--company", "acme"});
  ok({"alias", "add", "alice@acme.test", "--user", "alice@acme.example"});
  auto alice = json::parse(ok({"user", "show", "ALICE@acme.example", "--json"}));
  EXPECT_EQ(alice["address"], "Alice@acme.example");  // case preserved
  EXPECT_EQ(alice["role"], "silent_user");
  EXPECT_EQ(alice["company"], "acme");
  EXPECT_EQ(alice["aliases"], json({"alice@acme.test"}));

  ok({"user", "update", "alice@acme.example", "--surname", "Liddell", "--role", "end_user"});
  alice = json::parse(ok({"user", "show", "alice@acme.example", "--json"}));
  EXPECT_EQ(alice["surname"], "Liddell");
  EXPECT_EQ(alice["role"], "end_user");

  auto aliases = json::parse(ok({"alias", "list", "--company", "acme", "--json"}));
  ASSERT_EQ(aliases.size(), 1u);
  EXPECT_EQ(aliases[0]["user"], "Alice@acme.example");

  EXPECT_EQ(json::parse(ok({"user", "list", "--role", "functional", "--json"})).size(), 1u);
  EXPECT_EQ(json::parse(ok({"user", "list", "--search", "room", "--json"})).size(), 1u);
  EXPECT_EQ(json::parse(ok({"user", "list", "--source", "manual", "--json"})).size(), 2u);
  ok({"invalid", "add", "gone@acme.example", "--reason", "left in March"});
  ok({"invalid", "add", "old@acme.example"});
  EXPECT_EQ(json::parse(ok({"invalid", "list", "--company", "acme", "--json"})).size(), 2u);
  auto march =
      json::parse(ok({"invalid", "list", "--company", "acme", "--search", "MARCH", "--json"}));
  ASSERT_EQ(march.size(), 1u);
  EXPECT_EQ(march[0]["address"], "gone@acme.example");
  ok({"invalid", "remove", "gone@acme.example"});
  ok({"invalid", "remove", "old@acme.example"});
  EXPECT_TRUE(json::parse(ok({"user", "list", "--source", "csv", "--json"})).empty());
  fails({"user", "list", "--source", "fax"}, "unknown source 'fax'");

  ok({"alias", "remove", "alice@acme.test"});
  EXPECT_TRUE(json::parse(ok({"alias", "list", "--json"})).empty());
  ok({"user", "remove", "room1@acme.test"});
  EXPECT_EQ(json::parse(ok({"user", "list", "--json"})).size(), 1u);

  ok({"domain", "remove", "acme.test"});
  fails({"company", "remove", "acme"}, "still has 1 domain(s)");
  ok({"company", "remove", "acme", "--force"});
  EXPECT_TRUE(json::parse(ok({"company", "list", "--json"})).empty());
  EXPECT_TRUE(json::parse(ok({"user", "list", "--json"})).empty());

  // Every change above is in the audit trail, newest first, with the CLI as actor.
  const auto events = audit();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0]["action"], "company.remove");
  EXPECT_EQ(events[0]["actor"].get<std::string>().rfind("cli:", 0), 0u);
  EXPECT_EQ(events.back()["action"], "company.add");
  const auto page = json::parse(ok({"audit", "list", "--limit", "2", "--offset", "1", "--json"}));
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0]["id"], events[1]["id"]);
  EXPECT_EQ(page[1]["id"], events[2]["id"]);
  const auto removed =
      json::parse(ok({"audit", "list", "--action", "company.remove", "--limit", "0", "--json"}));
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0]["id"], events[0]["id"]);
  const auto about = json::parse(ok({"audit", "list", "--object", "ACME", "--json"}));
  ASSERT_FALSE(about.empty());
  for (const auto& e : about) EXPECT_EQ(e["object"], "acme");
}

TEST_F(Cli, BadInputExitsOneWithOneLineAndWritesNothing) {
  acme();
  ok({"user", "add", "alice@acme.example"});
  ok({"alias", "add", "al@acme.example", "--user", "alice@acme.example"});
  const auto before = audit();
  const auto before_users = ok({"user", "list", "--json"});

  fails({"user", "add", "bob@acme.example", "--company", "initech"}, "no company named 'initech'");
  fails({"domain", "add", "x.example", "--company", "initech", "--destination", "h"},
        "no company named 'initech'");
  fails({"user", "add", "not an address@acme.example"}, "invalid local part");
  fails({"user", "add", "bob"}, "no '@'");
  fails({"user", "add", "ALICE@acme.example"}, "alice@acme.example is already a user");
  fails({"user", "add", "al@acme.example"}, "is already an alias of alice@acme.example");
  fails({"alias", "add", "alice@acme.example", "--user", "alice@acme.example"}, "already a user");
  fails({"user", "add", "bob@elsewhere.example"}, "domain 'elsewhere.example'");
  fails({"user", "add", "bob@acme.example", "--role", "admin"}, "unknown role 'admin'");
  // A mistyped action finds nothing to list: it is an error, naming the actions.
  fails({"audit", "list", "--action", "user.delete"},
        "unknown action 'user.delete' (one of user.add, user.update, user.remove,");
  fails({"company", "add", "acme"}, "company 'acme' already exists");
  fails({"company", "add", "globex", "--relay-network", "192.0.2.1/24"}, "host bits set");
  fails({"company", "add", "globex", "--relay-network", "::/0"}, "the whole Internet");
  fails({"company", "add", "bad name"}, "may contain only");
  fails({"domain", "add", "acme.example", "--company", "acme", "--destination", "h"},
        "already registered to company 'acme'");
  fails({"domain", "add", "new.example", "--company", "acme", "--destination", "h:99999"},
        "bad port");
  fails({"user", "show", "nobody@acme.example"}, "no user nobody@acme.example");
  fails({"user", "remove", "nobody@acme.example"}, "no user nobody@acme.example");
  // An alias given for a user: the error names its user, and the user stays.
  fails({"user", "remove", "al@acme.example"},
        "no user al@acme.example (it is an alias of alice@acme.example)");
  fails({"user", "show", "AL@acme.example"},
        "no user AL@acme.example (it is an alias of alice@acme.example)");
  fails({"alias", "remove", "nobody@acme.example"}, "no alias nobody@acme.example");
  fails({"domain", "remove", "acme.example"}, "still has 1 users, 1 aliases");

  EXPECT_EQ(audit(), before);
  EXPECT_EQ(ok({"user", "list", "--json"}), before_users);
}

// A PostgreSQL server that does not answer: exit 1 with libpq's reason on one line, for the
// CLI and for serve alike (nothing listens on 127.0.0.1:1).
TEST_F(Cli, AnUnreachablePostgreSQLIsOneClearLine) {
  const std::string url = "postgresql://mailroster@127.0.0.1:1/mailroster";
  const auto toml = dir.file("pg.toml");
  write_file(toml, "[database]\nurl = \"" + url + "\"\n[admin]\nlisten = \"127.0.0.1:0\"\n");
  for (const auto& args : std::vector<std::vector<std::string>>{{"--db", url, "company", "list"},
                                                                {"--config", toml, "serve"}}) {
    const auto r = run_command(MAILROSTER_BINARY, args);
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(r.err.rfind("error: cannot connect to PostgreSQL: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("Connection refused; Is the server running"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST_F(Cli, DiscoverySettingsShowAndChangeWithValidation) {
  acme();
  auto shown = json::parse(ok({"discovery", "settings", "--company", "acme", "--json"}));
  EXPECT_EQ(shown["enabled"], false);
  EXPECT_EQ(shown["default_role"], "silent_user");
  EXPECT_EQ(shown["notification_weeks"], 3);
  ok({"discovery", "set", "--company", "acme", "enabled=true", "inbound_threshold=5",
      "default_role=end_user"});
  shown = json::parse(ok({"discovery", "settings", "--company", "acme", "--json"}));
  EXPECT_EQ(shown["enabled"], true);
  EXPECT_EQ(shown["inbound_threshold"], 5);
  EXPECT_EQ(shown["default_role"], "end_user");

  const auto before = audit();
  fails({"discovery", "set", "--company", "acme", "colour=red"},
        "unknown discovery setting 'colour'");
  fails({"discovery", "set", "--company", "acme", "notification_weeks=53"},
        "notification_weeks must be between 1 and 52");
  fails({"discovery", "set", "--company", "acme", "inbound_threshold=0"}, "inbound_threshold");
  fails({"discovery", "set", "--company", "acme", "default_role=functional"},
        "default_role must be end_user or silent_user");
  fails({"discovery", "set", "--company", "acme", "enabled=true", "inbound_threshold=x"},
        "inbound_threshold must be a whole number");
  fails({"discovery", "set", "--company", "acme", "enabled"}, "expected NAME=VALUE");
  EXPECT_EQ(audit(), before);
  EXPECT_EQ(json::parse(ok({"discovery", "settings", "--company", "acme", "--json"}))["enabled"],
            true);
  // A daily directory sync turns discovery off (the seed): the settings say so.
  EXPECT_EQ(ok({"discovery", "settings", "--company", "acme"}).find("note:"), std::string::npos);
  const auto r =
      run_command(MAILROSTER_BINARY,
                  {"--db", dir.file("state.db"), "sync", "ldap", "configure", "--company", "acme",
                   "--set", "host=127.0.0.1", "--set", "base_dn=dc=acme,dc=example", "--set",
                   "frequency_hours=24", "--secret-stdin"},
                  "bind-password\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(ok({"discovery", "settings", "--company", "acme"})
                .find("note: SMTP Discovery is enabled but off while a directory sync runs every "
                      "24 hours"),
            std::string::npos);
}

TEST_F(Cli, DiscoveryActionsOnAnAddressThatIsNotDiscoveredChangeNothing) {
  acme();
  ok({"user", "add", "bob@acme.example"});
  const auto before = audit();
  fails({"discovery", "create-user", "nobody@acme.example", "--company", "acme"},
        "nobody@acme.example is not on the discovered list");
  fails({"discovery", "mark-invalid", "nobody@acme.example", "--company", "acme"},
        "not on the discovered list");
  fails({"discovery", "add-alias", "nobody@acme.example", "--company", "acme", "--user",
         "bob@acme.example"},
        "not on the discovered list");
  fails({"invalid", "create-user", "nobody@acme.example"}, "is not marked invalid");
  EXPECT_EQ(audit(), before);
}

TEST_F(Cli, InvalidListAndCreatingAUserFromIt) {
  acme();
  ok({"invalid", "add", "ghost@acme.example", "--reason", "left the company"});
  auto list = json::parse(ok({"invalid", "list", "--company", "acme", "--json"}));
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["reason"], "left the company");
  fails({"invalid", "add", "ghost@acme.example"}, "already marked invalid");
  ok({"invalid", "create-user", "ghost@acme.example", "--first-name", "Gus", "--role", "end_user"});
  EXPECT_TRUE(json::parse(ok({"invalid", "list", "--company", "acme", "--json"})).empty());
  EXPECT_EQ(json::parse(ok({"user", "show", "ghost@acme.example", "--json"}))["first_name"], "Gus");
  ok({"invalid", "add", "temp@acme.example"});
  ok({"invalid", "remove", "temp@acme.example"});
  EXPECT_TRUE(json::parse(ok({"invalid", "list", "--company", "acme", "--json"})).empty());
}

TEST_F(Cli, ReportPreviewPrintsTheNextReport) {
  ok({"company", "add", "acme", "--tech-contact", "it@acme.example", "--admin-contact",
      "boss@acme.example"});
  ok({"domain", "add", "acme.example", "--company", "acme", "--destination", "127.0.0.1:2526"});
  ok({"user", "add", "alice@acme.example", "--first-name", "Alice"});
  const auto out = ok({"report", "preview", "--company", "acme"});
  EXPECT_NE(out.find("To: it@acme.example, boss@acme.example"), std::string::npos) << out;
  EXPECT_NE(out.find("New users (1)"), std::string::npos) << out;
  EXPECT_NE(out.find("alice@acme.example"), std::string::npos);
  fails({"report", "preview", "--company", "acme", "--at", "yesterday"}, "not an ISO-8601 time");
}

TEST_F(Cli, MaintainAtAnInstantExpiresWhatIsDue) {
  acme();
  ok({"discovery", "set", "--company", "acme", "enabled=true"});
  // Nothing discovered: a Wednesday run does nothing and succeeds.
  const auto out = ok({"maintain", "--at", "2026-11-25T10:00:00Z", "--json"});
  const auto j = json::parse(out);
  EXPECT_EQ(j["at"], "2026-11-25T10:00:00Z");
  EXPECT_TRUE(j["expired"].empty());
  fails({"maintain", "--at", "2026-13-01"}, "not an ISO-8601 time");
}

// [audit] retention: the maintenance run removes the events older than it; `audit prune`
// does the same by hand. Times are given (--at), not waited for.
TEST_F(Cli, TheAuditTrailIsPrunedPastItsRetention) {
  acme();
  ok({"user", "add", "alice@acme.example"});
  const auto events = audit().size();
  ASSERT_GE(events, 3u);
  write_file(dir.file("retention.toml"), "[audit]\nretention = \"400d\"\n");
  const auto in = [](int days) {
    return core::format_iso8601(std::chrono::time_point_cast<core::TimePoint::duration>(
        std::chrono::system_clock::now() + std::chrono::days(days)));
  };
  auto j = json::parse(
      ok({"--config", dir.file("retention.toml"), "maintain", "--at", in(300), "--json"}));
  EXPECT_EQ(j["audit_pruned"], 0);  // 300 days on: all within 400 days
  EXPECT_EQ(audit().size(), events);
  j = json::parse(
      ok({"--config", dir.file("retention.toml"), "maintain", "--at", in(401), "--json"}));
  EXPECT_EQ(j["audit_pruned"], events);
  EXPECT_TRUE(audit().empty());
  EXPECT_EQ(json::parse(ok({"user", "list", "--json"})).size(), 1u);  // the trail only
  j = json::parse(ok({"maintain", "--at", in(2000), "--json"}));      // no retention: kept for ever
  EXPECT_EQ(j["audit_pruned"], 0);

  ok({"user", "add", "bob@acme.example"});
  EXPECT_EQ(json::parse(ok({"audit", "prune", "--older-than", "1d", "--json"}))["removed"], 0);
  EXPECT_EQ(audit().size(), 1u);
  fails({"audit", "prune", "--older-than", "5h"}, "not a duration of 1d or more");
  write_file(dir.file("short.toml"), "[audit]\nretention = \"1h\"\n");
  auto r = run({"--config", dir.file("short.toml"), "audit", "list"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("audit.retention must be at least 1d"), std::string::npos) << r.err;
}

// [mail_log] retention (7 days unless set): maintenance runs remove older entries; `mail-log`
// lists what is left, and finds entries by address, result and time. The entries are written
// as serve writes them (a batch through the store) at times given, not waited for.
TEST_F(Cli, TheMailLogIsListedAndPrunedPastItsRetention) {
  acme();
  const auto now =
      std::chrono::time_point_cast<core::TimePoint::duration>(std::chrono::system_clock::now());
  const auto company = json::parse(ok({"company", "show", "acme", "--json"}))["id"].get<core::Id>();
  {
    core::ManualClock clock(now);
    store::sqlite::SqliteStore store(dir.file("state.db"), clock);
    std::vector<core::MailLogEntry> entries;
    for (int days : {10, 3, 0}) {
      entries.push_back({.at = now - std::chrono::days(days),
                         .company_id = company,
                         .direction = "inbound",
                         .stage = "rcpt",
                         .client_ip = "192.0.2.1",
                         .sender = "bob@example.org",
                         .recipient = "u" + std::to_string(days) + "@acme.example",
                         .result = days == 3 ? "deferred" : "rejected",
                         .code = days == 3 ? 451 : 550,
                         .reply = "unknown"});
    }
    store.add_mail_log(entries);
  }
  const auto recipients = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"mail-log", "--company", "acme", "--json"});
    std::vector<std::string> out;
    for (const auto& e : json::parse(ok(args))) out.push_back(e["recipient"]);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(recipients({}), (V{"u0@acme.example", "u3@acme.example", "u10@acme.example"}));
  EXPECT_EQ(recipients({"--since", "5d"}), (V{"u0@acme.example", "u3@acme.example"}));
  EXPECT_EQ(recipients({"--result", "deferred"}), V{"u3@acme.example"});
  EXPECT_EQ(recipients({"--address", "U10@"}), V{"u10@acme.example"});
  const auto table = ok({"mail-log", "--company", "acme", "--address", "u3@"});
  EXPECT_NE(table.find("TIME"), std::string::npos) << table;
  EXPECT_NE(table.find("u3@acme.example  deferred  451 unknown"), std::string::npos) << table;
  const auto bad = run({"mail-log", "--company", "acme", "--result", "lost"});  // a usage error
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--result: lost not in {delivered,deferred,rejected,spam}"),
            std::string::npos)
      << bad.err;
  fails({"mail-log", "--company", "nowhere"}, "nowhere");
  const auto every = json::parse(ok({"mail-log", "--json", "--limit", "1"}));  // every company's
  ASSERT_EQ(every.size(), 1u);
  EXPECT_EQ(every[0]["company"], "acme");
  EXPECT_EQ(every[0]["recipient"], "u0@acme.example");

  auto j = json::parse(ok({"maintain", "--json"}));  // the default retention: 7 days
  EXPECT_EQ(j["mail_log_pruned"], 1);
  EXPECT_EQ(recipients({}), (V{"u0@acme.example", "u3@acme.example"}));
  write_file(dir.file("retention.toml"), "[mail_log]\nretention = \"2d\"\n");
  const auto at = core::format_iso8601(now + std::chrono::hours(1));
  j = json::parse(ok({"--config", dir.file("retention.toml"), "maintain", "--at", at, "--json"}));
  EXPECT_EQ(j["mail_log_pruned"], 1);
  EXPECT_EQ(recipients({}), V{"u0@acme.example"});
  write_file(dir.file("short.toml"), "[mail_log]\nretention = \"10m\"\n");
  auto r = run({"--config", dir.file("short.toml"), "mail-log", "--company", "acme"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("mail_log.retention must be at least 1h"), std::string::npos) << r.err;
}

// Several users changed or removed at once: all of them or none, removals past the deletion
// guard only when forced; their aliases go with them.
TEST_F(Cli, SeveralUsersAtOnceAllOrNoneAndRemovedPastTheDeletionGuardOnlyWhenForced) {
  acme();
  for (const char* u : {"ann", "bob", "cid", "dan"})
    ok({"user", "add", std::string(u) + "@acme.example"});
  ok({"alias", "add", "a@acme.example", "--user", "ann@acme.example"});
  const auto users = [&] { return json::parse(ok({"user", "list", "--json"})).size(); };
  // A role for several at once: all or none, and names one user at a time.
  EXPECT_EQ(ok({"user", "update", "ann@acme.example", "bob@acme.example", "--role", "functional"}),
            "user ann@acme.example updated\nuser bob@acme.example updated\n");
  const auto role = [&](const std::string& a) {
    return json::parse(ok({"user", "show", a, "--json"}))["role"].get<std::string>();
  };
  EXPECT_EQ(role("bob@acme.example"), "functional");
  fails({"user", "update", "ann@acme.example", "nobody@acme.example", "--role", "silent_user"},
        "'nobody@acme.example' is not a user of acme");
  fails({"user", "update", "ann@acme.example", "bob@acme.example", "--surname", "X"},
        "several users at once take --role, and only --role");
  EXPECT_EQ(role("ann@acme.example"), "functional");
  fails({"user", "remove", "ann@acme.example", "nobody@acme.example"},
        "'nobody@acme.example' is not a user of acme");
  fails({"user", "remove", "ann@acme.example", "ANN@acme.example"},
        "ann@acme.example is in the list twice");
  fails({"user", "remove", "ann@acme.example", "bob@acme.example"},
        "deletion guard: this would delete 2 of 4 users, more than 10 %");
  EXPECT_EQ(users(), 4u);
  EXPECT_EQ(ok({"user", "remove", "ann@acme.example", "bob@acme.example", "--force"}),
            "user ann@acme.example removed\nuser bob@acme.example removed\n");
  EXPECT_EQ(users(), 2u);
  EXPECT_EQ(ok({"alias", "list", "--company", "acme"}).find("a@acme.example"), std::string::npos);
  ok({"user", "remove", "cid@acme.example"});  // one user: as it always was, no guard
  EXPECT_EQ(users(), 1u);
}

// Licensed users per day: each maintenance run counts them (given times, no waiting); `usage`
// reads a month or a range of days, as a table, per day, or as JSON; a removed company's days
// stay for its bill.
TEST_F(Cli, UsageReportsTheLicensedUsersPerCompanyAndDay) {
  acme();
  ok({"company", "add", "globex"});
  ok({"domain", "add", "globex.example", "--company", "globex", "--destination", "127.0.0.1:2526"});
  for (const char* u : {"ann", "bob", "cid"}) ok({"user", "add", std::string(u) + "@acme.example"});
  ok({"user", "add", "desk@acme.example", "--role", "functional"});
  const auto counted = json::parse(ok({"maintain", "--at", "2026-11-30T08:00:00Z", "--json"}));
  EXPECT_EQ(counted["usage_counted"], 2);
  ok({"user", "remove", "ann@acme.example"});
  ok({"maintain", "--at", "2026-11-30T20:00:00Z"});  // the same day: 3 now, 4 at its peak
  ok({"user", "add", "one@globex.example", "--role", "silent_user"});
  EXPECT_NE(
      ok({"maintain", "--at", "2026-12-01T00:30:00Z"}).find("licensed users counted: 2 companies"),
      std::string::npos);
  ok({"company", "remove", "globex", "--force"});
  ok({"maintain", "--at", "2026-12-02T00:30:00Z"});

  // November: the peak of a day counts, the last count shows.
  auto out = ok({"usage", "--month", "2026-11"});
  EXPECT_NE(out.find("licensed users, 2026-11-01 to 2026-11-30"), std::string::npos) << out;
  EXPECT_NE(out.find("COMPANY  PEAK  AVERAGE  LAST DAY    USERS  END USERS  SILENT  FUNCTIONAL"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("acme     4     4.0      2026-11-30  3      2          0       1"),
            std::string::npos)
      << out;
  // December as JSON: globex, removed on the 1st, is still billed for that day.
  auto j = json::parse(ok({"usage", "--month", "2026-12", "--json"}));
  EXPECT_EQ(j["from"], "2026-12-01");
  EXPECT_EQ(j["to"], "2026-12-31");
  ASSERT_EQ(j["companies"].size(), 2u);
  EXPECT_EQ(j["companies"][1]["company"], "globex");
  EXPECT_EQ(j["companies"][1]["days_counted"], 1);
  EXPECT_EQ(j["companies"][1]["last"]["silent_users"], 1);
  EXPECT_EQ(j["companies"][0]["days_counted"], 2);
  EXPECT_EQ(j["companies"][0]["average_users"], 3.0);
  // One company, a range of days, a line per day.
  out = ok({"usage", "--company", "acme", "--from", "2026-11-30", "--to", "2026-12-01", "--daily"});
  EXPECT_NE(out.find("2026-11-30  acme     4     3"), std::string::npos) << out;
  EXPECT_NE(out.find("2026-12-01  acme     3     3"), std::string::npos) << out;
  EXPECT_EQ(out.find("2026-12-02"), std::string::npos) << out;
  EXPECT_EQ(out.find("globex"), std::string::npos) << out;
  // CSV for a billing system: a line per company and day.
  EXPECT_EQ(ok({"usage", "--month", "2026-11", "--csv"}),
            "day,company,users,peak_users,end_users,silent_users,functional,from_discovery\r\n"
            "2026-11-30,acme,3,4,2,0,1,0\r\n"
            "2026-11-30,globex,0,0,0,0,0,0\r\n");
  EXPECT_EQ(run({"usage", "--csv", "--json"}).status, 2);
  fails({"usage", "--month", "2026-13"}, "month '2026-13' is not a month");
  fails({"usage", "--from", "2026-12-05", "--to", "2026-12-01"}, "is before from");
  fails({"usage", "--company", "nobody"}, "no company named 'nobody'");
}

TEST_F(Cli, ImportCsvPreviewApplyAndReimport) {
  acme();
  ok({"user", "add", "manual@acme.example"});
  write_file(dir.file("users.csv"),
             "\xEF\xBB\xBF"
             "email,first_name,surname,role,type,aliases\r\n"
             "alice@acme.example,Alice,Liddell,end_user,,al@acme.example\r\n"
             "\"bob@acme.example\",\"Bob, Jr.\",\"O\"\"Brien\",,,\r\n"
             "room1@acme.example,Room,One,,functional,\r\n");
  const auto before = audit();
  const auto preview = json::parse(
      ok({"import", "csv", dir.file("users.csv"), "--company", "acme", "--dry-run", "--json"}));
  EXPECT_EQ(preview["counts"]["create"], 3);
  EXPECT_EQ(preview["applied"], false);
  EXPECT_EQ(audit(), before);  // a preview writes nothing

  ok({"import", "csv", dir.file("users.csv"), "--company", "acme"});
  const auto users = json::parse(ok({"user", "list", "--company", "acme", "--json"}));
  ASSERT_EQ(users.size(), 4u);
  EXPECT_EQ(users[1]["first_name"], "Bob, Jr.");
  EXPECT_EQ(users[1]["surname"], "O\"Brien");
  EXPECT_EQ(users[1]["source"], "csv");
  EXPECT_EQ(users[3]["role"], "functional");
  EXPECT_EQ(json::parse(ok({"user", "show", "alice@acme.example", "--json"}))["aliases"],
            json({"al@acme.example"}));

  // The same file again changes nothing.
  const auto again =
      json::parse(ok({"import", "csv", dir.file("users.csv"), "--company", "acme", "--json"}));
  EXPECT_EQ(again["counts"]["create"], 0);
  EXPECT_EQ(again["counts"]["update"], 0);

  // A shorter file with --delete-missing removes only CSV users, within the guard.
  write_file(dir.file("short.csv"), "email\nalice@acme.example\nbob@acme.example\n");
  fails({"import", "csv", dir.file("short.csv"), "--company", "acme", "--delete-missing"},
        "deletion guard");
  fails({"import", "csv", dir.file("short.csv"), "--company", "acme", "--delete-missing",
         "--dry-run"},
        "the deletion guard would refuse this import");
  ok({"import", "csv", dir.file("short.csv"), "--company", "acme", "--delete-missing", "--dry-run",
      "--force"});
  EXPECT_EQ(json::parse(ok({"user", "list", "--json"})).size(), 4u);
  ok({"import", "csv", dir.file("short.csv"), "--company", "acme", "--delete-missing", "--force"});
  const auto left = json::parse(ok({"user", "list", "--json"}));
  ASSERT_EQ(left.size(), 3u);
  EXPECT_EQ(left[2]["address"], "manual@acme.example");  // never deleted by a CSV sync
}

// A file as a spreadsheet saves it where the comma is the decimal mark: semicolons, the
// aliases column quoted, Windows-1252 text refused with a hint.
TEST_F(Cli, ImportCsvSeparatedBySemicolons) {
  acme();
  write_file(dir.file("excel.csv"),
             "email;first_name;surname;aliases\r\n"
             "alice@acme.example;Alice;\"Liddell, Jr.\";\"al@acme.example;a.l@acme.example\"\r\n"
             "bob@acme.example;B\xF6"
             "b;Smith;\r\n");
  auto r = run({"import", "csv", dir.file("excel.csv"), "--company", "acme", "--skip-invalid"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("columns separated by semicolons"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("line 3: field 2 is not valid UTF-8 (save the file as UTF-8; in Excel: "
                       "\"CSV UTF-8\")"),
            std::string::npos)
      << r.out;
  const auto alice = json::parse(ok({"user", "show", "alice@acme.example", "--json"}));
  EXPECT_EQ(alice["surname"], "Liddell, Jr.");
  EXPECT_EQ(alice["aliases"], json({"a.l@acme.example", "al@acme.example"}));
}

// A command waits for another process's write (an import, a directory sync) to end instead of
// failing after serve's 5 s, and says on stderr that it waits.
TEST_F(Cli, ACommandWaitsForAnotherProcesssWriteAndSaysSo) {
  acme();
  store::sqlite::Database other(dir.file("state.db"));
  other.exec("BEGIN IMMEDIATE");
  std::thread release([&] {
    std::this_thread::sleep_for(6s);
    other.exec("COMMIT");
  });
  const auto r = run({"user", "add", "late@acme.example"});
  release.join();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err,
            "waiting for another write to the database to end (an import or a directory sync?)\n");
  EXPECT_EQ(r.out, "user late@acme.example added to acme as end_user\n");
}

// `verify explain`: what the gateway answers for an address, as the SMTP path decides it
// (gateway::recipient_rule), read from the database.
TEST_F(Cli, VerifyExplainSaysWhatTheGatewayAnswersAndWhy) {
  acme();
  ok({"user", "add", "alice@acme.example"});
  ok({"alias", "add", "al@acme.example", "--user", "alice@acme.example"});
  ok({"invalid", "add", "ghost@acme.example"});
  const auto explain = [&](const std::string& address) {
    return json::parse(ok({"verify", "explain", address, "--json"}));
  };
  auto j = explain("Alice+News@ACME.example");
  EXPECT_EQ(j["answer"], "accept");
  EXPECT_EQ(j["reply"]["code"], 250);
  EXPECT_EQ(j["decided_as"], "Alice@acme.example");
  EXPECT_EQ(j["owner"]["kind"], "user");
  EXPECT_EQ(j["company"], "acme");
  EXPECT_EQ(j["destination"], "127.0.0.1:2526");
  EXPECT_NE(j["why"].get<std::string>().find("sub-addressing"), std::string::npos) << j;
  EXPECT_EQ(explain("al@acme.example")["owner"]["kind"], "alias");
  j = explain("ghost+x@acme.example");
  EXPECT_EQ(j["answer"], "invalid");
  EXPECT_EQ(j["reply"]["text"],
            "5.1.1 <ghost+x@acme.example>: recipient address rejected: address is marked invalid");
  j = explain("bob@acme.example");  // discovery is off by default
  EXPECT_EQ(j["answer"], "unknown");
  EXPECT_EQ(j["reply"]["code"], 550);
  EXPECT_EQ(explain("postmaster@acme.example")["answer"], "callout");  // RFC 5321 4.5.1
  ok({"discovery", "set", "--company", "acme", "enabled=true"});
  j = explain("bob+x@acme.example");
  EXPECT_EQ(j["answer"], "callout");
  EXPECT_TRUE(j["reply"].is_null());
  EXPECT_EQ(j["counted_as"], "bob@acme.example");
  // A callout also shows the running service's remembered answer (smtp_gateway_test); with no
  // service to ask, it says so and the rest stands.
  write_file(dir.file("nobody.toml"), "[admin]\nlisten = \"127.0.0.1:1\"\n");  // nothing there
  j = json::parse(
      ok({"--config", dir.file("nobody.toml"), "verify", "explain", "bob@acme.example", "--json"}));
  EXPECT_EQ(j["answer"], "callout");
  EXPECT_FALSE(j.contains("cached")) << j;
  const auto unasked =
      ok({"--config", dir.file("nobody.toml"), "verify", "explain", "bob@acme.example"});
  EXPECT_NE(unasked.find("\n  cached:      not known (cannot reach mailroster serve at "),
            std::string::npos)
      << unasked;
  j = explain("someone@elsewhere.example");
  EXPECT_EQ(j["answer"], "relay_denied");
  EXPECT_EQ(j["reply"]["text"], "5.7.1 <someone@elsewhere.example>: relay access denied");
  EXPECT_TRUE(j["company"].is_null());
  // As text, the reply first.
  const auto text = ok({"verify", "explain", "al+x@acme.example"});
  EXPECT_EQ(text.rfind("al+x@acme.example: 250 2.1.5 Ok\n", 0), 0u) << text;
  EXPECT_NE(text.find("domain:      acme.example (company acme), delivered to 127.0.0.1:2526"),
            std::string::npos)
      << text;
  fails({"verify", "explain", "not an address"}, "not an address");
}

TEST_F(Cli, ImportCsvWithBadRowsImportsNothingUnlessAsked) {
  acme();
  write_file(dir.file("bad.csv"),
             "email,role\ngood@acme.example,\nbad address,\nx@elsewhere.example,\n"
             "y@acme.example,boss\n");
  auto r = run({"import", "csv", dir.file("bad.csv"), "--company", "acme"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("line 3: bad address"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("line 4: x@elsewhere.example: domain 'elsewhere.example'"),
            std::string::npos);
  EXPECT_NE(r.out.find("line 5: unknown role 'boss'"), std::string::npos);
  EXPECT_NE(r.err.find("3 bad row(s); nothing was imported"), std::string::npos) << r.err;
  EXPECT_TRUE(json::parse(ok({"user", "list", "--json"})).empty());
  // A preview fails as the import would, after the plan: a script checks a file so.
  r = run({"import", "csv", dir.file("bad.csv"), "--company", "acme", "--dry-run"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("line 5: unknown role 'boss'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("create good@acme.example"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("3 bad row(s); nothing would be imported (fix them, or --skip-invalid)"),
            std::string::npos)
      << r.err;
  ok({"import", "csv", dir.file("bad.csv"), "--company", "acme", "--dry-run", "--skip-invalid"});
  EXPECT_TRUE(json::parse(ok({"user", "list", "--json"})).empty());
  ok({"import", "csv", dir.file("bad.csv"), "--company", "acme", "--skip-invalid"});
  EXPECT_EQ(json::parse(ok({"user", "list", "--json"})).size(), 1u);
  fails({"import", "csv", dir.file("missing.csv"), "--company", "acme"}, "cannot read");
  write_file(dir.file("noemail.csv"), "name\nx\n");
  fails({"import", "csv", dir.file("noemail.csv"), "--company", "acme"}, "no 'email' column");
}

// `user export` writes what `import csv` reads: edited in a spreadsheet and imported again,
// only the edits change.
TEST_F(Cli, UserExportWritesAFileThatImportsBackAsNoChange) {
  acme();
  write_file(dir.file("users.csv"),
             "email,first_name,surname,role,type,aliases\n"
             "alice@acme.example,Alice,\"Liddell, Jr.\",end_user,,al@acme.example\n"
             "bob@acme.example,=cmd|' /C calc'!A0,Smith,silent_user,,\n"
             "room1@acme.example,Room,One,,functional,\n");
  ok({"import", "csv", dir.file("users.csv"), "--company", "acme"});
  ok({"user", "add", "carol@acme.example", "--first-name", "Carol"});
  ok({"alias", "add", "c@acme.example", "--user", "carol@acme.example"});

  const auto out = ok({"user", "export", "--company", "acme"});
  EXPECT_EQ(out,
            "email,first_name,surname,role,type,aliases\r\n"
            "alice@acme.example,Alice,\"Liddell, Jr.\",end_user,user,al@acme.example\r\n"
            "bob@acme.example,'=cmd|' /C calc'!A0,Smith,silent_user,user,\r\n"
            "carol@acme.example,Carol,,end_user,user,c@acme.example\r\n"
            "room1@acme.example,Room,One,,functional,\r\n");

  EXPECT_EQ(ok({"user", "export", "--company", "acme", "-o", dir.file("out.csv"), "--bom"}),
            "4 users of acme written to " + dir.file("out.csv") + "\n");
  EXPECT_EQ(read_file(dir.file("out.csv")), "\xEF\xBB\xBF" + out);
  EXPECT_FALSE(std::filesystem::exists(dir.file("out.csv.part")));
  const auto again = json::parse(
      ok({"import", "csv", dir.file("out.csv"), "--company", "acme", "--dry-run", "--json"}));
  EXPECT_EQ(again["counts"],
            json({{"company_users", 4}, {"create", 0}, {"update", 0}, {"delete", 0}, {"skip", 0}}))
      << again.dump();

  // An edit in the file is the one change the import plans.
  auto edited = out;
  edited.replace(edited.find("Room,One"), 8, "Room,Two");
  write_file(dir.file("edited.csv"), edited);
  const auto plan = json::parse(
      ok({"import", "csv", dir.file("edited.csv"), "--company", "acme", "--dry-run", "--json"}));
  EXPECT_EQ(plan["counts"]["update"], 1);
  EXPECT_EQ(plan["counts"]["create"], 0);

  fails({"user", "export", "--company", "nosuch"}, "nosuch");
  fails({"user", "export", "--company", "acme", "-o", dir.file("no/such/dir/out.csv")},
        "cannot write");
}

// `backup` copies the SQLite file while another process writes to it: every copy holds whole
// transactions only (a 30,000-user import is all in it or none of it), opens as a database,
// and a failed backup leaves nothing behind.
TEST_F(Cli, BackupIsAConsistentCopyEvenDuringAnImport) {
  acme();
  ok({"user", "add", "alice@acme.example", "--first-name", "Alice"});
  const auto first = ok({"backup", dir.file("first.db")});
  EXPECT_TRUE(std::regex_search(
      first, std::regex("^backup of .*state\\.db written to .*first\\.db \\(1 users, \\d+ KiB\\); "
                        "the secrets key .*state\\.db\\.key is not in it")))
      << first;
  auto listed = [&](const std::string& db) {
    auto r = run_command(MAILROSTER_BINARY, {"--db", db, "user", "list", "--json"});
    EXPECT_EQ(r.status, 0) << r.err;
    return json::parse(r.out);
  };
  EXPECT_EQ(listed(dir.file("first.db")), json::parse(ok({"user", "list", "--json"})));

  std::string csv = "email\n";
  for (int i = 0; i < 30000; ++i) csv += "u" + std::to_string(i) + "@acme.example\n";
  write_file(dir.file("many.csv"), csv);
  std::atomic<bool> done = false;
  std::thread import([&] {
    ok({"import", "csv", dir.file("many.csv"), "--company", "acme"});
    done = true;
  });
  std::set<std::size_t> seen;
  for (int i = 0; i == 0 || (!done && i < 100); ++i) {
    const auto copy = dir.file("during" + std::to_string(i) + ".db");
    ok({"backup", copy});
    seen.insert(listed(copy).size());
  }
  import.join();
  for (const auto n : seen) EXPECT_TRUE(n == 1 || n == 30001) << n;  // never a part of it
  ok({"backup", dir.file("first.db")});                              // replaces the old copy
  EXPECT_EQ(listed(dir.file("first.db")).size(), 30001u);

  fails({"backup", dir.file("no/such/dir/x.db")}, "backup failed");
  EXPECT_FALSE(std::filesystem::exists(dir.file("no/such/dir/x.db.part")));
  auto pg = run_command(MAILROSTER_BINARY, {"--db", "postgresql://nobody@127.0.0.1:1/none",
                                            "backup", dir.file("pg.db")});
  EXPECT_EQ(pg.status, 1);
  EXPECT_NE(pg.err.find("pg_dump"), std::string::npos) << pg.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("pg.db")));
}

TEST_F(Cli, UsageErrorsExitTwo) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {}, {"frobnicate"}, {"user"}, {"user", "add"}, {"user", "list", "--bogus"}}) {
    auto r = run(args);
    EXPECT_EQ(r.status, 2) << args.size() << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  }
}

TEST_F(Cli, EveryVerbHasHelp) {
  const std::vector<std::vector<std::string>> verbs = {{},
                                                       {"serve"},
                                                       {"check-config"},
                                                       {"backup"},
                                                       {"audit", "prune"},
                                                       {"company"},
                                                       {"company", "add"},
                                                       {"company", "list"},
                                                       {"company", "show"},
                                                       {"company", "update"},
                                                       {"company", "remove"},
                                                       {"domain"},
                                                       {"domain", "add"},
                                                       {"domain", "list"},
                                                       {"domain", "update"},
                                                       {"domain", "remove"},
                                                       {"user"},
                                                       {"user", "add"},
                                                       {"user", "list"},
                                                       {"user", "show"},
                                                       {"user", "export"},
                                                       {"user", "update"},
                                                       {"user", "remove"},
                                                       {"alias"},
                                                       {"alias", "add"},
                                                       {"alias", "list"},
                                                       {"alias", "remove"},
                                                       {"audit"},
                                                       {"audit", "list"},
                                                       {"mail-log"},
                                                       {"usage"}};
  for (auto args : verbs) {
    args.push_back("--help");
    auto r = run(args);
    EXPECT_EQ(r.status, 0) << args[0];
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << args[0];
  }
  // Listings say they take --json.
  for (auto args : std::vector<std::vector<std::string>>{{"company", "list"},
                                                         {"domain", "list"},
                                                         {"user", "list"},
                                                         {"alias", "list"},
                                                         {"audit", "list"},
                                                         {"mail-log"},
                                                         {"usage"},
                                                         {"company", "show"},
                                                         {"user", "show"}}) {
    args.push_back("--help");
    EXPECT_NE(run(args).out.find("--json"), std::string::npos) << args[0] << " " << args[1];
  }
}

// The release and the commit built (cmake/Version.cmake), for an operator's bug report; serve
// logs the same first.
TEST_F(Cli, VersionSaysTheReleaseAndTheCommit) {
  const auto r = run({"--version"});
  EXPECT_EQ(r.status, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      r.out, m, std::regex("mailroster (\\d+\\.\\d+\\.\\d+) \\(([0-9a-f]{10})(-dirty)?\\)\n")))
      << r.out;
  // The sources' commit (this test runs in their checkout).
  std::string source = MAILROSTER_SLAPD_FIXTURE;
  source.resize(source.rfind("/tests/"));
  const auto head =
      run_command("/usr/bin/git", {"-c", "safe.directory=*", "-C", source, "rev-parse", "HEAD"});
  ASSERT_EQ(head.status, 0) << head.err;
  EXPECT_EQ(head.out.substr(0, 10), m[2].str());
}

TEST_F(Cli, CheckConfigAcceptsGoodAndNamesTheBadKey) {
  write_file(dir.file("good.toml"), "[database]\npath = \"x.db\"\n[log]\nlevel = \"warn\"\n");
  auto good = run_command(MAILROSTER_BINARY, {"--config", dir.file("good.toml"), "check-config"});
  EXPECT_EQ(good.status, 0) << good.err;
  EXPECT_EQ(good.out, "configuration OK\n");
  EXPECT_EQ(run_command(MAILROSTER_BINARY, {"check-config"}).status, 0);  // no file: defaults

  write_file(dir.file("bad.toml"), "[admin]\nlisten = \"127.0.0.1:8080\"\nlisen = 1\n");
  auto bad = run_command(MAILROSTER_BINARY, {"--config", dir.file("bad.toml"), "check-config"});
  EXPECT_EQ(bad.status, 1);
  EXPECT_EQ(bad.err, "error: " + dir.file("bad.toml") + ":3: unknown key 'admin.lisen'\n");

  write_file(dir.file("value.toml"), "[log]\nlevel = \"chatty\"\n");
  auto value = run_command(MAILROSTER_BINARY, {"-c", dir.file("value.toml"), "user", "list"});
  EXPECT_EQ(value.status, 1);
  EXPECT_NE(value.err.find("log.level unknown level 'chatty'"), std::string::npos) << value.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("mailroster.db")));
}

TEST_F(Cli, DatabasePathComesFromTheConfigFile) {
  write_file(dir.file("c.toml"), "[database]\npath = \"" + dir.file("from-config.db") + "\"\n");
  auto r =
      run_command(MAILROSTER_BINARY, {"--config", dir.file("c.toml"), "company", "add", "acme"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir.file("from-config.db")));
}

// ---- serve ----------------------------------------------------------------------------------

// serve on either database: SQLite, or PostgreSQL (several nodes on one database).
class Serve : public ::testing::TestWithParam<store::sql::Dialect> {
 protected:
  std::string config(const std::string& listen, const std::string& more = "") {
    const auto path = dir.file("serve.toml");
    const auto database = GetParam() == store::sql::Dialect::sqlite
                              ? "path = \"" + database_.location() + "\""
                              : "url = \"" + database_.location() + "\"";
    write_file(path, "[database]\n" + database + "\n[secrets]\nkey_file = \"" + dir.file("key") +
                         "\"\n[admin]\nlisten = \"" + listen +
                         "\"\n[smtp]\ninbound_listen = \"127.0.0.1:0\"\n"
                         "[outbound]\nlisten = \"127.0.0.1:0\"\n" +
                         more);
    return path;
  }

  // A counter of serve's /metrics (0 when absent).
  static double metric(int port, const std::string& name) {
    const auto body = http_get(port, "/metrics").body;
    std::smatch m;
    if (!std::regex_search(body, m, std::regex("\n" + name + " ([0-9.]+)"))) return 0;
    return std::stod(m[1]);
  }

  static int port_from_log(const std::string& log) {
    std::smatch m;
    if (!std::regex_search(log, m, std::regex("admin HTTP listening on 127\\.0\\.0\\.1:(\\d+)"))) {
      return 0;
    }
    return std::stoi(m[1]);
  }

  TempDir dir;
  TestDatabase database_{GetParam()};
};

INSTANTIATE_TEST_SUITE_P(Databases, Serve,
                         ::testing::Values(store::sql::Dialect::sqlite,
                                           store::sql::Dialect::postgres),
                         [](const auto& p) { return dialect_name(p.param); });

TEST_P(Serve, AnswersHealthzAndStopsCleanlyOnSigterm) {
  BackgroundProcess serve(MAILROSTER_BINARY, {"--config", config("127.0.0.1:0"), "serve"});
  ASSERT_TRUE(serve.wait_for_err("admin HTTP listening", 10s)) << serve.err();
  const int port = port_from_log(serve.err());
  ASSERT_GT(port, 0) << serve.err();
  EXPECT_NE(
      serve.err().find(
          GetParam() == store::sql::Dialect::sqlite
              ? "database SQLite " + database_.location()
              : std::string("database PostgreSQL user=mailroster dbname=postgres host=127.0.0.1")),
      std::string::npos)
      << serve.err();

  auto health = http_get(port, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(json::parse(health.body)["status"], "ok");
  auto missing = http_get(port, "/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json::parse(missing.body)["error"]["code"], "not_found");

  // The CLI and the running service share the database.
  auto add =
      run_command(MAILROSTER_BINARY, {"--db", database_.location(), "company", "add", "acme"});
  EXPECT_EQ(add.status, 0) << add.err;
  auto list =
      run_command(MAILROSTER_BINARY, {"--config", dir.file("serve.toml"), "company", "list"});
  EXPECT_NE(list.out.find("acme"), std::string::npos) << list.out << list.err;

  serve.signal(SIGTERM);
  EXPECT_EQ(serve.wait(10s), 0) << serve.err();
  EXPECT_NE(serve.err().find("received SIGTERM, draining 0 SMTP session(s)"), std::string::npos);
  EXPECT_NE(serve.err().find("every SMTP session has ended; stopping"), std::string::npos);
  EXPECT_EQ(http_get(port, "/healthz").status, 0);
}

TEST_P(Serve, StopsCleanlyOnSigint) {
  BackgroundProcess serve(MAILROSTER_BINARY, {"--config", config("127.0.0.1:0"), "serve"});
  ASSERT_TRUE(serve.wait_for_err("admin HTTP listening", 10s)) << serve.err();
  serve.signal(SIGINT);
  EXPECT_EQ(serve.wait(10s), 0) << serve.err();
  EXPECT_NE(serve.err().find("received SIGINT"), std::string::npos);
  EXPECT_NE(serve.err().find(" info mailroster " +
                             run_command(MAILROSTER_BINARY, {"--version"})
                                 .out.substr(std::string("mailroster ").size(), std::string::npos)),
            std::string::npos)
      << serve.err();
}

// Two nodes on one database: syncs, expiry and reports run on the one holding the scheduler
// lease; when it stops, the other takes over.
TEST_P(Serve, TwoNodesOnOneDatabaseRunScheduledWorkOnce) {
  const auto cfg = config("127.0.0.1:0", "[maintenance]\ninterval = \"1s\"\nsync_check = \"1s\"\n");
  BackgroundProcess a(MAILROSTER_BINARY, {"--config", cfg, "serve"});
  ASSERT_TRUE(a.wait_for_err("runs directory syncs, expiry and reports", 10s)) << a.err();
  EXPECT_NE(a.err().find("this node ("), std::string::npos) << a.err();
  BackgroundProcess b(MAILROSTER_BINARY, {"--config", cfg, "serve"});
  ASSERT_TRUE(b.wait_for_err("another node runs directory syncs", 10s)) << b.err();
  const int port_a = port_from_log(a.err()), port_b = port_from_log(b.err());
  ASSERT_GT(port_a, 0);
  ASSERT_GT(port_b, 0);
  // Ticks are real time (a second): wait for a few of A's runs, then B has had ticks too.
  auto runs_reach = [](int port, double n) {
    for (int i = 0; i < 100; ++i) {
      if (metric(port, "mailroster_maintenance_runs_total") >= n) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  };
  EXPECT_TRUE(runs_reach(port_a, 3));
  EXPECT_EQ(metric(port_b, "mailroster_maintenance_runs_total"), 0) << b.err();
  EXPECT_EQ(metric(port_a, "mailroster_scheduler_lease_held"), 1);
  EXPECT_EQ(metric(port_b, "mailroster_scheduler_lease_held"), 0);
  a.signal(SIGTERM);  // gives the lease up
  EXPECT_EQ(a.wait(10s), 0) << a.err();
  ASSERT_TRUE(b.wait_for_err("this node (", 10s)) << b.err();
  EXPECT_TRUE(runs_reach(port_b, 1));
  EXPECT_EQ(metric(port_b, "mailroster_scheduler_lease_held"), 1);
  b.signal(SIGTERM);
  EXPECT_EQ(b.wait(10s), 0) << b.err();
}

// A serve killed outright (the watchdog, the OOM killer, kill -9) never gives its lease up; the
// next process on its machine sees that it has ended and takes the lease at once, instead of
// waiting out its term (half an hour with the default intervals).
TEST_P(Serve, AKilledNodesLeaseIsTakenOverAtOnceOnItsMachine) {
  const auto cfg = config("127.0.0.1:0");
  BackgroundProcess a(MAILROSTER_BINARY, {"--config", cfg, "serve"});
  ASSERT_TRUE(a.wait_for_err("runs directory syncs, expiry and reports", 10s)) << a.err();
  a.signal(SIGKILL);
  EXPECT_EQ(a.wait(10s), 128 + SIGKILL);
  const auto killed = ":" + std::to_string(a.pid()) + ":";
  BackgroundProcess b(MAILROSTER_BINARY, {"--config", cfg, "serve"});
  ASSERT_TRUE(b.wait_for_err("runs directory syncs, expiry and reports", 10s)) << b.err();
  EXPECT_NE(b.err().find(killed), std::string::npos) << b.err();
  EXPECT_NE(b.err().find("is no longer running; taken over"), std::string::npos) << b.err();
  EXPECT_EQ(b.err().find("another node runs"), std::string::npos) << b.err();
  b.signal(SIGKILL);
  EXPECT_EQ(b.wait(10s), 128 + SIGKILL);
  // And a run by hand after it.
  const auto by_hand = run_command(MAILROSTER_BINARY, {"--config", cfg, "maintain"});
  EXPECT_EQ(by_hand.status, 0) << by_hand.err;
  EXPECT_NE(by_hand.err.find(":" + std::to_string(b.pid()) + ":"), std::string::npos)
      << by_hand.err;
}

// `maintain` by hand does serve's scheduled work, so it takes the same lease: while a serve
// holds it, a run by hand is refused (naming the holder) unless forced; one that ran gives the
// lease up, so the next run by hand gets it.
TEST_P(Serve, MaintainByHandTakesTheSchedulerLease) {
  const auto cfg = config("127.0.0.1:0");
  auto maintain = [&](std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"--config", cfg, "maintain"};
    args.insert(args.end(), more.begin(), more.end());
    return run_command(MAILROSTER_BINARY, args);
  };
  auto first = maintain();
  EXPECT_EQ(first.status, 0) << first.err;
  auto second = maintain();  // the first gave the lease up
  EXPECT_EQ(second.status, 0) << second.err;

  BackgroundProcess serve(MAILROSTER_BINARY, {"--config", cfg, "serve"});
  ASSERT_TRUE(serve.wait_for_err("runs directory syncs, expiry and reports", 10s)) << serve.err();
  auto refused = maintain();
  EXPECT_EQ(refused.status, 1);
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  EXPECT_NE(refused.err.find("error: the scheduler lease is held by "), std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find(":" + std::to_string(serve.pid()) + ":"), std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("--force"), std::string::npos);
  auto forced = maintain({"--force"});
  EXPECT_EQ(forced.status, 0) << forced.err;
  EXPECT_NE(forced.out.find("maintenance at "), std::string::npos);
  serve.signal(SIGTERM);  // gives the lease up
  EXPECT_EQ(serve.wait(10s), 0) << serve.err();
  auto after = maintain();
  EXPECT_EQ(after.status, 0) << after.err;
}

TEST_P(Serve, PortInUseIsOneClearLine) {
  BackgroundProcess first(MAILROSTER_BINARY, {"--config", config("127.0.0.1:0"), "serve"});
  ASSERT_TRUE(first.wait_for_err("admin HTTP listening", 10s));
  const int port = port_from_log(first.err());
  auto second = run_command(MAILROSTER_BINARY,
                            {"--config", config("127.0.0.1:" + std::to_string(port)), "serve"});
  EXPECT_EQ(second.status, 1);
  EXPECT_NE(second.err.find("error: cannot listen on 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << second.err;
  first.signal(SIGTERM);
  EXPECT_EQ(first.wait(10s), 0);
}

}  // namespace
}  // namespace mailroster::testing
