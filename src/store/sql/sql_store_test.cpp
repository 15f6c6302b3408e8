#include "store/sql/sql_store.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "core/json.hpp"
#include "store/migrations/migration.hpp"
#include "test_support.hpp"

namespace mailroster::store::sql {
namespace {

using core::Address;
using core::ErrorCode;
using core::Failure;
using namespace std::chrono;

Address addr(const char* text) { return Address::parse(text).value(); }

using testing::expect_failure;

// Every test here runs on both databases: SQLite, and a real PostgreSQL server.
class StoreTest : public ::testing::TestWithParam<Dialect> {
 protected:
  StoreTest() : clock(core::TimePoint{sys_days{2026y / November / 2}}) {}

  const std::vector<Migration>& migrations() const {
    return GetParam() == Dialect::sqlite ? sqlite_migrations() : postgres_migrations();
  }

  core::Company add_acme() {
    auto c = store.add_company({"acme", "it@acme.example", "boss@acme.example", {}}, actor);
    store.add_domain(c.id, "acme.example", core::Endpoint::parse("127.0.0.1:2526").value(), actor);
    store.add_domain(c.id, "acme.test", core::Endpoint::parse("127.0.0.1:2526").value(), actor);
    return c;
  }

  core::Company add_globex() {
    auto c = store.add_company({"globex", "", "", {}}, actor);
    store.add_domain(c.id, "globex.example", core::Endpoint::parse("mx.globex.example").value(),
                     actor);
    return c;
  }

  core::User add_user(const char* address, core::Role role = core::Role::end_user) {
    NewUser u;
    u.address = addr(address);
    u.first_name = "First";
    u.surname = "Last";
    u.role = role;
    return store.add_user(u, actor);
  }

  std::size_t audit_count() { return store.list_audit({std::nullopt, 0}).size(); }

  testing::TestDatabase database{GetParam()};
  core::ManualClock clock;
  std::unique_ptr<SqlStore> owned = database.open(clock);
  SqlStore& store = *owned;
  core::Actor actor{"test"};
};

INSTANTIATE_TEST_SUITE_P(Databases, StoreTest,
                         ::testing::Values(Dialect::sqlite, Dialect::postgres),
                         [](const auto& p) { return testing::dialect_name(p.param); });

TEST_P(StoreTest, MigratesFromEmptyToTheLatestVersion) {
  EXPECT_EQ(store.schema_version(), migrations().back().version);
}

// Every foreign key's referencing column leads an index (or is the primary key): without one,
// each removal of a referenced row scans the referencing table (deleting a million users with a
// few thousand discovered addresses took hours).
TEST_P(StoreTest, EveryForeignKeyHasAnIndex) {
  const auto raw = database.connect();
  auto unindexed = [&] {
    auto s = raw->prepare(
        GetParam() == Dialect::sqlite
            ? "SELECT t.name || '.' || f.\"from\" FROM sqlite_master t, "
              "pragma_foreign_key_list(t.name) f WHERE t.type = 'table' AND f.\"from\" NOT IN "
              "(SELECT ii.name FROM pragma_index_list(t.name) il, pragma_index_info(il.name) ii "
              "WHERE ii.seqno = 0) AND f.\"from\" NOT IN (SELECT name FROM "
              "pragma_table_info(t.name) WHERE pk = 1) ORDER BY 1"
            : "SELECT c.conrelid::regclass::text || '.' || a.attname FROM pg_constraint c JOIN "
              "pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] WHERE "
              "c.contype = 'f' AND c.connamespace = current_schema()::regnamespace AND NOT "
              "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = "
              "c.conkey[1]) ORDER BY 1");
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  };
  EXPECT_EQ(unindexed(), std::vector<std::string>{});
  // Not vacuous: a reference without an index is seen.
  raw->exec("CREATE TABLE fk_probe (id BIGINT PRIMARY KEY, user_id BIGINT REFERENCES users(id))");
  EXPECT_EQ(unindexed(), std::vector<std::string>{"fk_probe.user_id"});
}

// serve gives the SMTP path a second store on the same file: it must answer while the first
// holds a long write transaction (an import, a directory sync) and see what that committed.
TEST_P(StoreTest, ASecondConnectionReadsWhileTheFirstWrites) {
  add_acme();
  add_user("ann@acme.example");
  auto lookups_owned = database.open(clock);
  auto& lookups = *lookups_owned;
  testing::HeldWrite writer(store, [&] { add_user("bob@acme.example"); });
  // The writer is inside its transaction, holding the first store: these do not wait for it,
  // and see the last committed state.
  EXPECT_EQ(lookups.resolve(addr("ann@acme.example")).kind, AddressOwner::Kind::user);
  EXPECT_EQ(lookups.resolve(addr("bob@acme.example")).kind, AddressOwner::Kind::none);
  EXPECT_TRUE(lookups.find_domain("acme.example"));
  writer.release();
  EXPECT_EQ(lookups.resolve(addr("bob@acme.example")).kind, AddressOwner::Kind::user);
}

// The serve processes on the database: inserted, then updated by each tick; gone when they
// say so; dropped a day after their expiry when another one ticks.
TEST_P(StoreTest, NodesSayTheyAreAliveAndGone) {
  const auto t = clock.now();
  Node a{"gw1:10:aa:x", "gw1", "0.1.0 (abc)", "inbound SMTP 0.0.0.0:25", t, t, t + 90s};
  Node b{"gw2:20:bb:y", "gw2", "0.1.0 (abc)", "inbound SMTP 0.0.0.0:25", t, t, t + 90s};
  store.node_seen(b);
  store.node_seen(a);
  a.seen_at = t + 30s;
  a.expires_at = t + 120s;
  a.version = "0.2.0 (def)";
  store.node_seen(a);
  auto nodes = store.list_nodes();
  ASSERT_EQ(nodes.size(), 2U);
  EXPECT_EQ(nodes[0].id, "gw1:10:aa:x");  // by host
  EXPECT_EQ(nodes[0].version, "0.2.0 (def)");
  EXPECT_EQ(nodes[0].started_at, t);
  EXPECT_EQ(nodes[0].seen_at, t + 30s);
  EXPECT_EQ(nodes[0].expires_at, t + 120s);
  EXPECT_EQ(nodes[1].serving, "inbound SMTP 0.0.0.0:25");
  store.node_gone(a.id);
  ASSERT_EQ(store.list_nodes().size(), 1U);
  // b never said it stopped: listed (as expired) for a day after its expiry, then dropped.
  Node c{"gw3:30:cc:z", "gw3", "0.1.0 (abc)", "", t, t + 24h + 89s, t + 24h + 180s};
  store.node_seen(c);
  EXPECT_EQ(store.list_nodes().size(), 2U);
  c.seen_at = t + 24h + 91s;
  store.node_seen(c);
  nodes = store.list_nodes();
  ASSERT_EQ(nodes.size(), 1U);
  EXPECT_EQ(nodes[0].id, "gw3:30:cc:z");
}

// Rate-limit counts between nodes: on PostgreSQL another store on the database hears them
// (in reports of bounded size, each tally apart), its sender does not, and the lookups' memory
// is not dropped for them; a SQLite file has one node, so nothing is sent or heard.
TEST_P(StoreTest, TallyCountsReachTheOtherNodesOnly) {
  auto other_owned = database.open(clock);
  auto& other = *other_owned;
  EXPECT_TRUE(other.heard_from_nodes(Tally::harvest).empty());  // the first call listens
  EXPECT_TRUE(other.heard_from_nodes(Tally::logins).empty());
  EXPECT_TRUE(other.heard_from_nodes(Tally::verify_flushes).empty());
  EXPECT_TRUE(store.heard_from_nodes(Tally::harvest).empty());
  other.lookups_changed();
  std::vector<core::TallyCount> sent{{"192.0.2.7", 3}, {"2001:db8::1", 1}};
  for (int i = 0; i < 2000; ++i) {  // more than one notification holds
    sent.push_back({fmt::format("10.0.{}.{}", i / 250, i % 250), 1});
  }
  store.tell_nodes(Tally::harvest, sent);
  const std::string quoted = R"(email:"a b"@acme.example)";  // a space in the key
  store.tell_nodes(Tally::logins, {{quoted, 2},
                                   {"", 1},
                                   {"line\nbreak", 1},
                                   {"client:" + std::string(400, 'x'), 1},
                                   {"client:192.0.2.7", 4}});
  store.tell_nodes(Tally::verify_flushes, {{"domain:acme.example", 1}});
  std::vector<core::TallyCount> heard;
  std::vector<core::TallyCount> logins;
  std::vector<core::TallyCount> flushes;
  const int tries = GetParam() == Dialect::sqlite ? 10 : 300;
  for (int i = 0; i < tries && (heard.size() < sent.size() || logins.size() < 2 || flushes.empty());
       ++i) {
    auto more = other.heard_from_nodes(Tally::harvest);
    heard.insert(heard.end(), more.begin(), more.end());
    more = other.heard_from_nodes(Tally::logins);
    logins.insert(logins.end(), more.begin(), more.end());
    more = other.heard_from_nodes(Tally::verify_flushes);
    flushes.insert(flushes.end(), more.begin(), more.end());
    std::this_thread::sleep_for(10ms);
  }
  if (GetParam() == Dialect::sqlite) {
    EXPECT_TRUE(heard.empty());
    EXPECT_TRUE(logins.empty());
    EXPECT_TRUE(flushes.empty());
  } else {
    EXPECT_EQ(heard, sent);
    EXPECT_EQ(logins, (std::vector<core::TallyCount>{{quoted, 2}, {"client:192.0.2.7", 4}}));
    EXPECT_EQ(flushes, (std::vector<core::TallyCount>{{"domain:acme.example", 1}}));
  }
  std::this_thread::sleep_for(100ms);  // its own report has reached its own connection too
  EXPECT_TRUE(store.heard_from_nodes(Tally::harvest).empty()) << "a node does not hear itself";
  EXPECT_FALSE(other.lookups_changed()) << "counts are not a change to what the SMTP path reads";
}

// Two nodes (two stores on one database) write one at a time: a write transaction waits for
// the other's to end (SQLite: the file's write lock; PostgreSQL: an advisory lock every write
// transaction takes), so that read-decide-write in one transaction cannot interleave with
// another node's. On PostgreSQL the lease, one statement, is renewed meanwhile.
TEST_P(StoreTest, AnotherNodesWriteWaitsForAnOpenOne) {
  add_acme();
  auto other_owned = database.open(clock);
  auto& other = *other_owned;
  testing::HeldWrite writer(store, [&] { add_user("ann@acme.example"); });
  auto bob = std::async(std::launch::async, [&] {
    NewUser u;
    u.address = addr("bob@acme.example");
    return other.add_user(u, actor);
  });
  EXPECT_EQ(bob.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout)
      << "a write went ahead of an open write transaction";
  if (GetParam() == Dialect::postgres) {  // a third node: the second one waits, as it should
    const auto third = database.open(clock);
    EXPECT_TRUE(third->hold_lease("scheduler", "node-c", clock.now(), std::chrono::seconds(60)));
  }
  writer.release();
  EXPECT_EQ(bob.get().address.str(), "bob@acme.example");
  EXPECT_TRUE(other.find_user(addr("ann@acme.example")));
}

// The same store's reads, from another thread, while one thread holds it in a long write
// transaction (a sync or an import started from the admin API): they are answered at once,
// from the last committed state, on a connection of their own; the writing thread reads its
// own uncommitted writes. (Without this the API, logins included, waited for the sync.)
TEST_P(StoreTest, ReadsFromOtherThreadsDoNotWaitForALongWrite) {
  const auto acme = add_acme();
  add_user("ann@acme.example");
  std::optional<core::User> seen_inside;
  testing::HeldWrite writer(store, [&] {
    add_user("bob@acme.example");
    seen_inside = store.find_user(addr("bob@acme.example"));
  });
  EXPECT_TRUE(seen_inside) << "the writer sees its own user";
  auto reads = std::async(std::launch::async, [&] {
    return std::make_tuple(store.find_user(addr("ann@acme.example")).has_value(),
                           store.find_user(addr("bob@acme.example")).has_value(),
                           store.count_users(acme.id), store.list_users({}).size(),
                           store.find_company("acme").has_value());
  });
  const bool answered = reads.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  EXPECT_TRUE(answered) << "reads waited for the writer";
  writer.release();
  if (answered) {
    EXPECT_EQ(reads.get(), std::make_tuple(true, false, std::size_t{1}, std::size_t{1}, true));
  }
  EXPECT_TRUE(store.find_user(addr("bob@acme.example")));  // committed: seen by every read
  EXPECT_EQ(store.count_users(acme.id), 2u);
}

TEST_P(StoreTest, ReopeningDoesNotReapplyMigrations) {
  add_acme();
  auto again_owned = database.open(clock);
  auto& again = *again_owned;
  EXPECT_EQ(again.schema_version(), migrations().back().version);
  EXPECT_TRUE(again.find_company("acme"));
}

TEST_P(StoreTest, AddsFindsAndListsCompanies) {
  auto c = store.add_company(
      {"acme", "IT@Acme.Example", "", {core::Cidr::parse("192.0.2.0/24").value()}}, actor);
  EXPECT_GT(c.id, 0);
  EXPECT_EQ(c.tech_contact, "IT@acme.example");
  EXPECT_EQ(c.created_at, clock.now());
  auto found = store.find_company("ACME");  // names compare case-insensitively
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, c.id);
  ASSERT_EQ(found->relay_networks.size(), 1u);
  EXPECT_EQ(found->relay_networks[0].str(), "192.0.2.0/24");
  add_globex();
  auto all = store.list_companies();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "acme");
  EXPECT_EQ(all[1].name, "globex");
  EXPECT_FALSE(store.find_company("initech"));
  EXPECT_TRUE(store.company_by_id(c.id));
  EXPECT_FALSE(store.company_by_id(999));
}

