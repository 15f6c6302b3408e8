#include "core/sync_planner.hpp"

#include <gtest/gtest.h>

namespace mailroster::core {
namespace {

Address addr(const char* a) { return Address::parse(a).value(); }

User user(Id id, const char* a, Source source = Source::csv, const char* source_id = "") {
  User u;
  u.id = id;
  u.company_id = 1;
  u.address = addr(a);
  u.first_name = "F";
  u.surname = "S";
  u.role = Role::silent_user;
  u.source = source;
  u.source_id = source_id;
  return u;
}

DirectoryEntry entry(const char* a, const char* first = "F", const char* last = "S") {
  DirectoryEntry e;
  e.address = addr(a);
  e.first_name = first;
  e.surname = last;
  return e;
}

Snapshot snapshot(std::vector<DirectoryEntry> entries, Source source = Source::csv) {
  Snapshot s;
  s.source = source;
  s.entries = std::move(entries);
  return s;
}

struct Fixture {
  std::vector<User> users;
  std::vector<Alias> aliases;
  std::unordered_map<std::string, ForeignOwner> foreign;
  Plan plan(const Snapshot& s, const SyncOptions& o = {}) {
    return plan_sync(users, aliases, foreign, s, o);
  }
};

TEST(SyncPlanner, CreatesNewEntriesWithTheDefaultRoleOrTheirOwn) {
  Fixture f;
  auto e2 = entry("bob@acme.example");
  e2.role = Role::end_user;
  auto room = entry("room1@acme.example");
  room.functional = true;
  auto p = f.plan(snapshot({entry("alice@acme.example"), e2, room}));
  ASSERT_EQ(p.creates.size(), 3u);
  EXPECT_EQ(p.creates[0].role, Role::silent_user);
  EXPECT_EQ(p.creates[1].role, Role::end_user);
  EXPECT_EQ(p.creates[2].role, Role::functional);
  EXPECT_TRUE(p.updates.empty());
  EXPECT_TRUE(p.deletes.empty());
}

TEST(SyncPlanner, UnchangedEntriesProduceNothing) {
  Fixture f;
  f.users = {user(1, "alice@acme.example")};
  auto p = f.plan(snapshot({entry("ALICE@acme.example")}));
  ASSERT_EQ(p.updates.size(), 1u);  // the spelling of the local part changed
  EXPECT_EQ(p.updates[0].changes[0].field, "address");
  p = f.plan(snapshot({entry("alice@acme.example")}));
  EXPECT_TRUE(p.empty());
  EXPECT_TRUE(p.skips.empty());
}

TEST(SyncPlanner, UpdatesListFieldLevelChanges) {
  Fixture f;
  f.users = {user(1, "alice@acme.example")};
  auto e = entry("alice@acme.example", "Alice", "Liddell");
  e.role = Role::end_user;
  auto p = f.plan(snapshot({e}));
  ASSERT_EQ(p.updates.size(), 1u);
  const auto& c = p.updates[0].changes;
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].field, "first_name");
  EXPECT_EQ(c[0].before, "F");
  EXPECT_EQ(c[0].after, "Alice");
  EXPECT_EQ(c[1].field, "surname");
  EXPECT_EQ(c[2].field, "role");
  EXPECT_EQ(c[2].after, "end_user");
}

TEST(SyncPlanner, NoRoleInTheSourceKeepsTheUsersRole) {
  Fixture f;
  f.users = {user(1, "alice@acme.example")};
  f.users[0].role = Role::end_user;
  EXPECT_TRUE(f.plan(snapshot({entry("alice@acme.example")})).empty());
}

TEST(SyncPlanner, MatchesByStableSourceIdFirst) {
  Fixture f;
  f.users = {user(1, "alice@acme.example", Source::ldap, "guid-1")};
  auto e = entry("alice.liddell@acme.example");
  e.source_id = "guid-1";
  auto p = f.plan(snapshot({e}, Source::ldap));
  ASSERT_EQ(p.updates.size(), 1u);
  EXPECT_EQ(p.updates[0].user_id, 1);
  EXPECT_EQ(p.updates[0].changes[0].field, "address");
  EXPECT_EQ(p.updates[0].changes[0].after, "alice.liddell@acme.example");
  EXPECT_TRUE(p.creates.empty());
}

TEST(SyncPlanner, DeletesOnlyUsersOfTheSameSourceAndOnlyWhenAsked) {
  Fixture f;
  f.users = {user(1, "alice@acme.example"), user(2, "gone@acme.example"),
             user(3, "manual@acme.example", Source::manual),
             user(4, "ldap@acme.example", Source::ldap)};
  for (int i = 5; i < 40; ++i) {
    f.users.push_back(
        user(i, ("keep" + std::to_string(i) + "@acme.example").c_str(), Source::manual));
  }
  const auto s = snapshot({entry("alice@acme.example")});
  EXPECT_TRUE(f.plan(s).deletes.empty());  // delete switched off by default
  SyncOptions o;
  o.delete_removed = true;
  auto p = f.plan(s, o);
  ASSERT_EQ(p.deletes.size(), 1u);
  EXPECT_EQ(p.deletes[0].address.str(), "gone@acme.example");
  EXPECT_EQ(p.deletes[0].reason, "no longer in the source");
  EXPECT_FALSE(p.guard);
}

