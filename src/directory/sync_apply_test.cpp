#include "directory/sync_apply.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "core/json.hpp"
#include "store/sql/sql_store.hpp"
#include "test_support.hpp"

namespace mailroster::directory {
namespace {

using mailroster::testing::apply_plan;
using mailroster::testing::plan_for;

using core::Address;
Address addr(const char* a) { return Address::parse(a).value(); }

class SyncApply : public ::testing::TestWithParam<store::sql::Dialect> {
 protected:
  SyncApply()
      : clock(core::TimePoint{std::chrono::sys_days{std::chrono::year{2026} / 11 / 2}}),
        owned(database.open(clock)),
        store(*owned) {
    acme = store.add_company({"acme", "", "", {}}, admin);
    store.add_domain(acme.id, "acme.example", core::Endpoint::parse("h").value(), admin);
    globex = store.add_company({"globex", "", "", {}}, admin);
    store.add_domain(globex.id, "globex.example", core::Endpoint::parse("h").value(), admin);
  }
  core::DirectoryEntry entry(const char* a, std::vector<const char*> aliases = {}) {
    core::DirectoryEntry e;
    e.address = addr(a);
    std::vector<Address> list;
    for (const auto* x : aliases) list.push_back(addr(x));
    if (!aliases.empty()) e.aliases = list;
    return e;
  }
  core::Snapshot snapshot(std::vector<core::DirectoryEntry> entries) {
    core::Snapshot s;
    s.entries = std::move(entries);
    return s;
  }
  std::size_t users() { return store.count_users(acme.id); }
  // Creates odd and plain users by a plan and checks each has one user.add event that reads
  // as the user itself.
  void expect_bulk_audit_as_single();
  // Users u0..u39@acme.example, u2 with the alias shared@.
  void add_numbered_users() {
    for (int i = 0; i < 40; ++i) {
      store::NewUser u;
      u.address = addr(("u" + std::to_string(i) + "@acme.example").c_str());
      store.add_user(u, admin);
    }
    store.add_alias(store.find_user(addr("u2@acme.example"))->id, addr("shared@acme.example"),
                    admin);
  }