TEST_P(StoreTest, RefusesDuplicateAndMalformedCompanies) {
  add_acme();
  const auto before = audit_count();
  expect_failure(
      [&] {
        store.add_company({"Acme", "", "", {}}, actor);
      },
      ErrorCode::conflict, "company 'Acme' already exists");
  expect_failure(
      [&] {
        store.add_company({"bad name", "", "", {}}, actor);
      },
      ErrorCode::invalid_argument, "may contain only");
  expect_failure(
      [&] {
        store.add_company({"initech", "not-an-address", "", {}}, actor);
      },
      ErrorCode::invalid_argument, "tech_contact");
  EXPECT_EQ(store.list_companies().size(), 1u);
  EXPECT_EQ(audit_count(), before);
}

TEST_P(StoreTest, UpdatesCompanyWithAudit) {
  auto c = add_acme();
  CompanyChange change;
  change.admin_contact = "";
  change.relay_networks = std::vector{core::Cidr::parse("198.51.100.0/24").value(),
                                      core::Cidr::parse("2001:db8::/48").value()};
  auto after = store.update_company(c.id, change, actor);
  EXPECT_EQ(after.tech_contact, "it@acme.example");  // unchanged
  EXPECT_EQ(after.admin_contact, "");
  ASSERT_EQ(after.relay_networks.size(), 2u);
  EXPECT_EQ(after.relay_networks[1].str(), "2001:db8::/48");
  auto events = store.list_audit({c.id, 1});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].action, "company.update");
  EXPECT_NE(events[0].before.find("boss@acme.example"), std::string::npos);
  EXPECT_EQ(events[0].after.find("boss@acme.example"), std::string::npos);
}

TEST_P(StoreTest, RemovingACompanyWithDomainsNeedsForce) {
  auto c = add_acme();
  add_user("alice@acme.example");
  expect_failure([&] { store.remove_company(c.id, false, actor); }, ErrorCode::conflict,
                 "still has 2 domain(s)");
  EXPECT_TRUE(store.find_user(addr("alice@acme.example")));

  store.remove_company(c.id, true, actor);
  EXPECT_FALSE(store.find_company("acme"));
  EXPECT_FALSE(store.find_domain("acme.example"));
  EXPECT_FALSE(store.find_user(addr("alice@acme.example")));
  // The address is free again: the claim went with the user.
  auto again = add_acme();
  EXPECT_NO_THROW(add_user("alice@acme.example"));
  // The trail of the removed company survives it.
  bool saw_user_remove = false;
  for (const auto& e : store.list_audit({c.id, 0})) saw_user_remove |= e.action == "user.remove";
  EXPECT_TRUE(saw_user_remove);
  (void)again;
}

// ---- domains --------------------------------------------------------------------------------

TEST_P(StoreTest, DomainsBelongToOneCompany) {
  auto acme = add_acme();
  auto globex = store.add_company({"globex", "", "", {}}, actor);
  expect_failure(
      [&] {
        store.add_domain(globex.id, "ACME.example", core::Endpoint::parse("h").value(), actor);
      },
      ErrorCode::conflict, "already registered to company 'acme'");
  expect_failure(
      [&] { store.add_domain(globex.id, "bad_domain", core::Endpoint::parse("h").value(), actor); },
      ErrorCode::invalid_argument, "invalid character");
  expect_failure(
      [&] { store.add_domain(424242, "new.example", core::Endpoint::parse("h").value(), actor); },
      ErrorCode::not_found, "no company");
  auto d = store.find_domain("Acme.Example");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->company_id, acme.id);
  EXPECT_EQ(d->destination.str(), "127.0.0.1:2526");
  EXPECT_EQ(store.list_domains(acme.id).size(), 2u);
  EXPECT_EQ(store.list_domains(globex.id).size(), 0u);
  EXPECT_EQ(store.list_domains(std::nullopt).size(), 2u);
}

TEST_P(StoreTest, ChangesDomainDestination) {
  add_acme();
  auto d = store.find_domain("acme.example").value();
  auto after =
      store.set_domain_destination(d.id, core::Endpoint::parse("[::1]:2600").value(), actor);
  EXPECT_EQ(after.destination.str(), "[::1]:2600");
  EXPECT_EQ(store.find_domain("acme.example")->destination.hosts.at(0).port, 2600);

  // Several servers, in order; back to one clears the others.
  const auto two = core::Destination::parse("mx1.acme.example, [::1]:2600").value();
  EXPECT_EQ(store.set_domain_destination(d.id, two, actor).destination, two);
  EXPECT_EQ(store.find_domain("acme.example")->destination, two);
  EXPECT_EQ(store.list_domains(std::nullopt).at(0).destination, two);
  const auto events = store.list_audit({.company_id = d.company_id, .limit = 1});
  ASSERT_FALSE(events.empty());
  EXPECT_NE(events.front().after.find("mx1.acme.example:25, [::1]:2600"), std::string::npos)
      << events.front().after;
  store.set_domain_destination(d.id, core::Endpoint{"127.0.0.1", 2526}, actor);
  EXPECT_EQ(store.find_domain("acme.example")->destination.str(), "127.0.0.1:2526");
  EXPECT_THROW(store.set_domain_destination(d.id, core::Destination{}, actor), Failure);
}

