// Azure AD sync against a local server speaking Microsoft Graph's protocol
// (tests/graph/fake_graph.py: Graph itself cannot run here): token, users and groups with
// paging, delta with changes and removals, 429 + Retry-After, a 500 mid-paging, an expired
// delta token, a wrong secret; through the sync service and the CLI.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "directory/graph/graph_directory.hpp"
#include "directory/sync_service.hpp"
#include "store/secret_box.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "test_support.hpp"

namespace mailroster::directory::graph {
namespace {

using mailroster::testing::BackgroundProcess;
using mailroster::testing::TempDir;
using nlohmann::json;

class FakeGraph {
 public:
  FakeGraph() : process_("/usr/bin/python3", {MAILROSTER_FAKE_GRAPH, "--users", "250"}) {
    for (int i = 0; i < 200 && port == 0; ++i) {
      const auto out = process_.out();
      if (auto p = out.find("PORT "); p != std::string::npos && out.find('\n', p) != out.npos) {
        port = std::stoi(out.substr(p + 5));
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
      }
    }
    if (port == 0) throw std::runtime_error("fake Graph did not start: " + process_.err());
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  void control(const json& c) const {
    const auto r = mailroster::testing::run_command("/usr/bin/curl",
                                                    {"-sf", "-d", c.dump(), url() + "/_control"});
    if (r.status != 0) throw std::runtime_error("control failed");
  }
  json log() const {
    return json::parse(
        mailroster::testing::run_command("/usr/bin/curl", {"-sf", url() + "/_log"}).out);
  }
  json settings() const {
    return {{"tenant_id", "contoso-tenant"},
            {"client_id", "mailroster-app"},
            {"login_url", url()},
            {"graph_url", url()},
            {"timeout_seconds", 5},
            {"page_size", 60}};
  }
  int port = 0;

 private:
  BackgroundProcess process_;
};

class GraphSync : public ::testing::Test {
 protected:
  GraphSync()
      : clock(core::parse_iso8601("2026-11-24T10:00:00Z").value()),
        store(dir.file("m.db"), clock),
        secrets(store::SecretBox::open_key_file(dir.file("key"))),
        source(clock, [this](std::chrono::seconds s) { slept.push_back(s.count()); }),
        service(store, secrets, clock) {
    service.add_source(source);
    corp = store.add_company({"corp", "", "", {}}, admin);
    store.add_domain(corp.id, "corp.example", core::Endpoint::parse("h").value(), admin);
  }
  void configure(const json& options = json::object(), const std::string& secret = "graph-secret") {
    service.configure(corp.id, core::Source::azure, graph.settings(), options, secret, admin);
  }
  std::optional<core::User> user(const std::string& a) {
    return store.find_user(core::Address::parse(a).value());
  }
  std::size_t requests(const std::string& prefix, int status = 0) {
    std::size_t n = 0;
    for (const auto& r : graph.log()) {
      if (r["path"].get<std::string>().rfind(prefix, 0) == 0 && (!status || r["status"] == status))
        ++n;
    }
    return n;
  }
  FakeGraph graph;
  TempDir dir;
  core::ManualClock clock;
  store::sqlite::SqliteStore store;
  store::SecretBox secrets;
  std::vector<long> slept;
  GraphDirectory source;
  SyncService service;
  core::Actor admin{"admin:test"};
  core::Company corp;
};

TEST_F(GraphSync, FullRunReadsPagedUsersAndGroupsAndCachesTheToken) {
  configure({{"include_disabled", true}, {"include_security_groups", true}});
  std::size_t created = 0;
  const auto p = service.preview(corp.id, core::Source::azure, [&](const core::PlanItem& i) {
    created += i.action == core::PlanItem::Action::create;
  });
  // 250 bulk + alice + bob (disabled, included) + staff (security) + news (distribution).
  EXPECT_EQ(p.result.creates, 254u);
  EXPECT_EQ(created, 254u);
  EXPECT_GE(p.info["pages"].get<int>(), 5);  // 60 per page
  std::set<std::string> rejected;
  for (const auto& r : p.rejected) rejected.insert(r.reason);
  EXPECT_TRUE(rejected.count("guest account (an external person)"));
  EXPECT_TRUE(rejected.count("no mail address"));
  service.run(corp.id, core::Source::azure, false);
  const auto alice = user("alice@corp.example");
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->source_id, "00000000-0000-0000-0000-000000000001");
  EXPECT_EQ(store.find_alias(core::Address::parse("a.smith@corp.example").value())->user_id,
            alice->id);  // SIP:/X500: ignored
  EXPECT_EQ(user("staff@corp.example")->role, core::Role::functional);
  EXPECT_EQ(requests("/contoso-tenant/oauth2"), 1u);                  // one token for both runs
  EXPECT_EQ(requests("/v1.0/groups/g-staff/transitiveMembers"), 6u);  // 152 members, 60 a page
}

TEST_F(GraphSync, DeltaRunsApplyChangesAndRemovalsAndAnExpiredDeltaMeansAFullRun) {
  configure({{"delete_removed", true}});
  service.run(corp.id, core::Source::azure, false);
  ASSERT_TRUE(user("user0007@corp.example"));
  graph.control({{"action", "set_user"},
                 {"user",
                  {{"id", "00000000-0000-0000-0000-000000000001"},
                   {"accountEnabled", true},
                   {"mail", "alice@corp.example"},
                   {"givenName", "Alice"},
                   {"surname", "Smith-Jones"},
                   {"proxyAddresses", {"SMTP:alice@corp.example"}},
                   {"userType", "Member"}}}});
  graph.control({{"action", "remove_user"}, {"id", "00000000-0000-0000-0000-000000000107"}});
  const auto r = service.run(corp.id, core::Source::azure, false);
  EXPECT_TRUE(r.info["incremental"].get<bool>());
  EXPECT_EQ(r.result.updates, 1u);
  EXPECT_EQ(r.result.deletes, 1u);  // "@removed" in the delta
  EXPECT_EQ(user("alice@corp.example")->surname, "Smith-Jones");
  EXPECT_FALSE(store.find_alias(core::Address::parse("a.smith@corp.example").value()));
  EXPECT_FALSE(user("user0007@corp.example"));
  EXPECT_EQ(requests("/v1.0/users?"), 5u);  // only the first run listed every user

  graph.control({{"action", "expire_deltas"}});
  const auto full = service.run(corp.id, core::Source::azure, false);
  EXPECT_FALSE(full.info["incremental"].get<bool>());
  EXPECT_TRUE(full.info["delta_reset"].get<bool>());
  EXPECT_EQ(requests("/v1.0/users/delta", 410), 1u);
}

TEST_F(GraphSync, ThrottlingIsAnsweredByWaitingRetryAfter) {
  configure();
  graph.control(
      {{"action", "throttle"}, {"path", "/v1.0/users"}, {"count", 2}, {"retry_after", 7}});
  service.run(corp.id, core::Source::azure, false);
  EXPECT_EQ(slept, (std::vector<long>{7, 7}));  // waited as told, then went on
  EXPECT_EQ(requests("/v1.0/users", 429), 2u);
  EXPECT_TRUE(user("alice@corp.example"));
  // Bounded: a server that keeps throttling fails the run after max_retries tries.
  graph.control(
      {{"action", "throttle"}, {"path", "/v1.0/users"}, {"count", 100}, {"retry_after", 1}});
  clock.advance(std::chrono::hours(1));
  try {
    service.run(corp.id, core::Source::azure, false);
    ADD_FAILURE();
  } catch (const core::Failure& f) {
    EXPECT_NE(std::string(f.what()).find("HTTP 429"), std::string::npos) << f.what();
  }
}

// A Retry-After that is no number of seconds (an HTTP date) is not "retry at once": the
// client's own growing wait applies.
TEST_F(GraphSync, ARetryAfterDateMeansTheClientsOwnBackoff) {
  configure();
  graph.control({{"action", "throttle"},
                 {"path", "/v1.0/users"},
                 {"count", 2},
                 {"retry_after", "Wed, 25 Nov 2026 10:00:00 GMT"}});
  service.run(corp.id, core::Source::azure, false);
  EXPECT_EQ(slept, (std::vector<long>{2, 4}));
  EXPECT_TRUE(user("alice@corp.example"));
}

// Users are handed on a page at a time as they arrive, not held until the end (a tenant of
// any size is read in bounded memory, and the sync writes each page while the next is fetched);
// groups come in the snapshot. A sink that says stop ends the read as a failure.
TEST_F(GraphSync, UsersArriveAPageAtATime) {
  std::vector<std::size_t> batches;
  const auto r = source.read(graph.settings(), "graph-secret", "",
                             [&](std::vector<core::DirectoryEntry>&& batch) {
                               batches.push_back(batch.size());
                               return true;
                             });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GE(batches.size(), 5u);  // 250 and more users, 60 a page
  std::size_t users = 0;
  for (const auto n : batches) {
    EXPECT_LE(n, 60u);
    users += n;
  }
  EXPECT_GE(users, 250u);
  EXPECT_EQ(r->snapshot.entries.size(), 2u);  // the mail-enabled groups: staff and news
  for (const auto& e : r->snapshot.entries) EXPECT_TRUE(e.functional || e.security_group);

  const auto whole = source.read(graph.settings(), "graph-secret", "", {});  // no sink: all
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->snapshot.entries.size(), users + 2);