TEST(SyncPlanner, AnIncompleteSourceNeverDeletes) {
  Fixture f;
  f.users = {user(1, "alice@acme.example"), user(2, "gone@acme.example")};
  auto s = snapshot({entry("alice@acme.example")});
  s.complete = false;
  SyncOptions o;
  o.delete_removed = true;
  EXPECT_TRUE(f.plan(s, o).deletes.empty());
}

TEST(SyncPlanner, DeletionGuardByCountAndShare) {
  Fixture f;
  for (int i = 1; i <= 100; ++i) {
    f.users.push_back(user(i, ("u" + std::to_string(i) + "@acme.example").c_str()));
  }
  SyncOptions o;
  o.delete_removed = true;
  std::vector<DirectoryEntry> keep;
  for (int i = 1; i <= 90; ++i)
    keep.push_back(entry(("u" + std::to_string(i) + "@acme.example").c_str()));
  auto p = f.plan(snapshot(keep), o);
  EXPECT_EQ(p.deletes.size(), 10u);
  EXPECT_FALSE(p.guard);  // exactly 10 %: allowed
  keep.pop_back();
  p = f.plan(snapshot(keep), o);
  EXPECT_EQ(p.deletes.size(), 11u);
  ASSERT_TRUE(p.guard);
  EXPECT_NE(p.guard->find("11 of 100 users, more than 10 %"), std::string::npos);
  o.max_delete_share = 1.0;
  o.max_delete_count = 5;
  p = f.plan(snapshot(keep), o);
  ASSERT_TRUE(p.guard);
  EXPECT_NE(p.guard->find("more than the limit of 5"), std::string::npos);
}

struct IncludeCase {
  const char* name;
  void (*mark)(DirectoryEntry&);
  bool SyncOptions::*flag;
};

TEST(SyncPlanner, EveryIncludeFlagKeepsOrSkipsItsEntries) {
  const std::vector<IncludeCase> cases = {
      {"disabled", [](DirectoryEntry& e) { e.disabled = true; }, &SyncOptions::include_disabled},
      {"functional", [](DirectoryEntry& e) { e.functional = true; },
       &SyncOptions::include_functional},
      {"group", [](DirectoryEntry& e) { e.security_group = true; },
       &SyncOptions::include_security_groups},
      {"hidden", [](DirectoryEntry& e) { e.hidden = true; }, &SyncOptions::include_hidden},
      {"active", [](DirectoryEntry&) {}, &SyncOptions::include_active},
  };
  for (const auto& c : cases) {
    Fixture f;
    auto e = entry("x@acme.example");
    c.mark(e);
    SyncOptions on, off;
    on.*c.flag = true;
    off.*c.flag = false;
    EXPECT_EQ(f.plan(snapshot({e}), on).creates.size(), 1u) << c.name;
    const auto p = f.plan(snapshot({e}), off);
    EXPECT_TRUE(p.creates.empty()) << c.name;
    ASSERT_EQ(p.skips.size(), 1u) << c.name;
  }
}

TEST(SyncPlanner, ExcludedEntriesOfAnExistingUserMakeItADeleteCandidate) {
  Fixture f;
  f.users = {user(1, "alice@acme.example"), user(2, "bob@acme.example")};
  auto bob = entry("bob@acme.example");
  bob.disabled = true;
  SyncOptions o;
  o.delete_removed = true;
  o.max_delete_share = 1;
  auto p = f.plan(snapshot({entry("alice@acme.example"), bob}), o);
  ASSERT_EQ(p.deletes.size(), 1u);
  EXPECT_EQ(p.deletes[0].address.str(), "bob@acme.example");
}

TEST(SyncPlanner, CreateAndUpdateSwitchesOff) {
  Fixture f;
  f.users = {user(1, "alice@acme.example")};
  SyncOptions o;
  o.create = false;
  o.update = false;
  auto p = f.plan(snapshot({entry("alice@acme.example", "New"), entry("bob@acme.example")}), o);
  EXPECT_TRUE(p.empty());
  ASSERT_EQ(p.skips.size(), 2u);
  EXPECT_NE(p.skips[0].reason.find("updating is switched off"), std::string::npos);
  EXPECT_NE(p.skips[1].reason.find("creating is switched off"), std::string::npos);
}