  core::ManualClock clock;
  testing::TestDatabase database{GetParam()};
  std::unique_ptr<store::sql::SqlStore> owned;
  store::sql::SqlStore& store;
  core::Actor admin{"admin:test"};
  core::Company acme, globex;
};

INSTANTIATE_TEST_SUITE_P(Databases, SyncApply,
                         ::testing::Values(store::sql::Dialect::sqlite,
                                           store::sql::Dialect::postgres),
                         [](const auto& p) { return testing::dialect_name(p.param); });

TEST_P(SyncApply, AppliesCreatesUpdatesAndDeletesWithTheSourceAsActor) {
  const auto s1 =
      snapshot({entry("alice@acme.example", {"al@acme.example"}), entry("bob@acme.example")});
  auto r = apply_plan(store, plan_for(store, acme.id, s1, {}), false);
  EXPECT_EQ(r.created, 2u);
  EXPECT_EQ(store.find_alias(addr("al@acme.example"))->user_id,
            store.find_user(addr("alice@acme.example"))->id);
  EXPECT_EQ(store.list_audit({acme.id, 1})[0].actor, "sync:csv");

  auto alice = entry("alice@acme.example", {"alice.l@acme.example"});
  alice.first_name = "Alice";
  core::SyncOptions o;
  o.delete_removed = true;
  o.max_delete_share = 1;
  r = apply_plan(store, plan_for(store, acme.id, snapshot({alice}), o), false);
  EXPECT_EQ(r.updated, 1u);
  EXPECT_EQ(r.deleted, 1u);
  EXPECT_EQ(store.find_user(addr("alice@acme.example"))->first_name, "Alice");
  EXPECT_FALSE(store.find_alias(addr("al@acme.example")));
  EXPECT_TRUE(store.find_alias(addr("alice.l@acme.example")));
  EXPECT_FALSE(store.find_user(addr("bob@acme.example")));

  // A no-change re-sync writes nothing.
  const auto events = store.list_audit({acme.id, 0}).size();
  const auto plan = plan_for(store, acme.id, snapshot({alice}), o);
  EXPECT_TRUE(plan.empty());
  apply_plan(store, plan, false);
  EXPECT_EQ(store.list_audit({acme.id, 0}).size(), events);
}

// A small batch in a large company looks its keys up; a batch as large as a good part of the
// company reads the company whole. Both must see the same owners and conflicts.
TEST_P(SyncApply, ASmallBatchAndAWholeReadSeeTheSameConflicts) {
  add_numbered_users();
  store.add_invalid(addr("bad@acme.example"), "bounces", admin);
  auto renamed = entry("u1@acme.example");
  renamed.first_name = "Una";
  const std::vector<core::DirectoryEntry> wanted = {
      renamed, entry("new@acme.example", {"shared@acme.example"}), entry("bad@acme.example")};
  auto verdicts = [&](const core::Plan& plan) {
    std::map<std::string, std::string> out;
    for (const auto& i : plan.updates) out[i.address.str()] = "update";
    for (const auto& i : plan.creates) out[i.address.str()] = "create";
    for (const auto& i : plan.skips) out[i.address.str()] = "skip: " + i.reason;
    return out;
  };
  const auto small = verdicts(plan_for(store, acme.id, snapshot(wanted), {}));
  auto many = wanted;
  for (int i = 3; i < 40; ++i)
    many.push_back(entry(("u" + std::to_string(i) + "@acme.example").c_str()));
  auto whole = verdicts(plan_for(store, acme.id, snapshot(many), {}));
  std::erase_if(whole, [&](const auto& kv) { return !small.count(kv.first); });
  EXPECT_EQ(small, whole);
  EXPECT_EQ(small.at("u1@acme.example"), "update");
  EXPECT_EQ(small.at("new@acme.example"), "create");
  EXPECT_EQ(small.at("shared@acme.example"),
            "skip: alias shared@acme.example of new@acme.example is already an alias of "
            "u2@acme.example");
  EXPECT_EQ(small.at("bad@acme.example"), "skip: bad@acme.example belongs to the invalid list");
}

// A run in batches looks each batch up or, when its first batch covers a quarter of the
// company, reads the company once and cuts each batch's view from that: either way the
// verdicts are those of one whole batch.
TEST_P(SyncApply, BatchesPlanAsOneWholeBatchWould) {
  add_numbered_users();
  store.add_alias(store.find_user(addr("u30@acme.example"))->id, addr("late@acme.example"), admin);
  store.add_invalid(addr("bad@acme.example"), "bounces", admin);
  store::NewUser g;
  g.address = addr("g@globex.example");
  store.add_user(g, admin);
  std::vector<core::DirectoryEntry> entries;
  for (int i = 0; i < 38; ++i) {
    entries.push_back(entry(("u" + std::to_string(i) + "@acme.example").c_str()));
    if (i % 7 == 1) entries.back().first_name = "Renamed";
  }
  entries[33].aliases = std::vector<Address>{addr("u33.b@acme.example")};
  for (auto e : {entry("new@acme.example", {"shared@acme.example"}), entry("bad@acme.example"),
                 entry("g@globex.example"), entry("new2@acme.example", {"late@acme.example"}),
                 entry("new3@acme.example", {"u39@acme.example", "n3@acme.example"})}) {
    entries.push_back(e);
  }
  auto verdict = [](const core::PlanItem& i) {
    return std::string(core::to_string(i.action)) + ": " + i.reason;
  };
  std::map<std::string, std::string> whole, batched;
  const auto plan = plan_for(store, acme.id, snapshot(entries), {});
  for (const auto* list : {&plan.creates, &plan.updates, &plan.skips}) {
    for (const auto& i : *list) whole[i.address.str()] = verdict(i);
  }
  for (const std::size_t first : {4, 10}) {  // 4: lookups; 10 keys: 4 x 10 >= 40 users
    batched.clear();
    SyncRun run(store, acme.id, core::Source::csv, {}, false,
                [&](const core::PlanItem& i) { batched[i.address.str()] = verdict(i); });
    for (std::size_t at = 0; at < entries.size();) {
      const auto size = at == 0 ? first : 4;
      run.add({entries.begin() + at, entries.begin() + std::min(at + size, entries.size())});
      at += size;
    }
    run.finish(true, false);
    EXPECT_EQ(whole, batched) << "first batch of " << first;
  }
  EXPECT_EQ(whole.size(), 15u);  // 6 renamed, u33's alias, 3 new, 5 conflicts
  EXPECT_EQ(batched.at("late@acme.example"),
            "skip: alias late@acme.example of new2@acme.example is already an alias of "
            "u30@acme.example");
  EXPECT_EQ(batched.at("g@globex.example"), "skip: g@globex.example belongs to company globex");
  EXPECT_EQ(batched.at("u39@acme.example"),
            "skip: alias u39@acme.example of new3@acme.example is already the address of user "
            "u39@acme.example");
}

// Source ids are matched in memory (they have no index): a small batch in a large company,
// which looks its addresses up, still finds a user by its source id when the address changed,
// and a removal the source reports by id deletes the right user.
TEST_P(SyncApply, ASmallBatchFindsUsersBySourceId) {
  std::vector<core::DirectoryEntry> all;
  for (int i = 0; i < 40; ++i) {
    all.push_back(entry(("u" + std::to_string(i) + "@acme.example").c_str()));
    all.back().source_id = "guid-" + std::to_string(i);
  }
  auto s = snapshot(all);
  s.source = core::Source::ldap;
  apply_plan(store, plan_for(store, acme.id, s, {}), false);
  const auto u7 = store.find_user(addr("u7@acme.example"));
  const auto u8 = store.find_user(addr("u8@acme.example"));
  ASSERT_TRUE(u7 && u8);

  auto moved = entry("u7.new@acme.example");
  moved.source_id = "guid-7";
  core::SyncOptions o;
  o.delete_removed = true;
  RunResult r;
  std::vector<core::PlanItem> seen;
  store.atomically([&] {
    SyncRun run(store, acme.id, core::Source::ldap, o, true,
                [&](const core::PlanItem& i) { seen.push_back(i); });
    run.add({moved});  // 2 keys against 40 users: looked up, not read whole
    r = run.finish(false, false, {"guid-8", "guid-unknown"});
  });
  EXPECT_EQ(r.creates, 0u);
  EXPECT_EQ(r.updates, 1u);
  EXPECT_EQ(r.deletes, 1u);
  EXPECT_EQ(store.find_user(addr("u7.new@acme.example"))->id, u7->id);
  EXPECT_FALSE(store.user_by_id(u8->id));
  EXPECT_EQ(users(), 39u);
}

// Users created in bulk are audited by SQL: the trail must read exactly as for a user added
// one by one (core/json.hpp), awkward names included.
TEST_P(SyncApply, BulkCreatesAreAuditedWithTheSameJsonAsSingleOnes) {
  expect_bulk_audit_as_single();
}

// New rows normally take consecutive ids, which the bulk audit relies on; once the largest id
// is SQLite's maximum, new rows take random free ids and the audit finds each new user by its
// address instead (this path failed on a parameter it did not have, until this test).
TEST_P(SyncApply, BulkCreatesAreAuditedWhenTheirIdsAreNotConsecutive) {
  const auto sql =
      "INSERT INTO users(id, company_id, domain_id, address, address_key, role, "
      "source, created_at, updated_at) SELECT 9223372036854775807, company_id, id, "
      "'top@globex.example', 'top@globex.example', 'silent_user', 'manual', 0, 0 "
      "FROM domains WHERE name = 'globex.example'";
  ASSERT_NO_THROW(database.connect()->exec(sql));
  expect_bulk_audit_as_single();
}

void SyncApply::expect_bulk_audit_as_single() {
  auto odd = entry("odd@acme.example");
  odd.first_name = "Quote\" back\\ tab\t nl\n cr\r \x01 \x7f Zoë";
  odd.surname = "Øster 李 </script>";
  odd.source_id = "id-1";
  std::vector<core::DirectoryEntry> entries = {odd};
  for (int i = 0; i < 20; ++i) {
    entries.push_back(entry(("plain" + std::to_string(i) + "@acme.example").c_str()));
  }
  const auto plan = plan_for(store, acme.id, snapshot(entries), {});
  apply_plan(store, plan, false);
  const auto events = store.list_audit({acme.id, 0});
  for (const auto& want : entries) {
    const auto user = store.find_user(want.address);
    ASSERT_TRUE(user);
    std::size_t found = 0;
    for (const auto& e : events) {
      if (e.action != "user.add" || e.object != want.address.str()) continue;
      ++found;
      EXPECT_EQ(e.after, nlohmann::json(*user).dump());
      EXPECT_EQ(e.actor, "sync:csv");
    }
    EXPECT_EQ(found, 1u) << want.address.str();
  }
  EXPECT_EQ(testing::claim_mismatches(*database.connect()), 0);  // claimed with the bulk insert
}

// The aliases of users created in bulk go in as one set too (those nobody holds): each reads
// in the trail exactly as an alias added on its own, and an alias that was a discovered address
// (taken: one by one) takes it over as before.
TEST_P(SyncApply, BulkCreatedAliasesAreAuditedAsSingleOnes) {
  core::DiscoveredAddress seen;
  seen.address = addr("was.seen@acme.example");
  seen.first_seen = clock.now();
  store.save_discovered(seen, admin);
  std::vector<core::DirectoryEntry> entries;
  for (int i = 0; i < 10; ++i) {
    const auto n = std::to_string(i);
    entries.push_back(
        entry(("u" + n + "@acme.example").c_str(),
              {("a" + n + "@acme.example").c_str(), ("b" + n + "@acme.example").c_str()}));
  }
  entries.push_back(entry("z@acme.example", {"was.seen@acme.example"}));
  const auto plan = plan_for(store, acme.id, snapshot(entries), {});
  apply_plan(store, plan, false);
  EXPECT_FALSE(store.find_discovered(addr("was.seen@acme.example")));
  const auto events = store.list_audit({acme.id, 0});
  std::size_t checked = 0;
  for (const auto& e : entries) {
    const auto user = store.find_user(e.address);
    ASSERT_TRUE(user) << e.address.str();
    for (const auto& a : *e.aliases) {
      const auto alias = store.find_alias(a);
      ASSERT_TRUE(alias) << a.str();
      EXPECT_EQ(alias->user_id, user->id);
      auto want = nlohmann::json(*alias);
      want["user"] = user->address.str();
      std::size_t found = 0;
      for (const auto& ev : events) {
        if (ev.action != "alias.add" || ev.object != a.str()) continue;
        ++found;
        EXPECT_EQ(ev.after, want.dump());
        EXPECT_EQ(ev.actor, "sync:csv");
      }
      EXPECT_EQ(found, 1u) << a.str();
      ++checked;
    }
  }
  EXPECT_EQ(checked, 21u);
  EXPECT_EQ(testing::claim_mismatches(*database.connect()), 0);
}

TEST_P(SyncApply, AFailureMidApplyChangesNothing) {
  const auto plan = plan_for(
      store, acme.id,
      snapshot({entry("one@acme.example"), entry("two@acme.example"), entry("three@acme.example")}),
      {});
  ASSERT_EQ(plan.creates.size(), 3u);
  // Between preview and apply, an administrator adds the second address by hand.
  store.add_user({addr("two@acme.example")}, admin);
  const auto events = store.list_audit({acme.id, 0}).size();
  EXPECT_THROW(apply_plan(store, plan, false), core::Failure);
  EXPECT_EQ(users(), 1u);  // only the hand-made one
  EXPECT_FALSE(store.find_user(addr("one@acme.example")));
  EXPECT_EQ(store.list_audit({acme.id, 0}).size(), events);
}

// Updates are written in the plan's transaction (no savepoint each): one that fails undoes
// the updates before it too.
TEST_P(SyncApply, AFailedUpdateUndoesTheUpdatesBeforeIt) {
  std::vector<core::DirectoryEntry> all;
  for (const char* a : {"ann@acme.example", "bob@acme.example"}) {
    all.push_back(entry(a));
    all.back().source_id = std::string("guid-") + a;
    all.back().first_name = "Old";
  }
  auto s = snapshot(all);
  s.source = core::Source::ldap;
  apply_plan(store, plan_for(store, acme.id, s, {}), false);
  s.entries[0].first_name = "New";                     // ann: a changed name
  s.entries[1].address = addr("robert@acme.example");  // bob: a new address
  const auto plan = plan_for(store, acme.id, s, {});
  ASSERT_EQ(plan.updates.size(), 2u);
  ASSERT_EQ(plan.updates[0].address.str(), "ann@acme.example");  // written first
  // Between preview and apply, an administrator adds bob's new address by hand.
  store.add_user({addr("robert@acme.example")}, admin);
  const auto events = store.list_audit({acme.id, 0}).size();
  EXPECT_THROW(apply_plan(store, plan, false), core::Failure);
  EXPECT_EQ(store.find_user(addr("ann@acme.example"))->first_name, "Old");
  EXPECT_TRUE(store.find_user(addr("bob@acme.example")));
  EXPECT_EQ(store.list_audit({acme.id, 0}).size(), events);
}

// A plan's changes of names and roles are written as one set: each user.update event reads
// exactly as update_user's (the whole user before and after), awkward names included, and a
// change of address in the same plan still goes one by one.
TEST_P(SyncApply, BulkUpdatesAreAuditedAsSingleOnes) {
  std::vector<core::DirectoryEntry> all;
  for (int i = 0; i < 6; ++i) {
    all.push_back(entry(("u" + std::to_string(i) + "@acme.example").c_str()));
    all.back().source_id = "guid-" + std::to_string(i);
    all.back().first_name = "First";
    all.back().surname = "Last";
  }
  auto s = snapshot(all);
  s.source = core::Source::ldap;
  apply_plan(store, plan_for(store, acme.id, s, {}), false);
  std::map<std::string, core::User> before;
  for (const auto& e : all) before[e.source_id] = *store.find_user(e.address);
  clock.advance(std::chrono::hours(25));
  s.entries[0].first_name = "Quote\" back\\ tab\t nl\n Zoë";
  s.entries[1].surname = "Øster 李 </script>";
  s.entries[2].role = core::Role::end_user;
  s.entries[3].first_name = "Both";
  s.entries[3].surname = "Changed";
  s.entries[4].address = addr("moved@acme.example");  // one by one
  const auto plan = plan_for(store, acme.id, s, {});
  ASSERT_EQ(plan.updates.size(), 5u);
  apply_plan(store, plan, false);
  const auto events = store.list_audit({acme.id, 0});
  for (int i = 0; i < 5; ++i) {
    const auto& e = s.entries[static_cast<std::size_t>(i)];
    const auto after = store.find_user(e.address);
    ASSERT_TRUE(after) << e.address.str();
    EXPECT_EQ(after->updated_at, clock.now());
    std::size_t found = 0;
    for (const auto& ev : events) {
      if (ev.action != "user.update" || ev.object != e.address.str()) continue;
      ++found;
      EXPECT_EQ(ev.before, nlohmann::json(before[e.source_id]).dump());
      EXPECT_EQ(ev.after, nlohmann::json(*after).dump());
      EXPECT_EQ(ev.at, clock.now());
    }
    EXPECT_EQ(found, 1u) << e.address.str();
  }
  EXPECT_EQ(store.find_user(addr("u0@acme.example"))->first_name, s.entries[0].first_name);
  EXPECT_EQ(store.find_user(addr("u1@acme.example"))->surname, s.entries[1].surname);
  EXPECT_EQ(store.find_user(addr("u2@acme.example"))->role, core::Role::end_user);
  EXPECT_EQ(store.find_user(addr("u5@acme.example"))->updated_at, before["guid-5"].updated_at);
}

TEST_P(SyncApply, AddressesOfOtherCompaniesAreConflictsNotStolen) {
  store.add_user({addr("hank@globex.example")}, admin);
  store.add_invalid(addr("ghost@acme.example"), "", admin);
  // hank@globex.example cannot even be in acme's CSV (domain check), but an alias can try.
  const auto plan = plan_for(
      store, acme.id,
      snapshot({entry("alice@acme.example", {"ghost@acme.example"}), entry("ghost@acme.example")}),
      {});
  ASSERT_EQ(plan.skips.size(), 2u);
  EXPECT_NE(plan.skips[0].reason.find("invalid list"), std::string::npos);
  apply_plan(store, plan, false);
  EXPECT_EQ(store.resolve(addr("ghost@acme.example")).kind, store::AddressOwner::Kind::invalid);
}

TEST_P(SyncApply, DeletionGuardRefusesUnlessForced) {
  std::vector<core::DirectoryEntry> many;
  for (int i = 0; i < 20; ++i)
    many.push_back(entry(("u" + std::to_string(i) + "@acme.example").c_str()));
  apply_plan(store, plan_for(store, acme.id, snapshot(many), {}), false);
  core::SyncOptions o;
  o.delete_removed = true;
  const auto plan = plan_for(store, acme.id, snapshot({many[0]}), o);
  ASSERT_TRUE(plan.guard);
  try {
    apply_plan(store, plan, false);
    ADD_FAILURE();
  } catch (const core::Failure& f) {
    EXPECT_NE(std::string(f.what()).find("deletion guard"), std::string::npos);
  }
  EXPECT_EQ(users(), 20u);
  apply_plan(store, plan, true);
  EXPECT_EQ(users(), 1u);
}

TEST_P(SyncApply, ARunInBatchesAppliesAsItGoesAndDeletesOnlyUsersFromBeforeTheRun) {
  apply_plan(store, plan_for(store, acme.id, snapshot({entry("old@acme.example")}), {}), false);
  core::SyncOptions o;
  o.delete_removed = true;
  o.max_delete_share = 1;
  std::vector<core::PlanItem> seen;
  RunResult r;
  store.atomically([&] {
    SyncRun run(store, acme.id, core::Source::csv, o, true,
                [&](const core::PlanItem& i) { seen.push_back(i); });
    run.add({entry("a@acme.example", {"a2@acme.example"}), entry("b@acme.example")});
    EXPECT_TRUE(store.find_user(addr("a@acme.example")));  // applied with its batch
    run.add({entry("c@acme.example"), entry("d@acme.example", {"a2@acme.example"})});
    r = run.finish(true, false);
  });
  EXPECT_EQ(r.creates, 4u);
  EXPECT_EQ(r.deletes, 1u);  // old@ only: a@..d@ came in this run
  EXPECT_EQ(r.company_users, 1u);
  EXPECT_EQ(r.skips, 1u);  // d@'s alias a2@, already a@'s from the first batch
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_NE(seen[4].reason.find("already an alias of a@acme.example"), std::string::npos)
      << seen[4].reason;
  EXPECT_EQ(seen.back().address.str(), "old@acme.example");
  EXPECT_EQ(users(), 4u);
  EXPECT_FALSE(store.find_user(addr("old@acme.example")));
  // d@'s alias was a@'s already (an earlier batch): d@ is created without it.
  EXPECT_EQ(store.find_alias(addr("a2@acme.example"))->user_id,
            store.find_user(addr("a@acme.example"))->id);
}

TEST_P(SyncApply, AGuardRefusalAtTheEndOfAnAppliedRunUndoesEveryBatch) {
  std::vector<core::DirectoryEntry> many;
  for (int i = 0; i < 10; ++i)
    many.push_back(entry(("u" + std::to_string(i) + "@acme.example").c_str()));
  apply_plan(store, plan_for(store, acme.id, snapshot(many), {}), false);
  core::SyncOptions o;
  o.delete_removed = true;
  EXPECT_THROW(store.atomically([&] {
    SyncRun run(store, acme.id, core::Source::csv, o, true, {});
    run.add({entry("new@acme.example")});
    run.finish(true, false);
  }),
               core::Failure);
  EXPECT_EQ(users(), 10u);
  EXPECT_FALSE(store.find_user(addr("new@acme.example")));
}

// A run that deletes more users than a page (5000) reads and writes them a page at a time
// (bounded memory for a million): every one is deleted, reported and audited once, each
// page in address order.
TEST_P(SyncApply, ARunDeletingManyUsersDeletesThemAPageAtATime) {
  std::vector<core::DirectoryEntry> many;
  for (int i = 0; i < 12'001; ++i)
    many.push_back(entry(("u" + std::to_string(i) + "@acme.example").c_str()));
  apply_plan(store, plan_for(store, acme.id, snapshot(many), {}), false);
  core::SyncOptions o;
  o.delete_removed = true;
  o.max_delete_share = 1;
  o.max_delete_count = 1'000'000;
  std::vector<std::string> seen;
  RunResult r;
  store.atomically([&] {
    SyncRun run(store, acme.id, core::Source::csv, o, true, [&](const core::PlanItem& i) {
      EXPECT_EQ(i.action, core::PlanItem::Action::remove);
      seen.push_back(i.address.key());
    });
    run.add({entry("u7@acme.example")});
    r = run.finish(true, false);
  });
  EXPECT_EQ(r.deletes, 12'000u);
  EXPECT_EQ(users(), 1u);
  EXPECT_TRUE(store.find_user(addr("u7@acme.example")));
  ASSERT_EQ(seen.size(), 12'000u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 12'000u);
  for (std::size_t page = 0; page < seen.size(); page += 5000) {
    const auto end = seen.begin() + static_cast<std::ptrdiff_t>(std::min(page + 5000, seen.size()));
    EXPECT_TRUE(std::is_sorted(seen.begin() + static_cast<std::ptrdiff_t>(page), end)) << page;
  }
  store::AuditFilter removals;
  removals.company_id = acme.id;
  removals.limit = 0;
  removals.action = "user.remove";
  EXPECT_EQ(store.list_audit(removals).size(), 12'000u);
}

// A sync's deletes (written as a set) are audited as a single removal is: the user's JSON
// as it was, and its aliases' removals before it.
TEST_P(SyncApply, BulkDeletesAreAuditedAsSingleOnes) {
  std::vector<core::Id> ids;
  for (const char* a : {"one@acme.example", "two@acme.example"}) {
    store::NewUser n;
    n.address = addr(a);
    n.first_name = "Ann \"Q\" Lee";
    n.surname = "Zoë";
    n.role = core::Role::silent_user;
    n.source = core::Source::csv;
    n.source_id = "guid-1";
    ids.push_back(store.add_user(n, admin).id);
  }
  store.add_alias(ids[0], addr("one.alias@acme.example"), admin);
  store.add_alias(ids[1], addr("two.alias@acme.example"), admin);
  store.remove_user(ids[0], admin);
  core::SyncOptions o;
  o.delete_removed = true;
  o.max_delete_share = 1;
  store.atomically([&] {
    SyncRun run(store, acme.id, core::Source::csv, o, true, {});
    EXPECT_EQ(run.finish(true, false).deletes, 1u);
  });
  EXPECT_EQ(users(), 0u);
  store::AuditFilter f;
  f.company_id = acme.id;
  f.limit = 4;  // newest first: two's alias and user, then one's
  const auto events = store.list_audit(f);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].action + " " + events[0].object, "user.remove two@acme.example");
  EXPECT_EQ(events[0].actor, "sync:csv");
  EXPECT_EQ(events[1].action + " " + events[1].object, "alias.remove two.alias@acme.example");
  EXPECT_EQ(events[2].action + " " + events[2].object, "user.remove one@acme.example");
  EXPECT_EQ(events[3].action + " " + events[3].object, "alias.remove one.alias@acme.example");
  auto without_identity = [](const std::string& text) {
    auto j = nlohmann::json::parse(text);
    j.erase("id");
    j.erase("address");
    return j;
  };
  EXPECT_EQ(without_identity(events[0].before), without_identity(events[2].before));
  EXPECT_NE(events[0].before.find("two@acme.example"), std::string::npos) << events[0].before;
}

TEST_P(SyncApply, AnIncompleteSourceNeverDeletes) {
  apply_plan(store, plan_for(store, acme.id, snapshot({entry("a@acme.example")}), {}), false);
  core::SyncOptions o;
  o.delete_removed = true;
  o.max_delete_share = 1;
  auto s = snapshot({});
  s.complete = false;
  const auto plan = plan_for(store, acme.id, s, o);
  EXPECT_TRUE(plan.deletes.empty());
  EXPECT_FALSE(plan.source_complete);
}

}  // namespace
}  // namespace mailroster::directory
