// gateway::Lookups over a store of its own (as serve's SMTP path has), while another store on the
// same database (the CLI, the admin API, another node) changes what it answers: on both
// databases, every change is seen, and without changes the answers come from memory.
#include "gateway/lookups.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "store/sql/sql_store.hpp"
#include "test_support.hpp"

namespace mailroster::gateway {
namespace {

using core::Address;
using store::AddressOwner;
using store::sql::Dialect;
using namespace std::chrono_literals;

Address addr(const char* text) { return Address::parse(text).value(); }

class LookupsTest : public ::testing::TestWithParam<Dialect> {
 protected:
  // Asks until `done` (PostgreSQL delivers another connection's notification asynchronously,
  // in well under a second here); whether it came within 10 s.
  static bool eventually(const std::function<bool()>& done) {
    for (int i = 0; i < 1000; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  testing::TestDatabase database{GetParam()};
  core::ManualClock clock{core::TimePoint{std::chrono::sys_days{std::chrono::November / 2 / 2026}}};
  std::unique_ptr<store::sql::SqlStore> writer = database.open(clock);  // another process
  std::unique_ptr<store::sql::SqlStore> reader = database.open(clock);  // serve's SMTP path
  core::Actor actor{"test"};
  core::Company acme = [this] {
    auto c = writer->add_company({"acme", "", "", {}}, actor);
    writer->add_domain(c.id, "acme.example", core::Endpoint::parse("127.0.0.1:2526").value(),
                       actor);
    return c;
  }();
};

INSTANTIATE_TEST_SUITE_P(Databases, LookupsTest,
                         ::testing::Values(Dialect::sqlite, Dialect::postgres),
                         [](const auto& p) { return testing::dialect_name(p.param); });

TEST_P(LookupsTest, AnswersFromMemoryUntilAnotherConnectionChangesWhatItRead) {
  Lookups lookups(*reader);
  EXPECT_EQ(lookups.resolve(addr("ann@acme.example")).kind, AddressOwner::Kind::none);
  ASSERT_TRUE(lookups.find_domain("ACME.example"));
  EXPECT_FALSE(lookups.discovery_settings(acme.id).enabled);
  EXPECT_FALSE(lookups.directory_sync_hours(acme.id));
  const auto misses = lookups.stats().misses;
  EXPECT_EQ(misses, 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(lookups.resolve(addr("Ann@acme.example")).kind, AddressOwner::Kind::none);
    EXPECT_TRUE(lookups.find_domain("acme.example"));
    EXPECT_FALSE(lookups.discovery_settings(acme.id).enabled);
  }
  EXPECT_EQ(lookups.stats().misses, misses);
  EXPECT_EQ(lookups.stats().hits, 9u);

  // A user added elsewhere: the next answer says so.
  store::NewUser ann;
  ann.address = addr("ann@acme.example");
  writer->add_user(ann, actor);
  EXPECT_TRUE(eventually(
      [&] { return lookups.resolve(addr("ann@acme.example")).kind == AddressOwner::Kind::user; }));
  EXPECT_GE(lookups.stats().clears, 1u);

  // Marked invalid, settings, destination, relay networks: each seen.
  EXPECT_EQ(lookups.resolve(addr("old@acme.example")).kind, AddressOwner::Kind::none);
  writer->add_invalid(addr("old@acme.example"), "gone", actor);
  EXPECT_TRUE(eventually([&] {
    return lookups.resolve(addr("old@acme.example")).kind == AddressOwner::Kind::invalid;
  }));
  auto settings = writer->discovery_settings(acme.id);
  settings.enabled = true;
  writer->set_discovery_settings(acme.id, settings, actor);
  EXPECT_TRUE(eventually([&] { return lookups.discovery_settings(acme.id).enabled; }));
  const auto domain = writer->find_domain("acme.example").value();
  writer->set_domain_destination(domain.id, core::Endpoint::parse("127.0.0.1:2600").value(), actor);
  EXPECT_TRUE(eventually(
      [&] { return lookups.find_domain("acme.example")->destination.hosts.at(0).port == 2600; }));
  EXPECT_TRUE(lookups.companies_of("192.0.2.7").empty());
  store::CompanyChange networks;
  networks.relay_networks = std::vector{core::Cidr::parse("192.0.2.0/24").value()};
  writer->update_company(acme.id, networks, actor);
  EXPECT_TRUE(eventually([&] { return lookups.companies_of("192.0.2.7").size() == 1; }));
  EXPECT_TRUE(lookups.companies_of("198.51.100.1").empty());
  EXPECT_TRUE(lookups.companies_of("not an address").empty());
}

// A delivery's discovery count changes only discovered addresses, which the SMTP path treats
// as unknown: on PostgreSQL it leaves what is in memory alone. (SQLite can only tell that the
// file changed.)
class LookupsPostgresTest : public LookupsTest {};
INSTANTIATE_TEST_SUITE_P(Databases, LookupsPostgresTest, ::testing::Values(Dialect::postgres),
                         [](const auto& p) { return testing::dialect_name(p.param); });

TEST_P(LookupsPostgresTest, ADiscoveryCountDoesNotDropWhatIsInMemory) {
  Lookups lookups(*reader);
  EXPECT_EQ(lookups.resolve(addr("carol@acme.example")).kind, AddressOwner::Kind::none);
  core::DiscoveredAddress d;
  d.address = addr("carol@acme.example");
  d.first_seen = clock.now();
  d.clean_inbound = {clock.now()};
  const auto before = lookups.stats();
  writer->save_discovered(d, actor);
  // Nothing to hear (a notification would come within milliseconds here): still from memory.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(lookups.resolve(addr("carol@acme.example")).kind, AddressOwner::Kind::none);
  EXPECT_EQ(lookups.stats().clears, before.clears);
  EXPECT_EQ(lookups.stats().hits, before.hits + 1);
  // A user added is heard of, as ever.
  store::NewUser dave;
  dave.address = addr("dave@acme.example");
  EXPECT_EQ(lookups.resolve(dave.address).kind, AddressOwner::Kind::none);
  writer->add_user(dave, actor);
  EXPECT_TRUE(eventually(
      [&] { return lookups.resolve(addr("dave@acme.example")).kind == AddressOwner::Kind::user; }));
  EXPECT_EQ(lookups.stats().clears, before.clears + 1);
}

// serve polls now and then, so that an idle node reads what it has been told (PostgreSQL
// would otherwise keep notifications waiting on the connection).
TEST_P(LookupsTest, APollHearsOfAChangeWithoutALookup) {
  Lookups lookups(*reader);
  EXPECT_EQ(lookups.resolve(addr("erin@acme.example")).kind, AddressOwner::Kind::none);
  const auto clears = lookups.stats().clears;
  lookups.poll();
  EXPECT_EQ(lookups.stats().clears, clears);
  store::NewUser erin;
  erin.address = addr("erin@acme.example");
  writer->add_user(erin, actor);
  EXPECT_TRUE(eventually([&] {
    lookups.poll();
    return lookups.stats().clears > clears;
  }));
  EXPECT_EQ(lookups.stats().entries, 0u);
  EXPECT_EQ(lookups.resolve(addr("erin@acme.example")).kind, AddressOwner::Kind::user);
}

TEST_P(LookupsTest, EachKindStartsAgainEmptyPastItsBound) {
  Lookups lookups(*reader, 3);
  ASSERT_TRUE(lookups.find_domain("acme.example"));
  for (const char* a :
       {"a@acme.example", "b@acme.example", "c@acme.example", "d@acme.example", "e@acme.example"}) {
    EXPECT_EQ(lookups.resolve(addr(a)).kind, AddressOwner::Kind::none);
    EXPECT_LE(lookups.stats().entries, 4u);  // at most 3 owners, and the domain
  }
  const auto hits = lookups.stats().hits;
  ASSERT_TRUE(lookups.find_domain("acme.example"));
  EXPECT_EQ(lookups.stats().hits, hits + 1) << "the addresses did not push the domain out";
}

}  // namespace
}  // namespace mailroster::gateway