  std::size_t seen = 0;
  const auto stopped = source.read(graph.settings(), "graph-secret", "",
                                   [&](std::vector<core::DirectoryEntry>&&) { return ++seen < 2; });
  ASSERT_FALSE(stopped);
  EXPECT_NE(stopped.error().message.find("stopped after page 2"), std::string::npos)
      << stopped.error().message;
}

TEST_F(GraphSync, AFailureMidPagingAppliesAndDeletesNothing) {
  configure({{"delete_removed", true}, {"max_delete_share", 1.0}});
  service.run(corp.id, core::Source::azure, false);
  const auto users = store.count_users(corp.id);
  graph.control({{"action", "expire_deltas"}});  // the next run is a full one
  graph.control({{"action", "fail"}, {"path", "/v1.0/users"}, {"after", 2}, {"status", 500}});
  try {
    service.run(corp.id, core::Source::azure, false);
    ADD_FAILURE();
  } catch (const core::Failure& f) {
    EXPECT_NE(std::string(f.what()).find("(page 3): HTTP 500"), std::string::npos) << f.what();
    EXPECT_NE(std::string(f.what()).find("nothing was changed"), std::string::npos);
  }
  EXPECT_EQ(store.count_users(corp.id), users);
  EXPECT_FALSE(service.status(corp.id, core::Source::azure)["last_error"].is_null());
}

TEST_F(GraphSync, AServerThatDoesNotAnswerTimesOut) {
  auto settings = graph.settings();
  settings["timeout_seconds"] = 1;
  service.configure(corp.id, core::Source::azure, settings, json::object(), "graph-secret", admin);
  graph.control({{"action", "stall"}, {"path", "/v1.0/groups"}, {"seconds", 3}});
  try {
    service.run(corp.id, core::Source::azure, false);
    ADD_FAILURE();
  } catch (const core::Failure& f) {
    EXPECT_NE(std::string(f.what()).find("GET /v1.0/groups (page 1): Timeout"), std::string::npos)
        << f.what();
  }
  EXPECT_EQ(store.count_users(corp.id), 0u);
}

TEST_F(GraphSync, AWrongSecretIsAClearErrorAndNeverStoredInTheClear) {
  configure(json::object(), "not-the-secret");
  try {
    service.test(corp.id, core::Source::azure);
    ADD_FAILURE();
  } catch (const core::Failure& f) {
    EXPECT_NE(std::string(f.what()).find("AADSTS7000215: Invalid client secret"), std::string::npos)
        << f.what();
  }
  EXPECT_THROW(service.run(corp.id, core::Source::azure, false), core::Failure);
  EXPECT_EQ(store.count_users(corp.id), 0u);
  EXPECT_EQ(mailroster::testing::read_file(dir.file("m.db")).find("not-the-secret"),
            std::string::npos);
  EXPECT_EQ(service.status(corp.id, core::Source::azure).dump().find("not-the-secret"),
            std::string::npos);
}

TEST_F(GraphSync, ExpiredTokensAreRenewedOnce) {
  configure();
  service.run(corp.id, core::Source::azure, false);
  graph.control({{"action", "expire_tokens"}});  // revoked before their time
  service.run(corp.id, core::Source::azure, false);
  EXPECT_EQ(requests("/contoso-tenant/oauth2"), 2u);
  clock.advance(std::chrono::hours(2));  // past expires_in: a new one without a 401
  const auto before = requests("/v1.0", 401);
  service.run(corp.id, core::Source::azure, false);
  EXPECT_EQ(requests("/contoso-tenant/oauth2"), 3u);
  EXPECT_EQ(requests("/v1.0", 401), before);
}

// What an answer may make mailroster do is bounded: the access token goes to graph_url's
// server only (a nextLink or deltaLink elsewhere is refused before any request), a nextLink
// that loops ends the read, an endless answer is cut at 64 MiB, a deltaLink that is not a
// string is an error, and none of it changes a user.
TEST_F(GraphSync, AnAnswerCannotSendTheTokenElsewhereLoopOrFillTheMemory) {
  configure({{"delete_removed", true}, {"max_delete_share", 1.0}});
  FakeGraph other;  // another server, as a hostile or broken nextLink would name
  auto fails_with = [&](const std::string& what) {
    try {
      service.run(corp.id, core::Source::azure, false);
      ADD_FAILURE() << "the run succeeded; expected: " << what;
    } catch (const core::Failure& f) {
      EXPECT_NE(std::string(f.what()).find(what), std::string::npos) << f.what();
      EXPECT_NE(std::string(f.what()).find("nothing was changed"), std::string::npos);
    }
    EXPECT_EQ(store.count_users(corp.id), 0u);
  };
  graph.control({{"action", "next_link"},
                 {"path", "/v1.0/users"},
                 {"url", other.url() + "/v1.0/users?$skiptoken=60"}});
  fails_with("refused to follow a link to http://127.0.0.1:" + std::to_string(other.port));
  EXPECT_TRUE(other.log().empty());  // not one request: the token never left

  graph.control({{"action", "next_link"},
                 {"path", "/v1.0/users"},
                 {"url", graph.url() + "/v1.0/users?$skiptoken=60"}});
  fails_with("repeats an earlier page; the listing would never end");
  EXPECT_EQ(requests("/v1.0/users?"), 3u);  // one page, then two

  graph.control({{"action", "next_link"}, {"path", "/v1.0/users"}, {"url", nullptr}});
  graph.control({{"action", "pad"}, {"path", "/v1.0/groups"}, {"bytes", 65 << 20}});
  fails_with("the answer is larger than 64 MiB");
  graph.control({{"action", "pad"}, {"path", "/v1.0/groups"}, {"bytes", 0}});

  graph.control({{"action", "delta_link"}, {"value", other.url() + "/v1.0/users/delta"}});
  fails_with("Graph gave a deltaLink outside graph_url");
  graph.control({{"action", "delta_link"}, {"value", 5}});
  fails_with("Graph gave no deltaLink");
  EXPECT_TRUE(other.log().empty());
}

// A deltaLink that turns bad after a good full run: the incremental run fails cleanly, and a
// stored link for another server (graph_url changed) is never followed: a full run instead.
TEST_F(GraphSync, ABadDeltaLinkIsAnErrorAndAStoredOneForAnotherServerMeansAFullRun) {
  configure();
  service.run(corp.id, core::Source::azure, false);
  EXPECT_EQ(service.status(corp.id, core::Source::azure)["next_read"], "incremental");
  graph.control({{"action", "delta_link"}, {"value", json::object()}});
  try {
    service.run(corp.id, core::Source::azure, false);
    ADD_FAILURE();
  } catch (const core::Failure& f) {
    EXPECT_NE(std::string(f.what()).find("Graph gave no deltaLink"), std::string::npos) << f.what();
  }
  graph.control({{"action", "delta_link"}, {"value", nullptr}});
  // A stored link for another server (kept from before graph_url was changed): not followed.
  FakeGraph other;
  const auto r = source.read(graph.settings(), "graph-secret",
                             other.url() + "/v1.0/users/delta?$deltatoken=1", {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->info["incremental"].get<bool>());
  EXPECT_TRUE(r->info["delta_reset"].get<bool>());
  EXPECT_TRUE(other.log().empty());
  // An option that includes more (disabled accounts): a full read brings bob in.
  EXPECT_FALSE(user("bob@corp.example"));
  service.configure(corp.id, core::Source::azure, json::object(), {{"include_disabled", true}},
                    std::nullopt, admin);
  EXPECT_FALSE(service.run(corp.id, core::Source::azure, false).info["incremental"].get<bool>());
  EXPECT_TRUE(user("bob@corp.example"));
}

TEST_F(GraphSync, TheCliSyncsAzure) {
  auto cli = [&](std::vector<std::string> args, const std::string& in = "") {
    args.insert(args.begin(), {"--db", dir.file("cli.db")});
    return mailroster::testing::run_command(MAILROSTER_BINARY, args, in);
  };
  ASSERT_EQ(cli({"company", "add", "corp"}).status, 0);
  ASSERT_EQ(
      cli({"domain", "add", "corp.example", "--company", "corp", "--destination", "127.0.0.1:25"})
          .status,
      0);
  auto r = cli({"sync", "azure", "configure", "--company", "corp", "--set",
                "tenant_id=contoso-tenant", "--set", "client_id=mailroster-app", "--set",
                "login_url=" + graph.url(), "--set", "graph_url=" + graph.url(), "--secret-stdin"},
               "graph-secret\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.find("graph-secret"), std::string::npos);
  r = cli({"sync", "azure", "run", "--company", "corp", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["created"], 252);  // 250 + alice + news (distribution list)
  r = cli({"sync", "azure", "status", "--company", "corp"});
  EXPECT_NE(r.out.find("last error: none"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("next read: incremental"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("last result: 252 created, 0 updated, 0 deleted, "), std::string::npos)
      << r.out;
  r = cli({"sync", "azure", "run", "--company", "corp", "--json"});
  EXPECT_EQ(json::parse(r.out)["info"]["incremental"], true) << r.out;
  r = cli({"sync", "azure", "run", "--company", "corp", "--full", "--json"});
  EXPECT_EQ(json::parse(r.out)["info"]["incremental"], false) << r.out;
  // Search Now as the next run reads (changes only), or with --full from everything.
  r = cli({"sync", "azure", "preview", "--company", "corp", "--json"});
  EXPECT_EQ(json::parse(r.out)["info"]["incremental"], true) << r.out;
  r = cli({"sync", "azure", "preview", "--company", "corp", "--full", "--json"});
  EXPECT_EQ(json::parse(r.out)["info"]["incremental"], false) << r.out;
  EXPECT_EQ(json::parse(r.out)["counts"]["create"], 0) << r.out;
  // Every company's syncs, for an operator.
  r = cli({"sync", "list", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto all = json::parse(r.out);
  ASSERT_EQ(all.size(), 1u) << r.out;
  EXPECT_EQ(all[0]["company"], "corp");
  EXPECT_EQ(all[0]["kind"], "azure");
  EXPECT_EQ(all[0]["failing"], false);
  EXPECT_EQ(all[0]["next_read"], "incremental");
  r = cli({"sync", "list"});
  EXPECT_NE(r.out.find("corp"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("incremental  ok"), std::string::npos) << r.out;
  EXPECT_EQ(cli({"sync", "list", "--company", "nobody"}).status, 1);
}

}  // namespace
}  // namespace mailroster::directory::graph
