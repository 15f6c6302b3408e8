// Thursday reports captured by a test SMTP server, with an injected clock.
#include "reports/maintenance.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <future>

#include "reports/weekly_report.hpp"
#include "smtp/server.hpp"
#include "store/sql/sql_store.hpp"
#include "test_support.hpp"

namespace mailroster::reports {
namespace {

namespace asio = boost::asio;
using core::Address;
using namespace std::chrono;

Address addr(const char* text) { return Address::parse(text).value(); }

struct Captured {
  std::string from;
  std::vector<std::string> to;
  std::string message;
};

// The configured SMTP relay: keeps what it is given.
class CapturingRelay final : public smtp::SessionHandler {
 public:
  std::vector<Captured> messages;
  smtp::Reply on_connect(const smtp::SessionInfo&) override { return {220, "ok"}; }
  asio::awaitable<smtp::Reply> on_mail(const smtp::SessionInfo&,
                                       const smtp::Transaction&) override {
    co_return smtp::Reply{250, "2.1.0 ok"};
  }
  asio::awaitable<smtp::Reply> on_rcpt(const smtp::SessionInfo&, const smtp::Transaction&,
                                       const smtp::Command&) override {
    co_return smtp::Reply{250, "2.1.5 ok"};
  }
  asio::awaitable<smtp::Reply> on_message(const smtp::SessionInfo&, const smtp::Transaction& tx,
                                          std::string message) override {
    messages.push_back({tx.mail_from, tx.recipients, std::move(message)});
    co_return smtp::Reply{250, "2.0.0 queued"};
  }
  void on_disconnect(const smtp::SessionInfo&) override {}
};

// Thursday 26 November 2026, 07:00 UTC.
const core::TimePoint kThursday = core::TimePoint{sys_days{2026y / November / 26}} + hours{7};

class Reports : public ::testing::TestWithParam<store::sql::Dialect> {
 protected:
  Reports()
      : clock(kThursday - days{6}),  // the Friday before
        store(database.open(clock)),
        discovery(std::make_unique<lifecycle::DiscoveryService>(*store, clock)),
        relay_server(io, smtp::ServerSettings{.listen = {"127.0.0.1", 0}}, relay),
        pool(io,
             smtp::ClientSettings{.connect_timeout = seconds(2), .command_timeout = seconds(2)}) {
    relay_server.start();
    acme = store->add_company({"acme", "it@acme.example", "boss@acme.example", {}}, admin);
    for (const char* d : {"acme.example", "acme.test"}) {
      store->add_domain(acme.id, d, core::Endpoint::parse("127.0.0.1:2526").value(), admin);
    }
    core::DiscoverySettings s;
    s.enabled = true;
    s.inbound_threshold = 1;
    store->set_discovery_settings(acme.id, s, admin);
  }

  MaintenanceResult run_at(core::TimePoint now) {
    clock.set(now);
    Maintenance m(*store, *discovery, pool,
                  {.relay = core::Endpoint{"127.0.0.1", relay_server.port()},
                   .from = "mailroster@mx.test",
                   .hostname = "mx.test"},
                  store_thread.get_executor());
    MaintenanceResult result;
    bool done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          result = co_await m.run(now);
          done = true;
          io.stop();
        },
        asio::detached);
    io.restart();
    io.run_for(seconds(20));
    EXPECT_TRUE(done);
    return result;
  }

  void restart_store() {
    discovery.reset();
    store = database.open(clock);
    discovery = std::make_unique<lifecycle::DiscoveryService>(*store, clock);
  }

  testing::TempDir dir;
  testing::TestDatabase database{GetParam()};
  core::ManualClock clock;
  std::unique_ptr<store::sql::SqlStore> store;
  std::unique_ptr<lifecycle::DiscoveryService> discovery;
  asio::io_context io;
  CapturingRelay relay;
  smtp::Server relay_server;
  smtp::ClientPool pool;
  asio::thread_pool store_thread{1};
  core::Actor admin{"admin:test"};
  core::Company acme;
};

INSTANTIATE_TEST_SUITE_P(Databases, Reports,
                         ::testing::Values(store::sql::Dialect::sqlite,
                                           store::sql::Dialect::postgres),
                         [](const auto& p) { return testing::dialect_name(p.param); });

