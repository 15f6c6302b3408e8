// The seed's SMTP Discovery scenarios, day by day, with an injected clock.
#include "lifecycle/discovery_service.hpp"

#include <gtest/gtest.h>

#include "store/sql/sql_store.hpp"
#include "test_support.hpp"

namespace mailroster::lifecycle {
namespace {

using core::Address;
using store::AddressOwner;
using namespace std::chrono;

Address addr(const char* text) { return Address::parse(text).value(); }

class Lifecycle : public ::testing::TestWithParam<store::sql::Dialect> {
 protected:
  Lifecycle() : clock(day0), owned(database.open(clock)), store(*owned), discovery(store, clock) {
    acme = store.add_company({"acme", "it@acme.example", "", {}}, admin);
    for (const char* d : {"acme.example", "acme.test"}) {
      store.add_domain(acme.id, d, core::Endpoint::parse("127.0.0.1:2526").value(), admin);
    }
    settings.enabled = true;
    store.set_discovery_settings(acme.id, settings, admin);
  }

  void set(const char* name, const char* value) {
    ASSERT_FALSE(core::set_setting(settings, name, value));
    store.set_discovery_settings(acme.id, settings, admin);
  }

  void on_day(int day) { clock.set(day0 + days{day}); }
  AddressOwner::Kind kind(const char* a) { return store.resolve(addr(a)).kind; }