TEST_P(StoreTest, RemovingADomainWithAddressesNeedsForce) {
  add_acme();
  auto alice = add_user("alice@acme.example");
  store.add_alias(alice.id, addr("alice@acme.test"), actor);
  auto bob = add_user("bob@acme.test");
  store.add_invalid(addr("ghost@acme.test"), "test", actor);
  const auto test_domain = store.find_domain("acme.test").value();
  expect_failure([&] { store.remove_domain(test_domain.id, false, actor); }, ErrorCode::conflict,
                 "still has 1 users, 1 aliases, 1 invalid");
  store.remove_domain(test_domain.id, true, actor);
  EXPECT_FALSE(store.find_domain("acme.test"));
  EXPECT_FALSE(store.find_user(addr("bob@acme.test")));
  EXPECT_FALSE(store.find_alias(addr("alice@acme.test")));
  EXPECT_FALSE(store.find_invalid(addr("ghost@acme.test")));
  EXPECT_TRUE(store.find_user(addr("alice@acme.example")));  // other domain untouched
  (void)bob;
}

// A domain larger than a page (5000) is counted for the refusal and emptied a page at a time:
// every user, alias, invalid and discovered address in it goes, each with its audit event.
TEST_P(StoreTest, RemovingALargeDomainRemovesEverythingInItPageByPage) {
  auto acme = add_acme();
  core::Snapshot snapshot;
  for (int i = 0; i < 5003; ++i) {
    core::DirectoryEntry e;
    e.address = addr(("u" + std::to_string(i) + "@acme.test").c_str());
    snapshot.entries.push_back(e);
  }
  testing::apply_plan(store, testing::plan_for(store, acme.id, snapshot, {}), false);
  auto alice = add_user("alice@acme.example");
  store.add_alias(alice.id, addr("alice@acme.test"), actor);
  store.add_invalid(addr("ghost@acme.test"), "test", actor);
  core::DiscoveredAddress d;
  d.address = addr("new.hire@acme.test");
  d.first_seen = clock.now();
  store.save_discovered(d, actor);
  const auto domain = store.find_domain("acme.test").value();
  expect_failure([&] { store.remove_domain(domain.id, false, actor); }, ErrorCode::conflict,
                 "still has 5003 users, 1 aliases, 1 invalid and 1 discovered addresses");
  EXPECT_EQ(store.count_users(acme.id), 5004u);
  const auto events = audit_count();
  store.remove_domain(domain.id, true, actor);
  EXPECT_EQ(store.count_users(acme.id), 1u);  // alice@acme.example, in the other domain
  EXPECT_TRUE(store.find_user(addr("alice@acme.example")));
  EXPECT_FALSE(store.find_alias(addr("alice@acme.test")));
  EXPECT_FALSE(store.find_invalid(addr("ghost@acme.test")));
  EXPECT_FALSE(store.find_discovered(addr("new.hire@acme.test")));
  EXPECT_EQ(audit_count(), events + 5003 + 1 + 1 + 1 + 1);  // and domain.remove
}

// ---- users ----------------------------------------------------------------------------------

TEST_P(StoreTest, AddsAUserToTheCompanyOfItsDomain) {
  auto acme = add_acme();
  auto u = add_user("Alice@ACME.example", core::Role::silent_user);
  EXPECT_EQ(u.company_id, acme.id);
  EXPECT_EQ(u.address.str(), "Alice@acme.example");
  EXPECT_EQ(u.role, core::Role::silent_user);
  EXPECT_EQ(u.source, core::Source::manual);
  EXPECT_EQ(u.created_at, clock.now());
  auto found = store.find_user(addr("alice@acme.EXAMPLE"));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, u.id);
  EXPECT_EQ(found->address.local(), "Alice");  // stored as given
  EXPECT_EQ(store.count_users(acme.id), 1u);
  auto events = store.list_audit({acme.id, 1});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].action, "user.add");
  EXPECT_EQ(events[0].actor, "test");
  EXPECT_TRUE(events[0].before.empty());
  EXPECT_NE(events[0].after.find("\"silent_user\""), std::string::npos);
}

// A user.add event stores the user without what the event itself says (address, company,
// times), and reads back whole, as the API shows a user; so do events written before.
TEST_P(StoreTest, AUserAddEventStoresLessAndReadsBackTheWholeUser) {
  auto acme = add_acme();
  auto u = add_user("Alice@acme.example", core::Role::end_user);
  const auto raw_db = database.connect();
  auto stored_after = [&](const std::string& object) {
    auto s = raw_db->prepare("SELECT after FROM audit_events WHERE object = ?");
    s.bind(1, object);
    return s.step() ? s.text(0) : std::string();
  };
  const auto raw = nlohmann::json::parse(stored_after("Alice@acme.example"));
  for (const char* implied : {"address", "company_id", "created_at", "updated_at"}) {
    EXPECT_FALSE(raw.contains(implied)) << implied;
  }
  EXPECT_EQ(raw.at("id"), u.id);
  EXPECT_EQ(raw.at("role"), "end_user");
  const auto events = store.list_audit({acme.id, 1});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].after, nlohmann::json(u).dump());

  // An event as written before this change (the whole user) reads back as it was.
  clock.advance(std::chrono::seconds(90));
  auto bob = add_user("bob@acme.example");
  raw_db->prepare("UPDATE audit_events SET after = ? WHERE object = 'bob@acme.example'")
      .bind(1, nlohmann::json(bob).dump())
      .run();
  EXPECT_EQ(store.list_audit({acme.id, 1})[0].after, nlohmann::json(bob).dump());
}

// After every kind of write, the address claims are exactly the addresses of users, aliases and
// invalid addresses.
TEST_P(StoreTest, ClaimsAreExactlyTheAddressesAfterEveryKindOfWrite) {
  add_acme();
  const auto raw = database.connect();
  auto& db = *raw;
  auto ann = add_user("ann@acme.example");
  auto bob = add_user("bob@acme.example");
  EXPECT_EQ(testing::claim_mismatches(db), 0) << "users added";
  auto alias = store.add_alias(ann.id, addr("a.lee@acme.example"), actor);
  store.add_alias(ann.id, addr("ann@acme.test"), actor);
  EXPECT_EQ(testing::claim_mismatches(db), 0) << "aliases added";
  store.add_invalid(addr("gone@acme.example"), "left", actor);
  store.add_invalid(addr("old@acme.test"), "left", actor);
  EXPECT_EQ(testing::claim_mismatches(db), 0) << "invalid added";
  UserChange move;
  move.address = addr("ann.lee@acme.example");
  store.update_user(ann.id, move, actor);
  UserChange spelling;
  spelling.address = addr("Bob@acme.example");
  store.update_user(bob.id, spelling, actor);
  EXPECT_EQ(testing::claim_mismatches(db), 0) << "addresses changed";
  add_user("gone@acme.example");  // takes the invalid address over
  EXPECT_FALSE(store.find_invalid(addr("gone@acme.example")));
  EXPECT_EQ(testing::claim_mismatches(db), 0) << "invalid taken over";
  expect_failure([&] { store.add_alias(bob.id, addr("ann.lee@acme.example"), actor); },
                 ErrorCode::conflict, "");
  EXPECT_EQ(testing::claim_mismatches(db), 0) << "refused alias";
  store.remove_alias(alias.id, actor);
  EXPECT_EQ(testing::claim_mismatches(db), 0) << "alias removed";
  store.remove_user(ann.id, actor);  // with its other alias
  EXPECT_EQ(testing::claim_mismatches(db), 0) << "user removed";
  store.remove_invalid(store.find_invalid(addr("old@acme.test"))->id, actor);
  EXPECT_EQ(testing::claim_mismatches(db), 0) << "invalid removed";
  store.add_alias(bob.id, addr("bob@acme.test"), actor);
  add_user("carol@acme.test");
  store.remove_domain(store.find_domain("acme.test")->id, true, actor);
  EXPECT_EQ(testing::claim_mismatches(db), 0) << "domain removed";
  // Not vacuous: bob and gone@ are left, and a claim written by hand is seen.
  EXPECT_EQ(store.count_users(bob.company_id), 2u);
  auto exec = [&](const char* sql) { EXPECT_NO_THROW(db.exec(sql)) << sql; };
  exec("INSERT INTO address_claims VALUES ('stray@acme.example', 'user', 1)");
  EXPECT_GT(testing::claim_mismatches(db), 0) << "stray claim";
  exec("DELETE FROM address_claims WHERE address_key = 'stray@acme.example'");
  EXPECT_EQ(testing::claim_mismatches(db), 0);
  exec("UPDATE address_claims SET owner = owner + 1000 WHERE kind = 'user'");
  EXPECT_GT(testing::claim_mismatches(db), 0) << "claim naming the wrong owner";
}

TEST_P(StoreTest, RefusesUsersOutsideRegisteredDomainsAndDuplicates) {
  add_acme();
  add_user("alice@acme.example");
  const auto before = audit_count();
  expect_failure([&] { add_user("ALICE@acme.example"); }, ErrorCode::conflict, "is already a user");
  expect_failure([&] { add_user("bob@unregistered.example"); }, ErrorCode::invalid_argument,
                 "domain 'unregistered.example' of bob@unregistered.example is not registered");
  EXPECT_EQ(audit_count(), before);
}