TEST_P(Reports, ThursdayReportListsTheWeekAndGoesToBothContacts) {
  // Friday: Alice is created with an alias; a discovered address appears.
  auto alice = store->add_user({addr("alice@acme.example"), "Alice", "Liddell"}, admin);
  store->add_alias(alice.id, addr("a.liddell@acme.example"), admin);
  discovery->record_clean_inbound(addr("new.hire@acme.example"));
  // Two weeks earlier already: an old user that must not be listed.
  clock.set(kThursday - days{20});
  store->add_user({addr("old@acme.example")}, admin);

  const auto result = run_at(kThursday);
  ASSERT_EQ(result.reports_sent, std::vector<std::string>{"acme"});
  ASSERT_EQ(relay.messages.size(), 1u);
  const auto& m = relay.messages[0];
  EXPECT_EQ(m.from, "mailroster@mx.test");
  EXPECT_EQ(m.to, (std::vector<std::string>{"it@acme.example", "boss@acme.example"}));
  EXPECT_NE(m.message.find("To: it@acme.example, boss@acme.example\r\n"), std::string::npos);
  EXPECT_NE(m.message.find("Subject: SMTP Discovery weekly report for acme (2026-11-26)\r\n"),
            std::string::npos);
  EXPECT_NE(m.message.find("Content-Type: text/plain; charset=UTF-8\r\n"), std::string::npos);
  EXPECT_NE(m.message.find("MIME-Version: 1.0\r\n"), std::string::npos);

  const auto report = build_report(*store, acme, kThursday);
  const auto text = render_text(report);
  EXPECT_NE(text.find("New users (1)"), std::string::npos) << text;
  EXPECT_NE(text.find("alice@acme.example"), std::string::npos);
  // Role and source as people read them, not their keys.
  EXPECT_NE(text.find("  end user  added by hand  "), std::string::npos) << text;
  EXPECT_EQ(text.find("end_user"), std::string::npos) << text;
  EXPECT_EQ(text.find("old@acme.example"), std::string::npos);
  EXPECT_NE(text.find("New aliases (1)"), std::string::npos);
  EXPECT_NE(text.find("a.liddell@acme.example  alice@acme.example"), std::string::npos) << text;
  // Discovered on Friday 20 Nov: expires 11 Dec, after the next report (3 Dec): not listed.
  EXPECT_NE(text.find("expiring before the next report (0)"), std::string::npos) << text;
}

// With its new users, the report says how many users are licensed now, and how many were
// when the week began (the last count of the day before, when maintenance counted one).
TEST_P(Reports, TheReportSaysHowManyUsersAreLicensedNowAndBefore) {
  store->add_user({addr("old@acme.example")}, admin);
  auto text = render_text(build_report(*store, acme, kThursday));
  EXPECT_NE(text.find("Licensed users: 1 now\n"), std::string::npos) << text;
  const core::TimePoint wednesday{sys_days{2026y / November / 18}};  // before the week
  store->record_license_usage(wednesday + hours{23});
  store->add_user({addr("alice@acme.example")}, admin);
  store->add_user({addr("bob@acme.example")}, admin);
  store->record_license_usage(wednesday + days{1} + hours{1});  // in the week: not its start
  text = render_text(build_report(*store, acme, kThursday));
  EXPECT_NE(text.find("Licensed users: 3 now (1 when the week began)\n"), std::string::npos)
      << text;
  auto settings = store->discovery_settings(acme.id);
  settings.report_new_users = false;  // no user section, no count
  store->set_discovery_settings(acme.id, settings, admin);
  text = render_text(build_report(*store, acme, kThursday));
  EXPECT_EQ(text.find("Licensed users"), std::string::npos) << text;
}

// Of the licensed users, the report counts those with no clean mail for 90 days when the week
// ended: a user whose last mail is older, and one that never had any and was created before;
// not one with recent mail, nor one too new to say.
TEST_P(Reports, TheReportCountsTheUsersWithNoMailFor90Days) {
  const auto week_end = core::TimePoint{floor<days>(kThursday)};
  clock.set(week_end - days{200});
  store->add_user({addr("never@acme.example")}, admin);
  const auto long_ago = store->add_user({addr("long.ago@acme.example")}, admin);
  const auto lately = store->add_user({addr("lately@acme.example")}, admin);
  store->record_mail({long_ago.id}, week_end - days{91});
  store->record_mail({lately.id}, week_end - days{89});
  clock.set(week_end - days{89});
  store->add_user({addr("new@acme.example")}, admin);
  clock.set(kThursday);
  auto text = render_text(build_report(*store, acme, kThursday));
  EXPECT_NE(text.find("Licensed users: 4 now\n  of which 2 had no mail for 90 days "),
            std::string::npos)
      << text;
  store->record_mail({long_ago.id}, week_end - days{1});
  text = render_text(build_report(*store, acme, kThursday));
  EXPECT_NE(text.find("  of which 1 had no mail for 90 days "), std::string::npos) << text;
  store->record_mail({store->find_user(addr("never@acme.example"))->id}, week_end);
  text = render_text(build_report(*store, acme, kThursday));
  EXPECT_EQ(text.find("no mail for"), std::string::npos) << text;  // none: no line
}