  const core::TimePoint day0{sys_days{2026y / November / 2}};
  testing::TempDir dir;
  core::ManualClock clock;
  testing::TestDatabase database{GetParam()};
  std::unique_ptr<store::sql::SqlStore> owned;
  store::sql::SqlStore& store;
  DiscoveryService discovery;
  core::Actor admin{"admin:test"};
  core::Company acme;
  core::DiscoverySettings settings;
};

INSTANTIATE_TEST_SUITE_P(Databases, Lifecycle,
                         ::testing::Values(store::sql::Dialect::sqlite,
                                           store::sql::Dialect::postgres),
                         [](const auto& p) { return testing::dialect_name(p.param); });

// Another process's long write (an import, a sync) holds SQLite past its 5 s wait: the counts
// are not counted and say `again` (serve keeps them and tries again), and then count.
TEST_P(Lifecycle, CountsTheDatabaseCannotTakeNowSayAgain) {
  if (GetParam() != store::sql::Dialect::sqlite) {
    GTEST_SKIP() << "PostgreSQL queues writers without a timeout";
  }
  using D = CleanMail::Direction;
  const std::vector<CleanMail> mails{{D::inbound, addr("new@acme.example")},
                                     {D::outbound, addr("sender@acme.test")}};
  auto other = database.open(clock);
  {
    testing::HeldWrite writer(*other, [] {});
    const auto counted = discovery.record_clean(mails);
    ASSERT_EQ(counted.size(), 2u);
    for (const auto& c : counted) {
      EXPECT_TRUE(c.again);
      EXPECT_EQ(c.outcome, Outcome::none);
      EXPECT_NE(c.error.find("database busy"), std::string::npos) << c.error;
    }
  }
  EXPECT_FALSE(store.find_discovered(addr("new@acme.example")));
  const auto counted = discovery.record_clean(mails);
  ASSERT_EQ(counted.size(), 2u);
  EXPECT_EQ(counted[0].outcome, Outcome::counted);
  EXPECT_EQ(counted[1].outcome, Outcome::discovered) << "a sender out: discovered at once";
  EXPECT_EQ(store.find_discovered(addr("new@acme.example"))->clean_inbound.size(), 1u);
}

// A count written late (it waited for the database) is stamped when its mail came, not when
// it was written: here a day after.
TEST_P(Lifecycle, ACountIsStampedWhenItsMailCame) {
  using D = CleanMail::Direction;
  const auto came = clock.now();
  on_day(1);
  const auto counted = discovery.record_clean({{D::inbound, addr("new@acme.example"), came},
                                               {D::outbound, addr("out@acme.example"), came}});
  ASSERT_EQ(counted.size(), 2u);
  EXPECT_EQ(counted[0].outcome, Outcome::counted);
  const auto d = store.find_discovered(addr("new@acme.example")).value();
  EXPECT_EQ(d.clean_inbound, std::vector<core::TimePoint>{came});
  EXPECT_EQ(d.first_seen, came);
  EXPECT_EQ(store.find_discovered(addr("out@acme.example"))->discovered_at, came);
}

TEST_P(Lifecycle, ThreeCleanMessagesIn30DaysDiscover) {
  on_day(0);
  EXPECT_EQ(discovery.record_clean_inbound(addr("new@acme.example")), Outcome::counted);
  on_day(12);
  EXPECT_EQ(discovery.record_clean_inbound(addr("new@acme.example")), Outcome::counted);
  on_day(29);
  EXPECT_EQ(discovery.record_clean_inbound(addr("new@acme.example")), Outcome::discovered);
  auto d = store.find_discovered(addr("new@acme.example")).value();
  EXPECT_EQ(d.discovered_at, clock.now());
}

TEST_P(Lifecycle, ThreeSpreadOver31DaysDoNot) {
  for (int day : {0, 15, 31}) {
    on_day(day);
    EXPECT_EQ(discovery.record_clean_inbound(addr("new@acme.example")), Outcome::counted);
  }
  EXPECT_FALSE(store.find_discovered(addr("new@acme.example"))->discovered_at);
}

TEST_P(Lifecycle, DiscoveredUntouchedFor3WeeksBecomesInvalid) {
  set("inbound_threshold", "1");
  on_day(0);
  EXPECT_EQ(discovery.record_clean_inbound(addr("temp@acme.example")), Outcome::discovered);
  on_day(20);
  EXPECT_TRUE(discovery.expire(clock.now()).changed.empty());
  EXPECT_EQ(kind("temp@acme.example"), AddressOwner::Kind::discovered);
  on_day(21);
  const auto run = discovery.expire(clock.now());
  ASSERT_EQ(run.changed.size(), 1u);
  EXPECT_EQ(run.changed[0].second, Outcome::became_invalid);
  EXPECT_EQ(kind("temp@acme.example"), AddressOwner::Kind::invalid);
  EXPECT_TRUE(store.list_discovered(acme.id).empty());
  // Mail for it is now counted nowhere.
  EXPECT_EQ(discovery.record_clean_inbound(addr("temp@acme.example")), Outcome::none);
}

TEST_P(Lifecycle, WithDefaultToNewUserAnExpiredAddressBecomesAUserWithTheDefaultRole) {
  set("inbound_threshold", "1");
  set("expired_to_new_user", "true");
  set("default_role", "end_user");
  discovery.record_clean_inbound(addr("temp@acme.example"));
  on_day(22);
  const auto run = discovery.expire(clock.now());
  ASSERT_EQ(run.changed.size(), 1u);
  EXPECT_EQ(run.changed[0].second, Outcome::became_user);
  auto u = store.find_user(addr("temp@acme.example")).value();
  EXPECT_EQ(u.role, core::Role::end_user);
  EXPECT_EQ(u.source, core::Source::discovery);
  EXPECT_EQ(store.list_audit({acme.id, 1})[0].actor, "discovery");
}

TEST_P(Lifecycle, OutboundFromAnUnknownSenderWithAutoAddCreatesTheUser) {
  set("auto_add_outbound", "true");
  EXPECT_EQ(discovery.record_clean_outbound(addr("sales@acme.example")), Outcome::became_user);
  auto u = store.find_user(addr("sales@acme.example")).value();
  EXPECT_EQ(u.role, core::Role::silent_user);  // the default role
}

TEST_P(Lifecycle, OutboundWithoutAutoAddIsDiscoveredAtOnce) {
  EXPECT_EQ(discovery.record_clean_outbound(addr("sales@acme.example")), Outcome::discovered);
  auto d = store.find_discovered(addr("sales@acme.example")).value();
  EXPECT_EQ(d.outbound_messages, 1);
  EXPECT_TRUE(d.discovered_at);
  EXPECT_EQ(discovery.record_clean_outbound(addr("sales@acme.example")), Outcome::counted);
  EXPECT_EQ(store.find_discovered(addr("sales@acme.example"))->outbound_messages, 2);
}

TEST_P(Lifecycle, DetectedAliasIsAddedWhenAutoAddIsOn) {
  auto alice = store.add_user({addr("first.last@acme.example"), "First", "Last"}, admin);
  set("inbound_threshold", "1");
  EXPECT_EQ(discovery.record_clean_inbound(addr("First.Last@acme.test")), Outcome::became_alias);
  auto alias = store.find_alias(addr("first.last@acme.test")).value();
  EXPECT_EQ(alias.user_id, alice.id);
  EXPECT_TRUE(store.list_discovered(acme.id).empty());
}

TEST_P(Lifecycle, DetectedAliasIsOnlySuggestedWhenAutoAddIsOff) {
  auto alice = store.add_user({addr("first.last@acme.example"), "First", "Last"}, admin);
  set("inbound_threshold", "1");
  set("auto_add_aliases", "false");
  EXPECT_EQ(discovery.record_clean_inbound(addr("first.last@acme.test")), Outcome::discovered);
  auto d = store.find_discovered(addr("first.last@acme.test")).value();
  EXPECT_EQ(d.suggested_alias_of, alice.id);
  EXPECT_FALSE(store.find_alias(addr("first.last@acme.test")));
}

TEST_P(Lifecycle, DiscoveryOffCountsNothing) {
  set("enabled", "false");
  EXPECT_EQ(discovery.record_clean_inbound(addr("x@acme.example")), Outcome::none);
  EXPECT_EQ(discovery.record_clean_outbound(addr("x@acme.example")), Outcome::none);
  EXPECT_TRUE(store.list_discovered(acme.id).empty());
}

// Many counts in one transaction (serve writes what came while the last batch was written):
// the same outcomes as one by one, in order, across companies, with discovery off for one.
TEST_P(Lifecycle, ABatchOfCountsDoesWhatOneByOneWould) {
  auto alice = store.add_user({addr("first.last@acme.example"), "First", "Last"}, admin);
  set("inbound_threshold", "2");
  const auto other = store.add_company({"other", "it@other.example", "", {}}, admin);
  store.add_domain(other.id, "other.example", core::Endpoint::parse("127.0.0.1:2526").value(),
                   admin);  // discovery off there
  using D = CleanMail::Direction;
  const std::vector<CleanMail> mails{
      {D::inbound, addr("new@acme.example")},       {D::inbound, addr("x@other.example")},
      {D::inbound, addr("new@acme.example")},       {D::inbound, addr("first.last@acme.test")},
      {D::inbound, addr("first.last@acme.test")},   {D::outbound, addr("sales@acme.example")},
      {D::inbound, addr("first.last@acme.example")}};
  const auto counted = discovery.record_clean(mails);
  std::vector<Outcome> outcomes;
  for (const auto& c : counted) {
    EXPECT_EQ(c.error, "");
    outcomes.push_back(c.outcome);
  }
  EXPECT_EQ(outcomes, (std::vector<Outcome>{Outcome::counted, Outcome::none, Outcome::discovered,
                                            Outcome::counted, Outcome::became_alias,
                                            Outcome::discovered, Outcome::none}));
  EXPECT_TRUE(store.find_discovered(addr("new@acme.example"))->discovered_at);
  EXPECT_EQ(store.find_alias(addr("first.last@acme.test"))->user_id, alice.id);
  EXPECT_EQ(store.find_discovered(addr("sales@acme.example"))->outbound_messages, 1);
  EXPECT_TRUE(store.list_discovered(other.id).empty());
}

// One count of a batch fails (its domain was removed after its mail came): the transaction is
// undone and each is counted alone, so the others count once, and that one says why.
TEST_P(Lifecycle, ACountThatFailsLeavesTheOthersOfItsBatchCounted) {
  using D = CleanMail::Direction;
  const auto counted = discovery.record_clean({{D::inbound, addr("one@acme.example")},
                                               {D::inbound, addr("x@gone.example")},
                                               {D::inbound, addr("two@acme.test")}});
  ASSERT_EQ(counted.size(), 3u);
  EXPECT_EQ(counted[0].outcome, Outcome::counted);
  EXPECT_EQ(counted[1].outcome, Outcome::none);
  EXPECT_NE(counted[1].error.find("gone.example"), std::string::npos) << counted[1].error;
  EXPECT_FALSE(counted[1].again) << "refused, not for want of the database: not worth retrying";
  EXPECT_EQ(counted[2].outcome, Outcome::counted);
  EXPECT_EQ(counted[0].error + counted[2].error, "");
  for (const char* a : {"one@acme.example", "two@acme.test"}) {
    EXPECT_EQ(store.find_discovered(addr(a))->clean_inbound.size(), 1u) << a << ": counted twice?";
  }
}

class Actions : public Lifecycle {
 protected:
  Actions() {
    set("inbound_threshold", "1");
    for (const char* a :
         {"one@acme.example", "two@acme.example", "three@acme.example", "four@acme.example"}) {
      discovery.record_clean_inbound(addr(a));
    }
    bob = store.add_user({addr("bob@acme.example"), "Bob", "B"}, admin);
  }
  core::User bob;
};

INSTANTIATE_TEST_SUITE_P(Databases, Actions,
                         ::testing::Values(store::sql::Dialect::sqlite,
                                           store::sql::Dialect::postgres),
                         [](const auto& p) { return testing::dialect_name(p.param); });

TEST_P(Actions, EveryActionOfTheSelectMenu) {
  DiscoveredAction user{DiscoveredAction::Kind::create_user, addr("one@acme.example"), "One",
                        "Person"};
  DiscoveredAction functional{DiscoveredAction::Kind::create_functional, addr("two@acme.example")};
  DiscoveredAction invalid{DiscoveredAction::Kind::mark_invalid, addr("three@acme.example")};
  DiscoveredAction alias{DiscoveredAction::Kind::add_alias, addr("four@acme.example")};
  alias.alias_of = addr("bob@acme.example");
  discovery.apply(acme.id, {user, functional, invalid, alias}, admin);

  auto one = store.find_user(addr("one@acme.example")).value();
  EXPECT_EQ(one.first_name, "One");
  EXPECT_EQ(one.role, core::Role::silent_user);
  EXPECT_EQ(store.find_user(addr("two@acme.example"))->role, core::Role::functional);
  EXPECT_EQ(kind("three@acme.example"), AddressOwner::Kind::invalid);
  EXPECT_EQ(store.find_alias(addr("four@acme.example"))->user_id, bob.id);
  EXPECT_TRUE(store.list_discovered(acme.id).empty());
  for (const auto& e : store.list_audit({acme.id, 4})) EXPECT_EQ(e.actor, "admin:test");
}

TEST_P(Actions, AMixedSelectionWithOneBadAddressChangesNothing) {
  const auto events = store.list_audit({acme.id, 0}).size();
  DiscoveredAction good{DiscoveredAction::Kind::create_user, addr("one@acme.example")};
  DiscoveredAction also_good{DiscoveredAction::Kind::mark_invalid, addr("two@acme.example")};
  DiscoveredAction not_discovered{DiscoveredAction::Kind::create_user, addr("nobody@acme.example")};
  try {
    discovery.apply(acme.id, {good, also_good, not_discovered}, admin);
    ADD_FAILURE() << "expected a failure";
  } catch (const core::Failure& f) {
    EXPECT_EQ(f.code(), core::ErrorCode::not_found);
    EXPECT_NE(std::string(f.what()).find("nobody@acme.example is not on the discovered list"),
              std::string::npos);
  }
  EXPECT_EQ(store.list_discovered(acme.id).size(), 4u);
  EXPECT_FALSE(store.find_user(addr("one@acme.example")));
  EXPECT_EQ(store.list_audit({acme.id, 0}).size(), events);
}

TEST_P(Actions, AliasTargetMustBeAUserOfTheSameCompany) {
  auto globex = store.add_company({"globex", "", "", {}}, admin);
  store.add_domain(globex.id, "globex.example", core::Endpoint::parse("h").value(), admin);
  store.add_user({addr("hank@globex.example")}, admin);
  DiscoveredAction alias{DiscoveredAction::Kind::add_alias, addr("four@acme.example")};
  alias.alias_of = addr("hank@globex.example");
  EXPECT_THROW(discovery.apply(acme.id, {alias}, admin), core::Failure);
  alias.alias_of = addr("nobody@acme.example");
  EXPECT_THROW(discovery.apply(acme.id, {alias}, admin), core::Failure);
  EXPECT_EQ(kind("four@acme.example"), AddressOwner::Kind::discovered);
}

TEST_P(Actions, AnotherCompanysDiscoveredAddressIsNotFound) {
  auto globex = store.add_company({"globex", "", "", {}}, admin);
  DiscoveredAction user{DiscoveredAction::Kind::create_user, addr("one@acme.example")};
  EXPECT_THROW(discovery.apply(globex.id, {user}, admin), core::Failure);
}

TEST_P(Actions, CreatingAUserFromTheInvalidListFixesIt) {
  store.add_invalid(addr("ghost@acme.example"), "expired", admin);
  auto u = discovery.create_user_from_invalid(addr("ghost@acme.example"), "G", "Host",
                                              core::Role::end_user, admin);
  EXPECT_EQ(u.role, core::Role::end_user);
  EXPECT_EQ(kind("ghost@acme.example"), AddressOwner::Kind::user);
  EXPECT_THROW(
      discovery.create_user_from_invalid(addr("nobody@acme.example"), "", "", std::nullopt, admin),
      core::Failure);
}

}  // namespace
}  // namespace mailroster::lifecycle