TEST_P(StoreTest, ListsUsersWithFilters) {
  auto acme = add_acme();
  auto globex = add_globex();
  add_user("alice@acme.example");
  add_user("zed@acme.example", core::Role::silent_user);
  add_user("room1@acme.test", core::Role::functional);
  add_user("hank@globex.example");
  EXPECT_EQ(store.list_users({}).size(), 4u);
  auto acme_users = store.list_users({.company_id = acme.id});
  ASSERT_EQ(acme_users.size(), 3u);
  EXPECT_EQ(acme_users[0].address.str(), "alice@acme.example");
  EXPECT_EQ(store.list_users({.company_id = globex.id}).size(), 1u);
  EXPECT_EQ(store.list_users({.role = core::Role::functional}).size(), 1u);
  EXPECT_EQ(store.list_users({.search = "ZED"}).size(), 1u);
  EXPECT_EQ(store.list_users({.search = "first"}).size(), 4u);  // matches first name
  // A user is found by one of its aliases too, in its company only, and counted so.
  store.add_alias(store.find_user(addr("zed@acme.example"))->id, addr("Z.Alias@acme.test"), actor);
  store.add_alias(store.find_user(addr("hank@globex.example"))->id, addr("h.alias@globex.example"),
                  actor);
  const auto by_alias = store.list_users({.company_id = acme.id, .search = "z.ALIAS"});
  ASSERT_EQ(by_alias.size(), 1u);
  EXPECT_EQ(by_alias[0].address.str(), "zed@acme.example");
  EXPECT_EQ(store.count_matching_users({.company_id = acme.id, .search = ".alias@"}), 1u);
  EXPECT_EQ(store.list_users({.search = ".alias@"}).size(), 2u);  // every company's
  EXPECT_EQ(
      store.list_users({.company_id = acme.id, .role = core::Role::end_user, .search = "z.alias"})
          .size(),
      0u);  // and the other filters still hold
  EXPECT_EQ(store.list_users({.source = core::Source::ldap}).size(), 0u);
  auto page = store.list_users({.company_id = acme.id, .limit = 2, .offset = 1});
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].address.str(), "room1@acme.test");
}

// Alias detection asks for the users with one local part, in any domain of a company.
TEST_P(StoreTest, ListsUsersByLocalPartInAnyDomain) {
  auto acme = add_acme();
  add_globex();
  for (const char* a :
       {"Ann@acme.example", "ann@acme.test", "anna@acme.example", "ann-x@acme.example",
        "ann.lee@acme.test", "an@acme.example", "ann@globex.example", "bob@acme.example"}) {
    add_user(a);
  }
  std::vector<std::string> found;
  for (const auto& u : store.list_users({.company_id = acme.id, .local_part = "ANN"})) {
    found.push_back(u.address.str());
  }
  EXPECT_EQ(found, (std::vector<std::string>{"Ann@acme.example", "ann@acme.test"}));
  EXPECT_EQ(store.list_users({.local_part = "ann"}).size(), 3u);  // every company's
  EXPECT_EQ(store.list_users({.company_id = acme.id, .local_part = "nobody"}).size(), 0u);
  EXPECT_EQ(store.count_matching_users({.company_id = acme.id, .local_part = "an"}), 1u);
}