// The company's directory syncs: each with its schedule and last success; one whose last
// attempt failed is told, even in a week with nothing else to tell.
TEST_P(Reports, AFailingDirectorySyncIsToldEvenInAQuietWeek) {
  run_at(kThursday - days{7});  // the week before: nothing
  EXPECT_TRUE(relay.messages.empty());
  store::DirectorySync sync;
  sync.company_id = acme.id;
  sync.kind = core::Source::ldap;
  sync.settings = "{}";
  sync.options = "{}";
  sync.frequency_hours = 6;
  store->save_directory_sync(sync, std::string("sealed"), admin);
  store->record_sync_outcome(acme.id, core::Source::ldap, kThursday - days{2},
                             {.success = true, .result = "{}"});
  auto text = render_text(build_report(*store, acme, kThursday));
  EXPECT_NE(text.find("Directory sync\n  Active Directory (LDAP), every 6 hours: last success "
                      "2026-11-24T07:00:00Z\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("FAILING"), std::string::npos);
  EXPECT_TRUE(build_report(*store, acme, kThursday).empty());  // a healthy sync alone: quiet

  store->record_sync_outcome(acme.id, core::Source::ldap, kThursday - days{1},
                             {.success = false, .error = "ldap sync failed: bind refused"});
  const auto report = build_report(*store, acme, kThursday);
  EXPECT_FALSE(report.empty());
  text = render_text(report);
  EXPECT_NE(text.find("    FAILING: the last attempt (2026-11-25T07:00:00Z) failed: ldap sync "
                      "failed: bind refused\n"),
            std::string::npos)
      << text;
  run_at(kThursday);
  ASSERT_EQ(relay.messages.size(), 1u);  // sent, though no user, alias or address is new
  EXPECT_NE(relay.messages[0].message.find("FAILING"), std::string::npos);
}

TEST_P(Reports, NotSentTwiceNotEvenAcrossARestart) {
  store->add_user({addr("alice@acme.example")}, admin);
  run_at(kThursday);
  ASSERT_EQ(relay.messages.size(), 1u);
  run_at(kThursday + hours{2});
  EXPECT_EQ(relay.messages.size(), 1u);
  restart_store();
  run_at(kThursday + hours{4});
  EXPECT_EQ(relay.messages.size(), 1u);
  // The next Thursday is a new week.
  store->add_user({addr("bob@acme.example")}, admin);
  run_at(kThursday + days{7});
  EXPECT_EQ(relay.messages.size(), 2u);
}

TEST_P(Reports, OnlyOnThursdays) {
  store->add_user({addr("alice@acme.example")}, admin);
  for (int d = 1; d < 7; ++d) run_at(kThursday + days{d});
  EXPECT_TRUE(relay.messages.empty());
}

TEST_P(Reports, AdminContactOnlyWhenTheOptionIsOn) {
  auto s = store->discovery_settings(acme.id);
  s.report_include_admin = false;
  store->set_discovery_settings(acme.id, s, admin);
  store->add_user({addr("alice@acme.example")}, admin);
  run_at(kThursday);
  ASSERT_EQ(relay.messages.size(), 1u);
  EXPECT_EQ(relay.messages[0].to, std::vector<std::string>{"it@acme.example"});
}

TEST_P(Reports, NoReportWhenBothReportSettingsAreOff) {
  auto s = store->discovery_settings(acme.id);
  s.report_new_users = false;
  s.report_new_aliases = false;
  store->set_discovery_settings(acme.id, s, admin);
  store->add_user({addr("alice@acme.example")}, admin);
  run_at(kThursday);
  EXPECT_TRUE(relay.messages.empty());
}

TEST_P(Reports, ExpiringAddressesAreListedAndCounted) {
  clock.set(kThursday - days{15});  // discovered 15 days before: expires in 6 days
  discovery->record_clean_inbound(addr("temp@acme.example"));
  run_at(kThursday);
  ASSERT_EQ(relay.messages.size(), 1u);
  const auto text = render_text(build_report(*store, acme, kThursday));
  EXPECT_NE(text.find("expiring before the next report (1)"), std::string::npos) << text;
  EXPECT_NE(text.find("temp@acme.example"), std::string::npos);
  EXPECT_EQ(store->find_discovered(addr("temp@acme.example"))->notifications_sent, 1);
}

// A first import creates a whole directory in one week: the report lists the first
// kListed users and aliases (a mail of every one would be too large to send) and counts them all.
TEST_P(Reports, LongListsAreCutAndCounted) {
  const auto n = WeeklyReport::kListed + 234;
  for (std::size_t i = 0; i < n; ++i) {
    char name[40];
    std::snprintf(name, sizeof name, "u%05zu@acme.example", i);
    auto u = store->add_user({addr(name)}, admin);
    if (i < 2)
      store->add_alias(u.id, addr(("alias" + std::to_string(i) + "@acme.example").c_str()), admin);
  }
  const auto report = build_report(*store, acme, kThursday);
  EXPECT_EQ(report.new_users.size(), WeeklyReport::kListed);
  EXPECT_EQ(report.new_users_total, n);
  EXPECT_EQ(report.new_aliases_total, 2u);
  const auto text = render_text(report);
  EXPECT_NE(text.find("New users (" + std::to_string(n) + ")"), std::string::npos);
  EXPECT_NE(text.find("u00999@acme.example"), std::string::npos);  // the last listed
  EXPECT_EQ(text.find("u01000@acme.example"), std::string::npos);
  EXPECT_NE(text.find("  ... and 234 more, not listed here (the Users page lists them all)"),
            std::string::npos)
      << text.substr(text.size() - 600);
  EXPECT_NE(text.find("New aliases (2)"), std::string::npos);
  EXPECT_EQ(text.find("more, not listed here (each user"), std::string::npos);  // none left out
  const auto result = run_at(kThursday);
  ASSERT_EQ(result.reports_sent, std::vector<std::string>{"acme"});
  EXPECT_LT(relay.messages[0].message.size(), 200'000u);
}

TEST_P(Reports, RelayDownMeansRetryNotLoss) {
  store->add_user({addr("alice@acme.example")}, admin);
  relay_server.stop();
  io.restart();
  io.poll();
  auto failed = run_at(kThursday);
  EXPECT_EQ(failed.reports_failed.size(), 1u);
  EXPECT_FALSE(store->report_sent(acme.id, "2026-11-26"));
}

TEST_P(Reports, MaintenanceExpiresUnhandledAddresses) {
  discovery->record_clean_inbound(addr("temp@acme.example"));
  const auto result = run_at(clock.now() + days{21});
  ASSERT_EQ(result.expiry.changed.size(), 1u);
  EXPECT_EQ(store->resolve(addr("temp@acme.example")).kind, store::AddressOwner::Kind::invalid);
}

// Each run counts the day's licensed users, after expiry: a user that expiry made is in the
// count of the run that made it.
TEST_P(Reports, EachRunCountsTheDaysLicensedUsersAfterExpiry) {
  auto s = store->discovery_settings(acme.id);
  s.expired_to_new_user = true;
  store->set_discovery_settings(acme.id, s, admin);
  store->add_user({addr("alice@acme.example")}, admin);
  discovery->record_clean_inbound(addr("temp@acme.example"));
  const auto at = clock.now() + days{21};
  const auto result = run_at(at);
  ASSERT_EQ(result.expiry.changed.size(), 1u);
  ASSERT_EQ(result.usage.size(), 1u);
  EXPECT_EQ(result.usage[0].users, 2);
  const auto day = core::format_day(at);
  const auto usage = store->license_usage({.company_id = acme.id, .from = day, .to = day});
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].users, 2);
  EXPECT_EQ(usage[0].from_discovery, 1);
  EXPECT_EQ(usage[0].counted_at, at);
}

// While an import or a sync holds the store, a maintenance run waits for it on its own
// thread: the I/O thread (SMTP's, in serve) goes on.
TEST_P(Reports, TheIoThreadRunsOnWhileTheStoreIsBusy) {
  discovery->record_clean_inbound(addr("temp@acme.example"));
  std::promise<void> release;
  std::promise<void> holding;
  std::thread busy([&] {
    store->atomically([&] {
      holding.set_value();
      release.get_future().wait_for(seconds(10));
    });
  });
  holding.get_future().wait();
  bool ticked = false, done = false;
  asio::steady_timer tick(io, milliseconds(100));
  tick.async_wait([&](const boost::system::error_code&) {
    ticked = !done;  // the I/O thread ran while the run was still waiting for the store
    release.set_value();
  });
  MaintenanceResult result;
  Maintenance m(*store, *discovery, pool,
                {.relay = core::Endpoint{"127.0.0.1", relay_server.port()}},
                store_thread.get_executor());
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        result = co_await m.run(clock.now() + days{21});
        done = true;
        io.stop();
      },
      asio::detached);
  io.restart();
  io.run_for(seconds(20));
  busy.join();
  EXPECT_TRUE(ticked);
  EXPECT_TRUE(done);
  EXPECT_EQ(result.expiry.changed.size(), 1u);
}

TEST(QuotedPrintable, EncodesUtf8AndLongLines) {
  EXPECT_EQ(quoted_printable("J\xC3\xBCrgen = 1\n"), "J=C3=BCrgen =3D 1\r\n");
  EXPECT_EQ(quoted_printable("trailing space \n"), "trailing space=20\r\n");
  const auto long_line = quoted_printable(std::string(100, 'a') + "\n");
  EXPECT_EQ(long_line, std::string(75, 'a') + "=\r\n" + std::string(25, 'a') + "\r\n");
}

}  // namespace
}  // namespace mailroster::reports