TEST(SyncPlanner, ConflictsAreSkippedNeverStolen) {
  Fixture f;
  f.users = {user(1, "alice@acme.example"), user(2, "bob@acme.example", Source::manual)};
  Alias a;
  a.id = 9;
  a.user_id = 2;
  a.address = addr("robert@acme.example");
  f.aliases = {a};
  f.foreign["hank@acme.example"] = {"company globex"};
  f.foreign["ghost@acme.example"] = {"the invalid list"};
  auto with_alias = entry("alice@acme.example");
  with_alias.aliases = std::vector{addr("robert@acme.example"), addr("al@acme.example")};
  auto p = f.plan(snapshot({entry("robert@acme.example"), entry("hank@acme.example"),
                            entry("ghost@acme.example"), with_alias}));
  ASSERT_EQ(p.skips.size(), 4u);
  EXPECT_NE(p.skips[0].reason.find("is already an alias of bob@acme.example"), std::string::npos);
  EXPECT_NE(p.skips[1].reason.find("belongs to company globex"), std::string::npos);
  EXPECT_NE(p.skips[2].reason.find("belongs to the invalid list"), std::string::npos);
  EXPECT_NE(p.skips[3].reason.find("alias robert@acme.example of alice@acme.example"),
            std::string::npos);
  ASSERT_EQ(p.updates.size(), 1u);  // alice still gets the free alias
  ASSERT_EQ(p.updates[0].add_aliases.size(), 1u);
  EXPECT_EQ(p.updates[0].add_aliases[0].str(), "al@acme.example");
  EXPECT_TRUE(p.creates.empty());
}

TEST(SyncPlanner, AliasesAreAddedAndRemovedWhenTheSourceManagesThem) {
  Fixture f;
  f.users = {user(1, "alice@acme.example")};
  Alias old;
  old.id = 5;
  old.user_id = 1;
  old.address = addr("old@acme.example");
  f.aliases = {old};
  auto e = entry("alice@acme.example");
  e.aliases = std::vector{addr("new@acme.example"), addr("alice@acme.example")};
  auto p = f.plan(snapshot({e}));
  ASSERT_EQ(p.updates.size(), 1u);
  ASSERT_EQ(p.updates[0].add_aliases.size(), 1u);  // never its own alias
  EXPECT_EQ(p.updates[0].add_aliases[0].str(), "new@acme.example");
  ASSERT_EQ(p.updates[0].remove_aliases.size(), 1u);
  EXPECT_EQ(p.updates[0].remove_aliases[0].str(), "old@acme.example");
  // A source that does not manage aliases leaves them alone.
  EXPECT_TRUE(f.plan(snapshot({entry("alice@acme.example")})).empty());
}

TEST(SyncPlanner, DuplicatesInTheSourceAreSkipped) {
  Fixture f;
  auto p = f.plan(snapshot({entry("a@acme.example"), entry("A@acme.example")}));
  EXPECT_EQ(p.creates.size(), 1u);
  ASSERT_EQ(p.skips.size(), 1u);
  EXPECT_NE(p.skips[0].reason.find("more than once"), std::string::npos);
}

}  // namespace
}  // namespace mailroster::core

namespace mailroster::core {
namespace {

TEST(SyncPlanner, GroupsAreFunctionalAccountsWhenIncluded) {
  Fixture f;
  auto g = entry("staff@acme.example");
  g.security_group = true;
  EXPECT_TRUE(f.plan(snapshot({g})).creates.empty());  // security groups are off by default
  SyncOptions o;
  o.include_security_groups = true;
  const auto p = f.plan(snapshot({g}), o);
  ASSERT_EQ(p.creates.size(), 1u);
  EXPECT_EQ(p.creates[0].role, Role::functional);  // an address, not a person: no login
}

}  // namespace
}  // namespace mailroster::core

namespace mailroster::core {
namespace {

TEST(SyncPlanner, UsersTheSourceReportsRemovedAreDeletedEvenFromAnIncrementalSnapshot) {
  Fixture f;
  f.users = {user(1, "a@acme.example", Source::azure, "id-a"),
             user(2, "b@acme.example", Source::azure, "id-b"),
             user(3, "m@acme.example", Source::manual, "id-m")};
  SyncPlanner planner(Source::azure, {.delete_removed = true, .max_delete_share = 1});
  planner.plan({}, {f.users, f.aliases, f.foreign});
  // Incremental: only b (and a manual user with a clashing id, never touched) reported removed.
  auto p = planner.finish(f.users, 3, false, {f.users[1], f.users[2]});
  ASSERT_EQ(p.deletes.size(), 1u);
  EXPECT_EQ(p.deletes[0].address.str(), "b@acme.example");
  EXPECT_EQ(p.deletes[0].reason, "removed in the source");
  SyncPlanner keep(Source::azure, {});  // deleting off
  EXPECT_TRUE(keep.finish(f.users, 3, false, {f.users[1]}).deletes.empty());
}

// Removing several users by hand passes the same guard with SPEC's limits; one never does.
TEST(SyncPlanner, RemovingSeveralUsersByHandPassesTheDeletionGuard) {
  EXPECT_FALSE(removal_guard(1, 2)) << "one user, even half the company";
  EXPECT_FALSE(removal_guard(10, 100)) << "exactly 10 %";
  const auto share = removal_guard(11, 100);
  ASSERT_TRUE(share);
  EXPECT_EQ(*share, "would delete 11 of 100 users, more than 10 %");
  const auto count = removal_guard(501, 100'000);
  ASSERT_TRUE(count);
  EXPECT_EQ(*count, "would delete 501 users, more than the limit of 500");
  EXPECT_FALSE(removal_guard(500, 100'000));
}

}  // namespace
}  // namespace mailroster::core