// When users last had mail: the latest time wins, a removed user is passed over and its
// record goes with it, and listings find the users with no mail since a day (those with none
// at all by their creation). Nothing of it is audited.
TEST_P(StoreTest, RecordsWhenUsersLastHadMailAndFindsThoseWithoutAny) {
  auto acme = add_acme();
  auto alice = add_user("alice@acme.example");
  auto bob = add_user("bob@acme.example");
  auto gone = add_user("gone@acme.example");
  clock.advance(days{10});
  auto carol = add_user("carol@acme.example");  // created on day 10, no mail since
  const auto events = audit_count();
  const auto day = [](int n) { return core::TimePoint{sys_days{2026y / November / 2} + days{n}}; };
  store.record_mail({alice.id, bob.id, alice.id}, day(5));  // the same user twice in a batch
  store.record_mail({alice.id}, day(20));
  store.record_mail({alice.id}, day(12));  // an earlier time, written late: kept out
  store.remove_user(gone.id, actor);
  store.record_mail({gone.id, bob.id}, day(6));  // a user removed meanwhile: passed over
  EXPECT_EQ(audit_count(), events + 1) << "only the removal is audited";
  auto last = store.last_mail({alice.id, bob.id, carol.id, gone.id});
  EXPECT_EQ(last.size(), 2u);
  EXPECT_EQ(last.at(alice.id), day(20));
  EXPECT_EQ(last.at(bob.id), day(6));
  const auto quiet = [&](int since) {
    std::vector<std::string> out;
    for (const auto& u : store.list_users({.company_id = acme.id, .no_mail_since = day(since)}))
      out.push_back(u.address.str());
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(quiet(7), V{"bob@acme.example"});
  EXPECT_EQ(quiet(11), (V{"bob@acme.example", "carol@acme.example"}));
  EXPECT_EQ(quiet(21), (V{"alice@acme.example", "bob@acme.example", "carol@acme.example"}));
  EXPECT_EQ(quiet(1), V{});
  EXPECT_EQ(store.count_matching_users({.company_id = acme.id, .no_mail_since = day(11)}), 2u);
  // A removed user's record goes with it: added again, the address has had no mail.
  store.remove_user(bob.id, actor);
  auto again = add_user("bob@acme.example");
  EXPECT_TRUE(store.last_mail({bob.id, again.id}).empty());
}

TEST_P(StoreTest, UpdatesUserFieldsAndAddress) {
  add_acme();
  auto u = add_user("alice@acme.example");
  clock.advance(hours{1});
  UserChange change;
  change.first_name = "Alicia";
  change.role = core::Role::silent_user;
  change.address = addr("alicia@acme.test");
  auto after = store.update_user(u.id, change, actor);
  EXPECT_EQ(after.first_name, "Alicia");
  EXPECT_EQ(after.surname, "Last");
  EXPECT_EQ(after.role, core::Role::silent_user);
  EXPECT_EQ(after.address.str(), "alicia@acme.test");
  EXPECT_EQ(after.updated_at, clock.now());
  EXPECT_EQ(after.created_at, u.created_at);
  EXPECT_FALSE(store.find_user(addr("alice@acme.example")));
  // The old address is free, the new one claimed.
  EXPECT_NO_THROW(add_user("alice@acme.example"));
  expect_failure([&] { add_user("alicia@acme.test"); }, ErrorCode::conflict, "already a user");
}

TEST_P(StoreTest, RefusesAddressChangesThatBreakTheRules) {
  add_acme();
  add_globex();
  auto u = add_user("alice@acme.example");
  auto bob = add_user("bob@acme.example");
  UserChange to_other_company;
  to_other_company.address = addr("alice@globex.example");
  expect_failure([&] { store.update_user(u.id, to_other_company, actor); },
                 ErrorCode::invalid_argument, "belongs to company 'globex', not 'acme'");
  UserChange to_taken;
  to_taken.address = addr("BOB@acme.example");
  expect_failure([&] { store.update_user(u.id, to_taken, actor); }, ErrorCode::conflict,
                 "already a user");
  EXPECT_EQ(store.find_user(addr("alice@acme.example"))->id, u.id);
  (void)bob;
}

TEST_P(StoreTest, ChangingOnlyTheSpellingOfTheLocalPart) {
  add_acme();
  auto u = add_user("alice@acme.example");
  UserChange change;
  change.address = addr("Alice@acme.example");
  auto after = store.update_user(u.id, change, actor);
  EXPECT_EQ(after.address.str(), "Alice@acme.example");
}

TEST_P(StoreTest, RemovingAUserRemovesItsAliases) {
  add_acme();
  auto u = add_user("alice@acme.example");
  store.add_alias(u.id, addr("a.liddell@acme.example"), actor);
  store.add_alias(u.id, addr("alice@acme.test"), actor);
  store.remove_user(u.id, actor);
  EXPECT_FALSE(store.user_by_id(u.id));
  EXPECT_TRUE(store.list_aliases(std::nullopt, std::nullopt).empty());
  EXPECT_EQ(store.resolve(addr("alice@acme.test")).kind, AddressOwner::Kind::none);
  expect_failure([&] { store.remove_user(u.id, actor); }, ErrorCode::not_found, "no user");
  auto events = store.list_audit({std::nullopt, 3});
  EXPECT_EQ(events[0].action, "user.remove");
  EXPECT_EQ(events[1].action, "alias.remove");
  EXPECT_EQ(events[2].action, "alias.remove");
}

// ---- aliases --------------------------------------------------------------------------------

TEST_P(StoreTest, AddsAliasesWithinTheUsersCompany) {
  auto acme = add_acme();
  add_globex();
  auto u = add_user("alice@acme.example");
  auto a = store.add_alias(u.id, addr("Alice@ACME.test"), actor);
  EXPECT_EQ(a.user_id, u.id);
  EXPECT_EQ(a.company_id, acme.id);
  EXPECT_EQ(store.find_alias(addr("alice@acme.test"))->id, a.id);
  EXPECT_EQ(store.list_aliases(acme.id, std::nullopt).size(), 1u);
  EXPECT_EQ(store.list_aliases(std::nullopt, u.id).size(), 1u);
  auto owner = store.resolve(addr("ALICE@acme.test"));
  EXPECT_EQ(owner.kind, AddressOwner::Kind::alias);
  EXPECT_EQ(owner.user_id, u.id);

  expect_failure([&] { store.add_alias(u.id, addr("alice@globex.example"), actor); },
                 ErrorCode::invalid_argument, "belongs to company 'globex'");
  expect_failure([&] { store.add_alias(u.id, addr("alice@acme.example"), actor); },
                 ErrorCode::conflict, "already a user");
  expect_failure([&] { store.add_alias(u.id, addr("alice@acme.test"), actor); },
                 ErrorCode::conflict, "already an alias of alice@acme.example");
  expect_failure([&] { store.add_alias(999, addr("x@acme.test"), actor); }, ErrorCode::not_found,
                 "no user");
}

TEST_P(StoreTest, RemovesAnAlias) {
  add_acme();
  auto u = add_user("alice@acme.example");
  auto a = store.add_alias(u.id, addr("al@acme.example"), actor);
  store.remove_alias(a.id, actor);
  EXPECT_FALSE(store.find_alias(addr("al@acme.example")));
  expect_failure([&] { store.remove_alias(a.id, actor); }, ErrorCode::not_found, "no alias");
  EXPECT_NO_THROW(add_user("al@acme.example"));
}

// ---- invalid and discovered -----------------------------------------------------------------

TEST_P(StoreTest, InvalidAddressesAreExclusiveWithAccounts) {
  auto acme = add_acme();
  add_user("alice@acme.example");
  auto inv = store.add_invalid(addr("Ghost@acme.example"), "expired", actor);
  EXPECT_EQ(inv.company_id, acme.id);
  EXPECT_EQ(inv.reason, "expired");
  EXPECT_EQ(store.resolve(addr("ghost@acme.example")).kind, AddressOwner::Kind::invalid);
  EXPECT_EQ(store.list_invalid(acme.id).size(), 1u);
  expect_failure([&] { store.add_invalid(addr("alice@acme.example"), "", actor); },
                 ErrorCode::conflict, "is a user; remove it");
  expect_failure([&] { store.add_invalid(addr("ghost@acme.example"), "", actor); },
                 ErrorCode::conflict, "already marked invalid");
  expect_failure([&] { store.add_invalid(addr("x@nowhere.example"), "", actor); },
                 ErrorCode::invalid_argument, "not registered");
}

TEST_P(StoreTest, CreatingAUserForAnInvalidAddressFixesIt) {
  add_acme();
  store.add_invalid(addr("ghost@acme.example"), "expired", actor);
  auto u = add_user("ghost@acme.example");
  EXPECT_FALSE(store.find_invalid(addr("ghost@acme.example")));
  auto owner = store.resolve(addr("ghost@acme.example"));
  EXPECT_EQ(owner.kind, AddressOwner::Kind::user);
  EXPECT_EQ(owner.user_id, u.id);
  auto events = store.list_audit({std::nullopt, 2});
  EXPECT_EQ(events[0].action, "user.add");
  EXPECT_EQ(events[1].action, "invalid.remove");
}

TEST_P(StoreTest, RemovesAnInvalidAddress) {
  auto acme = add_acme();
  auto inv = store.add_invalid(addr("ghost@acme.example"), "", actor);
  store.remove_invalid(inv.id, actor);
  EXPECT_TRUE(store.list_invalid(acme.id).empty());
  expect_failure([&] { store.remove_invalid(inv.id, actor); }, ErrorCode::not_found,
                 "no invalid address");
}

TEST_P(StoreTest, SavesDiscoveredAddressesWithTheirHistory) {
  auto acme = add_acme();
  core::DiscoveredAddress d;
  d.address = addr("new.hire@acme.example");
  d.first_seen = clock.now();
  d.clean_inbound = {clock.now(), clock.now() + hours{2}};
  auto saved = store.save_discovered(d, actor);
  EXPECT_GT(saved.id, 0);
  EXPECT_EQ(saved.company_id, acme.id);
  EXPECT_EQ(saved.clean_inbound.size(), 2u);
  EXPECT_FALSE(saved.discovered_at);
  EXPECT_EQ(store.resolve(addr("New.Hire@acme.example")).kind, AddressOwner::Kind::discovered);

  auto alice = add_user("alice@acme.example");
  saved.clean_inbound.push_back(clock.now() + days{1});
  saved.discovered_at = clock.now() + days{1};
  saved.outbound_messages = 2;
  saved.notifications_sent = 1;
  saved.suggested_alias_of = alice.id;
  store.save_discovered(saved, actor);
  auto again = store.find_discovered(addr("new.hire@acme.example")).value();
  EXPECT_EQ(again.clean_inbound.size(), 3u);
  EXPECT_EQ(again.clean_inbound.back(), clock.now() + days{1});
  EXPECT_EQ(again.discovered_at, clock.now() + days{1});
  EXPECT_EQ(again.outbound_messages, 2);
  EXPECT_EQ(again.notifications_sent, 1);
  EXPECT_EQ(again.suggested_alias_of, alice.id);
  EXPECT_EQ(store.list_audit({acme.id, 1})[0].action, "discovered.add");
  EXPECT_EQ(store.list_discovered(acme.id).size(), 1u);

  // Removing the suggested user clears the suggestion, not the entry.
  store.remove_user(alice.id, actor);
  EXPECT_FALSE(store.find_discovered(addr("new.hire@acme.example"))->suggested_alias_of);

  d.address = addr("alice2@acme.example");
  add_user("alice2@acme.example");
  expect_failure([&] { store.save_discovered(d, actor); }, ErrorCode::conflict, "already known");
}

TEST_P(StoreTest, HandlingADiscoveredAddressRemovesItFromTheList) {
  auto acme = add_acme();
  for (const char* a : {"one@acme.example", "two@acme.example", "three@acme.example"}) {
    core::DiscoveredAddress d;
    d.address = addr(a);
    d.first_seen = clock.now();
    store.save_discovered(d, actor);
  }
  add_user("one@acme.example");
  store.add_invalid(addr("two@acme.example"), "by admin", actor);
  auto bob = add_user("bob@acme.example");
  store.add_alias(bob.id, addr("three@acme.example"), actor);
  EXPECT_TRUE(store.list_discovered(acme.id).empty());
}

TEST_P(StoreTest, RemovesADiscoveredAddress) {
  auto acme = add_acme();
  core::DiscoveredAddress d;
  d.address = addr("x@acme.example");
  d.first_seen = clock.now();
  auto saved = store.save_discovered(d, actor);
  store.remove_discovered(saved.id, actor);
  EXPECT_TRUE(store.list_discovered(acme.id).empty());
  expect_failure([&] { store.remove_discovered(saved.id, actor); }, ErrorCode::not_found,
                 "no discovered");
}

TEST_P(StoreTest, ResolvesUnknownAddressesToNone) {
  add_acme();
  EXPECT_EQ(store.resolve(addr("nobody@acme.example")).kind, AddressOwner::Kind::none);
}

// ---- the database enforces one owner per address --------------------------------------------

TEST_P(StoreTest, DatabaseRefusesASecondClaimEvenBehindTheCodesBack) {
  add_acme();
  add_user("alice@acme.example");
  const auto db = database.connect();
  // The database's own refusal: a constraint, not some other error.
  auto refused = [&](const char* sql) {
    try {
      db->exec(sql);
      return false;
    } catch (const DbError& e) {
      return e.is_constraint();
    }
  };
  EXPECT_TRUE(refused(
      "INSERT INTO invalid_addresses(company_id, domain_id, address, address_key, created_at) "
      "SELECT company_id, domain_id, 'ALICE@acme.example', 'alice@acme.example', 0 FROM users"));
  // Users and aliases have no UNIQUE index on their address of their own: the claim refuses.
  for (const char* sql :
       {"INSERT INTO users(company_id, domain_id, address, address_key, role, source, "
        "created_at, updated_at) SELECT company_id, domain_id, address, address_key, role, "
        "source, 0, 0 FROM users",
        "INSERT INTO aliases(company_id, domain_id, user_id, address, address_key, created_at) "
        "SELECT company_id, domain_id, id, address, address_key, 0 FROM users"}) {
    EXPECT_TRUE(refused(sql)) << sql;
  }
  EXPECT_FALSE(store.find_invalid(addr("alice@acme.example")));
  EXPECT_EQ(store.count_users(store.find_user(addr("alice@acme.example"))->company_id), 1u);
  EXPECT_TRUE(store.list_aliases(std::nullopt, std::nullopt).empty());
}

// ---- settings and audit ---------------------------------------------------------------------

TEST_P(StoreTest, DiscoverySettingsDefaultThenPersist) {
  auto acme = add_acme();
  EXPECT_EQ(store.discovery_settings(acme.id), core::DiscoverySettings{});
  core::DiscoverySettings s;
  s.enabled = true;
  s.inbound_threshold = 5;
  s.notification_weeks = 4;
  s.default_role = core::Role::end_user;
  s.report_include_admin = false;
  store.set_discovery_settings(acme.id, s, actor);
  EXPECT_EQ(store.discovery_settings(acme.id), s);
  auto events = store.list_audit({acme.id, 1});
  EXPECT_EQ(events[0].action, "discovery.settings");

  s.notification_weeks = 60;
  expect_failure([&] { store.set_discovery_settings(acme.id, s, actor); },
                 ErrorCode::invalid_argument, "notification_weeks");
  EXPECT_EQ(store.discovery_settings(acme.id).notification_weeks, 4);
  expect_failure([&] { store.discovery_settings(999); }, ErrorCode::not_found, "no company");
}

TEST_P(StoreTest, AuditListsNewestFirstPerCompany) {
  auto acme = add_acme();
  auto globex = add_globex();
  add_user("alice@acme.example");
  clock.advance(minutes{5});
  add_user("hank@globex.example");
  auto all = store.list_audit({std::nullopt, 0});
  ASSERT_GE(all.size(), 7u);
  EXPECT_EQ(all[0].object, "hank@globex.example");
  EXPECT_EQ(all[0].at, clock.now());
  for (const auto& e : store.list_audit({acme.id, 0})) EXPECT_EQ(e.company_id, acme.id);
  EXPECT_EQ(store.list_audit({globex.id, 0}).size(), 3u);  // company, domain, user
  EXPECT_EQ(store.list_audit({std::nullopt, 2}).size(), 2u);
}

// "What happened to bob?": a company's events about one address (any case), or of one action.
TEST_P(StoreTest, AuditFindsTheEventsAboutAnAddressOrOfAnAction) {
  const auto acme = add_acme();
  const auto globex = add_globex();
  const auto bob = add_user("bob@acme.example");
  add_user("carol@acme.example");
  store.update_user(bob.id, {.first_name = "Robert"}, actor);
  store.remove_user(bob.id, actor);
  add_user("bob@globex.example");
  AuditFilter about_bob{.company_id = acme.id, .limit = 0, .object = "BOB@acme.example"};
  const auto events = store.list_audit(about_bob);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].action, "user.remove");
  EXPECT_EQ(events[1].action, "user.update");
  EXPECT_EQ(events[2].action, "user.add");
  EXPECT_EQ(store.count_audit(about_bob), 3u);
  AuditFilter removals{.company_id = acme.id, .limit = 0, .action = "user.remove"};
  ASSERT_EQ(store.list_audit(removals).size(), 1u);
  EXPECT_EQ(store.count_audit(removals), 1u);
  about_bob.action = "user.add";
  about_bob.company_id = std::nullopt;
  EXPECT_EQ(store.count_audit(about_bob), 1u) << "acme's; globex's bob is another address";
  EXPECT_EQ(store.count_audit({.company_id = globex.id, .object = "bob@globex.example"}), 1u);
}

TEST_P(StoreTest, ListsDiscoveredAndInvalidAWindowAtATime) {
  const auto acme = add_acme();
  // dN has N clean deliveries, a minute apart.
  for (const int n : {3, 1, 2}) {
    core::DiscoveredAddress d;
    d.address = addr(("d" + std::to_string(n) + "@acme.example").c_str());
    d.first_seen = clock.now();
    for (int i = 0; i < n; ++i) d.clean_inbound.push_back(clock.now() + minutes{i});
    store.save_discovered(d, actor);
  }
  for (const char* a : {"i2@acme.example", "i1@acme.example", "i3@acme.example"}) {
    store.add_invalid(addr(a), "test", actor);
  }
  EXPECT_EQ(store.count_discovered(acme.id), 3u);
  EXPECT_EQ(store.count_invalid(acme.id), 3u);
  const auto d = store.list_discovered(acme.id, {2, 1});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].address.str(), "d2@acme.example");
  EXPECT_EQ(d[1].address.str(), "d3@acme.example");
  EXPECT_EQ(d[0].clean_inbound.size(), 2u);
  EXPECT_EQ(d[1].clean_inbound.size(), 3u);
  EXPECT_EQ(store.count_discovered(acme.id, "D2@"), 1u);  // by a part of the address, any case
  EXPECT_EQ(store.list_discovered(acme.id, {}, "D3").at(0).clean_inbound.size(), 3u);
  EXPECT_EQ(store.list_discovered(acme.id, {1, 1}, "@acme").at(0).address.str(), "d2@acme.example");
  EXPECT_EQ(store.count_discovered(acme.id, "@globex"), 0u);
  const auto all = store.list_discovered(acme.id);
  ASSERT_EQ(all.size(), 3u);
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i].clean_inbound.size(), i + 1) << all[i].address.str();
    EXPECT_EQ(all[i].clean_inbound.back(), clock.now() + minutes{i}) << "in order";
  }
  const auto i = store.list_invalid(acme.id, {1, 2});
  ASSERT_EQ(i.size(), 1u);
  EXPECT_EQ(i[0].address.str(), "i3@acme.example");
  EXPECT_TRUE(store.list_invalid(acme.id, {10, 3}).empty());
  EXPECT_EQ(store.list_invalid(acme.id).size(), 3u);
  // Found by a part of the address or of the reason, in any case.
  store.add_invalid(addr("Old.Boss@acme.example"), "Expired: no one handled it", actor);
  EXPECT_EQ(store.count_invalid(acme.id, "OLD.B"), 1u);
  EXPECT_EQ(store.list_invalid(acme.id, {}, "expired").at(0).address.str(),
            "Old.Boss@acme.example");
  EXPECT_EQ(store.count_invalid(acme.id, "test"), 3u);
  EXPECT_EQ(store.list_invalid(acme.id, {1, 1}, "test").at(0).address.str(), "i2@acme.example");
  EXPECT_TRUE(store.list_invalid(acme.id, {}, "nowhere").empty());
  EXPECT_EQ(store.count_invalid(acme.id, ""), 4u);
}

TEST_P(StoreTest, AuditPagesAndCountsInTheStore) {
  auto acme = add_acme();
  add_globex();
  for (const char* a : {"a@acme.example", "b@acme.example", "c@acme.example"}) add_user(a);
  const auto whole = store.list_audit({acme.id, 0});
  ASSERT_GE(whole.size(), 5u);  // the company, its domains, three users
  const auto n = whole.size();
  EXPECT_EQ(store.count_audit({acme.id}), whole.size());
  EXPECT_EQ(store.count_audit({}), store.list_audit({std::nullopt, 0}).size());
  const auto page = store.list_audit({acme.id, 2, 1});
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].id, whole[1].id);
  EXPECT_EQ(page[1].id, whole[2].id);
  EXPECT_EQ(store.list_audit({acme.id, 10, n - 1}).size(), 1u);
  EXPECT_EQ(store.list_audit({acme.id, 10, n - 1})[0].id, whole.back().id);
  EXPECT_TRUE(store.list_audit({acme.id, 10, n}).empty());
  EXPECT_TRUE(store.list_audit({acme.id, 0, 1000}).empty());
}

// The audit retention: events from before the cut go, oldest first and more than one batch
// of them; the rest stay as they were; a run with nothing to remove removes nothing.
TEST_P(StoreTest, PruningTheAuditTrailRemovesOnlyWhatIsOlder) {
  const auto start = clock.now();
  auto acme = add_acme();
  core::Snapshot snapshot;  // 12,000 events on the first day (more than one batch), written
  for (int i = 0; i < 12000; ++i) {  // as a sync writes them
    core::DirectoryEntry e;
    e.address = addr(("old" + std::to_string(i) + "@acme.example").c_str());
    snapshot.entries.push_back(e);
  }
  testing::apply_plan(store, testing::plan_for(store, acme.id, snapshot, {}), false);
  const auto old_events = store.count_audit({});
  clock.advance(std::chrono::hours(24 * 30));
  const auto cut = clock.now();
  clock.advance(std::chrono::hours(1));
  add_user("new1@acme.example");
  store.remove_user(store.find_user(core::Address::parse("old1@acme.example").value())->id, actor);
  const auto kept = store.list_audit({std::nullopt, 0});
  ASSERT_EQ(kept.size(), old_events + 2);
  const std::vector<core::AuditEvent> recent(kept.begin(), kept.begin() + 2);

  EXPECT_EQ(store.prune_audit(start), 0u);  // nothing that old
  EXPECT_EQ(store.prune_audit(cut), old_events);
  const auto left = store.list_audit({std::nullopt, 0});
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].id, recent[0].id);
  EXPECT_EQ(left[1].id, recent[1].id);
  EXPECT_EQ(left[1].action, "user.add");
  EXPECT_EQ(left[0].action, "user.remove");
  EXPECT_EQ(store.prune_audit(cut), 0u);
  EXPECT_EQ(store.count_users(acme.id), 12000u);  // only the trail is pruned
}

core::MailLogEntry mail_entry(core::Id company, core::TimePoint at, std::string sender,
                              std::string recipient, std::string result, int code) {
  return {.at = at,
          .company_id = company,
          .direction = "inbound",
          .stage = code == 250 ? "data" : "rcpt",
          .queue_id = code == 250 ? "s1.1" : "",
          .client_ip = "192.0.2.7",
          .sender = std::move(sender),
          .recipient = std::move(recipient),
          .result = std::move(result),
          .code = code,
          .reply = code == 250 ? "2.0.0 Ok: delivered as s1.1 (250 queued as X)" : "5.1.1 unknown",
          .server = code == 250 ? "127.0.0.1:2526" : "",
          .size = code == 250 ? 1234u : 0u};
}

// for_each_user_page: every user the filter lists, once, in the listing's order, a page at a
// time from where the last page ended (keyset), within one company or across companies, up to
// the filter's limit; aliases_of gives the aliases of the users asked for only.
TEST_P(StoreTest, UsersArePagedInOrderWithoutGapsOrRepeats) {
  const auto acme = add_acme();
  const auto globex = add_globex();
  std::vector<std::string> acme_users;
  for (const char* a :
       {"Zed@acme.example", "amy@acme.test", "bob@acme.example", "carl@acme.example",
        "dora@acme.example", "eve@acme.example", "fay@acme.example"}) {
    acme_users.push_back(add_user(a).address.str());
  }
  add_user("hank@globex.example");
  add_user("abe@globex.example");
  const auto alias = store.add_alias(store.find_user(addr("bob@acme.example"))->id,
                                     addr("robert@acme.example"), actor);
  store.add_alias(store.find_user(addr("hank@globex.example"))->id, addr("h@globex.example"),
                  actor);

  const auto paged = [&](UserFilter f, std::size_t size) {
    std::vector<std::string> out;
    std::vector<std::size_t> pages;
    store::for_each_user_page(store, f, size, [&](const std::vector<core::User>& page) {
      pages.push_back(page.size());
      for (const auto& u : page) out.push_back(u.address.str());
    });
    return std::pair(out, pages);
  };
  std::vector<std::string> whole;
  for (const auto& u : store.list_users({.company_id = acme.id})) whole.push_back(u.address.str());
  ASSERT_EQ(whole.size(), 7u);
  const auto [one, pages] = paged({.company_id = acme.id}, 3);
  EXPECT_EQ(one, whole);
  EXPECT_EQ(pages, (std::vector<std::size_t>{3, 3, 1}));
  EXPECT_EQ(paged({.company_id = acme.id}, 7).second, (std::vector<std::size_t>{7}));
  const auto [limited, limited_pages] = paged({.company_id = acme.id, .limit = 5}, 2);
  EXPECT_EQ(limited, std::vector<std::string>(whole.begin(), whole.begin() + 5));
  EXPECT_EQ(limited_pages, (std::vector<std::size_t>{2, 2, 1}));
  std::vector<std::string> everyone;
  for (const auto& u : store.list_users({})) everyone.push_back(u.address.str());
  ASSERT_EQ(everyone.size(), 9u);
  EXPECT_EQ(paged({}, 2).first, everyone);  // across the companies' boundary
  EXPECT_EQ(paged({.company_id = globex.id, .search = "hank"}, 1).first,
            std::vector<std::string>{"hank@globex.example"});

  const auto bob = store.find_user(addr("bob@acme.example"))->id;
  const auto amy = store.find_user(addr("amy@acme.test"))->id;
  const auto aliases = store.aliases_of({bob, amy});
  ASSERT_EQ(aliases.size(), 1u);
  EXPECT_EQ(aliases[0].id, alias.id);
  EXPECT_EQ(aliases[0].user_id, bob);
  EXPECT_TRUE(store.aliases_of({}).empty());
}

// The mail log: a batch goes in as given, in order; a listing is one company's, newest first,
// found by a part of the sender or recipient in any case, by result, direction and time, paged;
// an entry of a company that is gone is not kept, and removing a company removes its entries.
TEST_P(StoreTest, MailLogKeepsEachCompanysEntriesAndFindsThem) {
  const auto acme = add_acme();
  const auto globex = add_globex();
  const auto t0 = clock.now();
  const auto later = t0 + std::chrono::hours(2);
  auto outbound = mail_entry(acme.id, later, "Alice@Acme.example", "friend@elsewhere.example",
                             "delivered", 250);
  outbound.direction = "outbound";
  store.add_mail_log({
      mail_entry(acme.id, t0, "sender@example.org", "bob@acme.example", "delivered", 250),
      mail_entry(acme.id, t0, "sender@example.org", "nobody@acme.example", "rejected", 550),
      mail_entry(globex.id, t0, "sender@example.org", "bob@globex.example", "rejected", 550),
      mail_entry(acme.id + globex.id + 100, t0, "x@example.org", "y@nowhere.example", "rejected",
                 550),  // no such company: not kept
      outbound,
  });
  store.add_mail_log({});

  store::MailLogFilter all{.company_id = acme.id};
  const auto entries = store.list_mail_log(all);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(store.count_mail_log(all), 3u);
  EXPECT_EQ(entries[0].recipient, "friend@elsewhere.example");  // newest first
  EXPECT_EQ(entries[2].recipient, "bob@acme.example");
  const auto& delivered = entries[2];
  EXPECT_GT(delivered.id, 0);
  EXPECT_EQ(delivered.at, t0);
  EXPECT_EQ(delivered.company_id, acme.id);
  EXPECT_EQ(delivered.direction, "inbound");
  EXPECT_EQ(delivered.stage, "data");
  EXPECT_EQ(delivered.queue_id, "s1.1");
  EXPECT_EQ(delivered.client_ip, "192.0.2.7");
  EXPECT_EQ(delivered.sender, "sender@example.org");
  EXPECT_EQ(delivered.result, "delivered");
  EXPECT_EQ(delivered.code, 250);
  EXPECT_EQ(delivered.reply, "2.0.0 Ok: delivered as s1.1 (250 queued as X)");
  EXPECT_EQ(delivered.server, "127.0.0.1:2526");
  EXPECT_EQ(delivered.size, 1234u);

  auto only = [&](auto change) {
    auto f = all;
    change(f);
    std::vector<std::string> out;
    for (const auto& e : store.list_mail_log(f)) out.push_back(e.recipient);
    EXPECT_EQ(store.count_mail_log(f), out.size());
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(only([](auto& f) { f.address = "NOBODY@"; }), V{"nobody@acme.example"});
  EXPECT_EQ(only([](auto& f) { f.address = "alice@ACME"; }), V{"friend@elsewhere.example"});
  EXPECT_EQ(only([](auto& f) { f.address = "globex"; }), V{});  // another company's
  EXPECT_EQ(only([](auto& f) { f.result = "rejected"; }), V{"nobody@acme.example"});
  EXPECT_EQ(only([](auto& f) { f.direction = "outbound"; }), V{"friend@elsewhere.example"});
  EXPECT_EQ(only([&](auto& f) { f.since = t0 + std::chrono::hours(1); }),
            V{"friend@elsewhere.example"});
  EXPECT_EQ(only([&](auto& f) { f.before = later; }),
            (V{"nobody@acme.example", "bob@acme.example"}));
  EXPECT_EQ(only([](auto& f) { f.address = "%"; }), V{});  // taken as it is, not a pattern
  EXPECT_EQ(only([](auto& f) { f.id = "S1.1"; }),          // the gateway's id, or the destination's
            (V{"friend@elsewhere.example", "bob@acme.example"}));
  EXPECT_EQ(only([](auto& f) {
              f.id = "queued as x";
              f.direction = "inbound";
            }),
            V{"bob@acme.example"});
  EXPECT_EQ(only([](auto& f) { f.id = "5.1.1"; }), V{"nobody@acme.example"});
  EXPECT_EQ(only([](auto& f) { f.id = "nowhere-id"; }), V{});
  const auto page = store.list_mail_log({.company_id = acme.id, .limit = 1, .offset = 1});
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].recipient, "nobody@acme.example");
  EXPECT_EQ(store.count_mail_log({.company_id = acme.id, .limit = 1, .offset = 1}), 3u);
  EXPECT_EQ(store.list_mail_log({.company_id = globex.id}).size(), 1u);
  const auto every = store.list_mail_log({.address = "bob@"});  // every company's
  ASSERT_EQ(every.size(), 2u);
  EXPECT_EQ(every[0].company_id, globex.id);
  EXPECT_EQ(every[1].company_id, acme.id);
  EXPECT_EQ(store.count_mail_log({}), 4u);

  store.remove_company(globex.id, true, actor);
  EXPECT_EQ(store.count_mail_log({.company_id = globex.id}), 0u);
  EXPECT_EQ(store.count_mail_log(all), 3u);
}

// An entry of no company (0: relay denied) is kept, and listed with every company's only.
TEST_P(StoreTest, TheMailLogKeepsNoCompanysEntriesForOperatorsOnly) {
  const auto acme = add_acme();
  const auto t0 = clock.now();
  store.add_mail_log({mail_entry(0, t0, "s@example.org", "x@nowhere.example", "rejected", 550),
                      mail_entry(acme.id, t0, "s@example.org", "u@acme.example", "rejected", 550),
                      mail_entry(acme.id + 99, t0, "s@example.org", "v@gone.example", "rejected",
                                 550)});  // a company that is not (any more): dropped
  const auto every = store.list_mail_log({});
  ASSERT_EQ(every.size(), 2u);
  EXPECT_EQ(every[1].company_id, 0);
  EXPECT_EQ(every[1].recipient, "x@nowhere.example");
  EXPECT_EQ(store.count_mail_log({.company_id = acme.id}), 1u);
  EXPECT_EQ(store.count_mail_log({.address = "nowhere"}), 1u);
}

// The mail log's retention: entries from before the cut go, across batches of the prune; the
// rest stay.
TEST_P(StoreTest, PruningTheMailLogRemovesOnlyWhatIsOlder) {
  const auto acme = add_acme();
  const auto t0 = clock.now();
  std::vector<core::MailLogEntry> old;
  for (int i = 0; i < 10500; ++i) {
    old.push_back(mail_entry(acme.id, t0, "s@example.org",
                             "u" + std::to_string(i) + "@acme.example", "rejected", 550));
  }
  store.add_mail_log(old);
  const auto cut = t0 + std::chrono::hours(24 * 7);
  store.add_mail_log(
      {mail_entry(acme.id, cut, "s@example.org", "new@acme.example", "delivered", 250)});
  EXPECT_EQ(store.prune_mail_log(t0), 0u);
  EXPECT_EQ(store.prune_mail_log(cut), 10500u);
  const auto left = store.list_mail_log({.company_id = acme.id});
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].recipient, "new@acme.example");
  EXPECT_EQ(store.prune_mail_log(cut), 0u);
}

// Licensed users per day: each count of a day keeps the last counts and the day's highest;
// another day is a row of its own; a removed company's days stay, under its name.
TEST_P(StoreTest, LicenseUsageKeepsEachDaysLastCountAndItsPeak) {
  const auto acme = add_acme();
  const auto globex = add_globex();
  const auto day1 = core::TimePoint{sys_days{2026y / December / 1}};
  const auto ann = add_user("ann@acme.example");
  add_user("bob@acme.example", core::Role::silent_user);
  add_user("desk@acme.example", core::Role::functional);
  store.add_user({.address = addr("new@acme.example"), .source = core::Source::discovery}, actor);
  const auto counted = store.record_license_usage(day1 + hours(1));  // every company's
  ASSERT_EQ(counted.size(), 2u);
  EXPECT_EQ(counted[0].company_id == acme.id ? counted[0].users : counted[1].users, 4);
  store.remove_user(ann.id, actor);
  store.record_license_usage(day1 + hours(23));  // the same day: fewer users now
  add_user("one@globex.example");
  store.record_license_usage(day1 + days(1) + hours(2));  // the next day
  store.remove_company(acme.id, true, actor);
  store.record_license_usage(day1 + days(1) + hours(3));  // acme no more

  const auto all = store.license_usage({.from = "2026-12-01", .to = "2026-12-31"});
  ASSERT_EQ(all.size(), 4u);  // by company, then day
  EXPECT_EQ(std::tie(all[0].company_id, all[0].day), std::tie(acme.id, "2026-12-01"));
  EXPECT_EQ(all[0].company, "acme");
  EXPECT_EQ(all[0].users, 3);
  EXPECT_EQ(all[0].peak_users, 4);
  EXPECT_EQ(all[0].end_users, 1);  // new@ is an end user made by discovery
  EXPECT_EQ(all[0].silent_users, 1);
  EXPECT_EQ(all[0].functional, 1);
  EXPECT_EQ(all[0].from_discovery, 1);
  EXPECT_EQ(all[0].counted_at, day1 + hours(23));
  EXPECT_EQ(std::tie(all[1].day, all[1].users, all[1].peak_users),
            std::tuple("2026-12-02", 3, 3));  // counted once that day, before the removal
  EXPECT_EQ(std::tie(all[2].company_id, all[2].day, all[2].users),
            std::tuple(globex.id, "2026-12-01", 0));
  EXPECT_EQ(std::tie(all[3].day, all[3].users, all[3].peak_users), std::tuple("2026-12-02", 1, 1));

  // One company; a range of days, both ends included.
  const auto g =
      store.license_usage({.company_id = globex.id, .from = "2026-12-02", .to = "2026-12-02"});
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g[0].company, "globex");
  EXPECT_TRUE(store.license_usage({.from = "2026-11-01", .to = "2026-11-30"}).empty());
  const auto acme_days =
      store.license_usage({.company_id = acme.id, .from = "2026-12-01", .to = "2026-12-02"});
  EXPECT_EQ(acme_days.size(), 2u);  // removed, and still billed for its days

  // The report: a company's peak and the mean of its days' highest counts.
  const auto report = summarize_usage(all);
  ASSERT_EQ(report.size(), 2u);
  EXPECT_EQ(std::tie(report[0].company, report[0].peak_users), std::tuple("acme", 4));
  EXPECT_DOUBLE_EQ(report[0].average_users, 3.5);
  EXPECT_EQ(report[0].last.day, "2026-12-02");
  EXPECT_EQ(std::tie(report[1].company, report[1].peak_users), std::tuple("globex", 1));
  EXPECT_DOUBLE_EQ(report[1].average_users, 0.5);
}

TEST_P(StoreTest, AtomicallyCommitsAllOrNothing) {
  auto acme = add_acme();
  store.atomically([&] {
    add_user("one@acme.example");
    add_user("two@acme.example");
  });
  EXPECT_EQ(store.count_users(acme.id), 2u);
  const auto events = audit_count();
  expect_failure(
      [&] {
        store.atomically([&] {
          add_user("three@acme.example");
          store.add_invalid(addr("ghost@acme.example"), "", actor);
          add_user("one@acme.example");  // duplicate: the whole batch fails
        });
      },
      ErrorCode::conflict, "already a user");
  EXPECT_EQ(store.count_users(acme.id), 2u);
  EXPECT_FALSE(store.find_user(addr("three@acme.example")));
  EXPECT_FALSE(store.find_invalid(addr("ghost@acme.example")));
  EXPECT_EQ(audit_count(), events);
  // The store is usable afterwards.
  EXPECT_NO_THROW(add_user("three@acme.example"));
}

TEST_P(StoreTest, ListsWhatWasCreatedInAWindow) {
  auto acme = add_acme();
  auto alice = add_user("alice@acme.example");
  clock.advance(days{8});
  const auto week_start = clock.now();
  auto bob = add_user("bob@acme.example");
  store.add_alias(bob.id, addr("robert@acme.example"), actor);
  clock.advance(days{1});
  auto created = store.list_users(
      {.company_id = acme.id, .created_from = week_start, .created_before = clock.now()});
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0].id, bob.id);
  auto aliases = store.aliases_created(acme.id, week_start, clock.now(), 0);
  ASSERT_EQ(aliases.size(), 1u);
  EXPECT_EQ(aliases[0].address.str(), "robert@acme.example");
  EXPECT_TRUE(store.aliases_created(acme.id, week_start - days{8}, week_start, 0).empty());
  (void)alice;
  // The first few of a window, and how many there are.
  store.add_alias(bob.id, addr("bobby@acme.example"), actor);
  add_user("carol@acme.example");
  const auto now = clock.now() + seconds{1};
  const auto first = store.aliases_created(acme.id, week_start, now, 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].address.str(), "bobby@acme.example");  // by address
  EXPECT_EQ(store.count_aliases_created(acme.id, week_start, now), 2u);
  EXPECT_EQ(store.count_aliases_created(acme.id, week_start - days{8}, week_start), 0u);
  store::UserFilter week{.company_id = acme.id, .created_from = week_start, .created_before = now};
  EXPECT_EQ(store.count_matching_users(week), 2u);
  week.limit = 1;  // limit and offset do not count
  week.offset = 5;
  EXPECT_EQ(store.count_matching_users(week), 2u);
  week.search = "CAROL";
  EXPECT_EQ(store.count_matching_users(week), 1u);
  EXPECT_EQ(store.count_matching_users({}), 3u);
}

// Two nodes (two stores on one database file): one holds the scheduler lease at a time.
TEST_P(StoreTest, OneHolderOfALeaseAtATime) {
  auto other_owned = database.open(clock);
  auto& other = *other_owned;
  const auto t0 = clock.now();
  const std::chrono::seconds ttl{600};
  EXPECT_TRUE(store.hold_lease("scheduler", "node-a", t0, ttl));
  EXPECT_FALSE(other.hold_lease("scheduler", "node-b", t0 + seconds{1}, ttl));
  EXPECT_TRUE(other.hold_lease("reports", "node-b", t0, ttl));  // another lease is apart
  // A renews before it expires; B still cannot take it where the first term would have ended.
  EXPECT_TRUE(store.hold_lease("scheduler", "node-a", t0 + seconds{500}, ttl));
  EXPECT_FALSE(other.hold_lease("scheduler", "node-b", t0 + seconds{700}, ttl));
  // A stops renewing (a node that died): once expired, B takes it, and A has lost it.
  EXPECT_TRUE(other.hold_lease("scheduler", "node-b", t0 + seconds{1100}, ttl));
  EXPECT_FALSE(store.hold_lease("scheduler", "node-a", t0 + seconds{1101}, ttl));
  // Giving up: only the holder's release counts; then anyone takes it at once.
  store.release_lease("scheduler", "node-a");
  EXPECT_FALSE(store.hold_lease("scheduler", "node-a", t0 + seconds{1102}, ttl));
  other.release_lease("scheduler", "node-b");
  EXPECT_TRUE(store.hold_lease("scheduler", "node-a", t0 + seconds{1103}, ttl));
}

TEST_P(StoreTest, RemembersSentReports) {
  auto acme = add_acme();
  EXPECT_FALSE(store.report_sent(acme.id, "2026-11-26"));
  store.mark_report_sent(acme.id, "2026-11-26", "it@acme.example");
  EXPECT_TRUE(store.report_sent(acme.id, "2026-11-26"));
  EXPECT_FALSE(store.report_sent(acme.id, "2026-12-03"));
  auto reopened_owned = database.open(clock);  // survives a restart
  auto& reopened = *reopened_owned;
  EXPECT_TRUE(reopened.report_sent(acme.id, "2026-11-26"));
}

TEST_P(StoreTest, SeesWhatAnotherProcessCommitsAfterASingleRowRead) {
  // serve and the CLI are two connections to one WAL database: a read that returns one row
  // must not leave a snapshot open, or the gateway would not see an address turn invalid.
  add_acme();
  add_user("alice@acme.example");
  EXPECT_TRUE(store.find_user(addr("alice@acme.example")));
  EXPECT_TRUE(store.find_domain("acme.example"));
  auto other_owned = database.open(clock);
  auto& other = *other_owned;
  other.add_invalid(addr("ghost@acme.example"), "", actor);
  EXPECT_EQ(store.resolve(addr("ghost@acme.example")).kind, AddressOwner::Kind::invalid);
  EXPECT_NO_THROW(add_user("bob@acme.example"));  // and can still write
}

TEST_P(StoreTest, PingAnswers) { EXPECT_NO_THROW(store.ping()); }

TEST_P(StoreTest, PasswordLinksAreUsedOnceAndExpire) {
  const auto c = add_acme();
  const auto login = store.add_login({.email = "admin@acme.example",
                                      .password_hash = "x",
                                      .role = LoginRole::company_admin,
                                      .company_id = c.id},
                                     actor);
  const auto in_an_hour = clock.now() + std::chrono::hours(1);
  store.add_password_reset("hash-a", login.id, in_an_hour);
  store.add_password_reset("hash-b", login.id, in_an_hour);
  store.add_password_reset("hash-c", login.id, in_an_hour);
  EXPECT_FALSE(store.take_password_reset("hash-unknown", clock.now()));
  EXPECT_EQ(store.take_password_reset("hash-a", clock.now()), login.id);
  EXPECT_FALSE(store.take_password_reset("hash-a", clock.now()));  // used up
  // At its expiry a link no longer works (the clock is the caller's: tests move it).
  clock.advance(std::chrono::hours(1));
  EXPECT_FALSE(store.take_password_reset("hash-b", clock.now()));
  // Expired links were dropped on the way, so turning the clock back does not revive them.
  EXPECT_FALSE(store.take_password_reset("hash-c", clock.now() - std::chrono::hours(2)));
  // A new password ends the links still out (asked twice, one used: the other is stale).
  store.add_password_reset("hash-e", login.id, clock.now() + std::chrono::hours(1));
  store.set_login_password(login.id, "y", actor);
  EXPECT_FALSE(store.take_password_reset("hash-e", clock.now()));
  // A login's links go with it.
  store.add_password_reset("hash-d", login.id, clock.now() + std::chrono::hours(1));
  store.remove_login(login.id, actor);
  EXPECT_FALSE(store.take_password_reset("hash-d", clock.now()));
}

}  // namespace
}  // namespace mailroster::store::sql
