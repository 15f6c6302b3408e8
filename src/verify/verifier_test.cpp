// The verifier against a real SMTP server on loopback (our own smtp::Server with a scripted
// handler standing in for the company's mail server), with an injected clock for the TTLs.
#include "verify/verifier.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>

#include "smtp/server.hpp"

namespace mailroster::verify {
namespace {

namespace asio = boost::asio;
using namespace std::chrono;

// The company's mail server: answers RCPT from a table, optionally slowly, and counts.
class ScriptedMta final : public smtp::SessionHandler {
 public:
  std::map<std::string, smtp::Reply> replies;  // by lower-case address
  smtp::Reply otherwise{550, "5.1.1 user unknown"};
  milliseconds delay{0};
  int rcpts = 0;
  int in_flight = 0;
  int max_in_flight = 0;
  smtp::Reply greeting{220, "ok"};
  int sessions = 0;

  smtp::Reply on_connect(const smtp::SessionInfo&) override {
    ++sessions;
    return greeting;
  }
  asio::awaitable<smtp::Reply> on_mail(const smtp::SessionInfo&,
                                       const smtp::Transaction&) override {
    co_return smtp::Reply{250, "2.1.0 ok"};
  }
  asio::awaitable<smtp::Reply> on_rcpt(const smtp::SessionInfo&, const smtp::Transaction&,
                                       const smtp::Command& c) override {
    ++rcpts;
    max_in_flight = std::max(max_in_flight, ++in_flight);
    if (delay.count() > 0) {
      asio::steady_timer t(co_await asio::this_coro::executor, delay);
      co_await t.async_wait(asio::use_awaitable);
    }
    --in_flight;
    auto it = replies.find(core::ascii_lower(c.path));
    co_return it != replies.end() ? it->second : otherwise;
  }
  asio::awaitable<smtp::Reply> on_message(const smtp::SessionInfo&, const smtp::Transaction&,
                                          std::string) override {
    co_return smtp::Reply{250, "2.0.0 ok"};
  }
  void on_disconnect(const smtp::SessionInfo&) override {}
};

class VerifierTest : public ::testing::Test {
 protected:
  VerifierTest()
      : clock(core::TimePoint{sys_days{2026y / November / 2}}),
        server(io, smtp::ServerSettings{.listen = {"127.0.0.1", 0}}, mta),
        pool(io,
             smtp::ClientSettings{.connect_timeout = seconds(2), .command_timeout = seconds(2)}) {
    server.start();
    destination = core::Endpoint{"127.0.0.1", server.port()};
    mta.replies["alice@acme.example"] = {250, "2.1.5 ok"};
  }

  std::unique_ptr<Verifier> make(VerifySettings s = {}) {
    return std::make_unique<Verifier>(pool, s, clock);
  }

  // A port nothing listens on: a server that is down.
  core::Endpoint dead_server() {
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    return core::Endpoint{"127.0.0.1", a.local_endpoint().port()};
  }

  // Runs verifications concurrently and returns their results in order.
  std::vector<VerifyResult> run(Verifier& v, const std::vector<std::string>& addresses) {
    std::vector<VerifyResult> results(addresses.size());
    int done = 0;
    for (std::size_t i = 0; i < addresses.size(); ++i) {
      asio::co_spawn(
          io,
          [&, i]() -> asio::awaitable<void> {
            results[i] = co_await v.verify(destination, core::Address::parse(addresses[i]).value());
            if (++done == static_cast<int>(addresses.size())) io.stop();
          },
          asio::detached);
    }
    io.restart();
    io.run_for(seconds(20));
    EXPECT_EQ(done, static_cast<int>(addresses.size()));
    return results;
  }

  VerifyResult one(Verifier& v, const std::string& address) { return run(v, {address}).front(); }

  asio::io_context io;
  core::ManualClock clock;
  ScriptedMta mta;
  smtp::Server server;
  smtp::ClientPool pool;
  core::Destination destination;
};

TEST_F(VerifierTest, AcceptIsCachedForThePositiveTtl) {
  auto v = make();
  auto first = one(*v, "alice@acme.example");
  EXPECT_EQ(first.verdict, Verdict::accept);
  EXPECT_FALSE(first.cached);
  EXPECT_EQ(first.probe.reply.code, 250);
  const int probes = mta.rcpts;
  auto second = one(*v, "ALICE@acme.example");
  EXPECT_EQ(second.verdict, Verdict::accept);
  EXPECT_TRUE(second.cached);
  EXPECT_EQ(mta.rcpts, probes);
  clock.advance(hours(11));
  EXPECT_TRUE(one(*v, "alice@acme.example").cached);
  EXPECT_EQ(v->stats().cache_hits, 2u);
}

TEST_F(VerifierTest, RejectIsCachedForTheNegativeTtlOnly) {
  auto v = make();
  EXPECT_EQ(one(*v, "nobody@acme.example").verdict, Verdict::reject);
  const int probes = mta.rcpts;
  EXPECT_TRUE(one(*v, "nobody@acme.example").cached);
  EXPECT_EQ(mta.rcpts, probes);
  clock.advance(minutes(16));
  mta.replies["nobody@acme.example"] = {250, "2.1.5 ok now"};  // the mailbox was created
  auto later = one(*v, "nobody@acme.example");
  EXPECT_EQ(later.verdict, Verdict::accept);
  EXPECT_FALSE(later.cached);
}

TEST_F(VerifierTest, TemporaryFailuresAreNeverCached) {
  auto v = make();
  mta.otherwise = {451, "4.3.0 try later"};
  auto r = one(*v, "bob@acme.example");
  EXPECT_EQ(r.verdict, Verdict::try_later);
  EXPECT_EQ(r.probe.reply.code, 451);
  mta.otherwise = {250, "2.1.5 ok"};
  EXPECT_EQ(one(*v, "bob@acme.example").verdict, Verdict::accept);
  EXPECT_EQ(v->stats().probes, 2u);
}

TEST_F(VerifierTest, AFailedProbeNeverClobbersACachedPositive) {
  auto v = make();
  ASSERT_EQ(one(*v, "alice@acme.example").verdict, Verdict::accept);
  // Past the refresh time the verifier probes again; the destination is in trouble.
  clock.advance(hours(13));
  mta.replies["alice@acme.example"] = {451, "4.3.0 directory unavailable"};
  auto refresh = one(*v, "alice@acme.example");
  EXPECT_EQ(refresh.verdict, Verdict::accept);
  EXPECT_TRUE(refresh.cached);
  // Past the expiry the old positive is gone, and the failure shows.
  clock.advance(hours(24 * 7));
  EXPECT_EQ(one(*v, "alice@acme.example").verdict, Verdict::try_later);
  // A real rejection does replace a positive.
  mta.replies["alice@acme.example"] = {250, "2.1.5 ok"};
  ASSERT_EQ(one(*v, "alice@acme.example").verdict, Verdict::accept);
  clock.advance(hours(13));
  mta.replies["alice@acme.example"] = {550, "5.1.1 gone"};
  EXPECT_EQ(one(*v, "alice@acme.example").verdict, Verdict::reject);
}

TEST_F(VerifierTest, DestinationDownIsTryLaterNotReject) {
  auto v = make();
  server.stop();
  io.restart();
  io.poll();
  auto r = one(*v, "alice@acme.example");
  EXPECT_EQ(r.verdict, Verdict::try_later);
  EXPECT_EQ(r.probe.failure, smtp::ClientFailure::connect);
  EXPECT_EQ(v->stats().cache_entries, 0u);
}

TEST_F(VerifierTest, ConcurrentVerificationsOfOneAddressShareOneProbe) {
  auto v = make();
  mta.delay = milliseconds(100);
  const auto results = run(*v, std::vector<std::string>(10, "alice@acme.example"));
  for (const auto& r : results) EXPECT_EQ(r.verdict, Verdict::accept);
  EXPECT_EQ(v->stats().probes, 1u);
  EXPECT_EQ(v->stats().shared_waits, 9u);
}

TEST_F(VerifierTest, ProbesPerDestinationAreBounded) {
  VerifySettings s;
  s.max_probes_per_destination = 2;
  auto v = make(s);
  mta.delay = milliseconds(50);
  std::vector<std::string> many;
  for (int i = 0; i < 8; ++i) many.push_back("user" + std::to_string(i) + "@acme.example");
  const auto results = run(*v, many);
  for (const auto& r : results) EXPECT_EQ(r.verdict, Verdict::reject);
  EXPECT_EQ(v->stats().probes, 8u);
  EXPECT_LE(mta.max_in_flight, 2);
  EXPECT_GE(mta.max_in_flight, 1);
}

TEST_F(VerifierTest, CatchAllDestinationIsMarkedAcceptAll) {
  auto v = make();
  mta.otherwise = {250, "2.1.5 anything goes"};
  auto r = one(*v, "whoever@acme.example");
  EXPECT_EQ(r.verdict, Verdict::accept);
  EXPECT_TRUE(r.accept_all);
  EXPECT_TRUE(v->accept_all("acme.example"));
  EXPECT_TRUE(one(*v, "whoever@acme.example").accept_all);  // cached answers say so too
}

TEST_F(VerifierTest, NormalDestinationIsNotAcceptAll) {
  auto v = make();
  auto r = one(*v, "alice@acme.example");
  EXPECT_FALSE(r.accept_all);
  EXPECT_FALSE(v->accept_all("acme.example"));
}

// The domain's mail moved to another server: what the old one said is not used for the new
// one (not the positives, kept for days, nor the catch-all finding), and the new one's answers
// are cached as any.
TEST_F(VerifierTest, AnswersAreKeptPerDestination) {
  auto v = make();
  mta.otherwise = {250, "2.1.5 anything goes"};  // the old server takes any address
  ASSERT_EQ(one(*v, "alice@acme.example").verdict, Verdict::accept);
  ASSERT_TRUE(one(*v, "carol@acme.example").accept_all);
  ScriptedMta moved;  // the new server knows alice only
  moved.replies["alice@acme.example"] = {250, "2.1.5 ok"};
  smtp::Server other(io, smtp::ServerSettings{.listen = {"127.0.0.1", 0}}, moved);
  other.start();
  const auto old_destination = destination;
  destination = core::Endpoint{"127.0.0.1", other.port()};
  auto carol = one(*v, "carol@acme.example");
  EXPECT_EQ(carol.verdict, Verdict::reject);
  EXPECT_FALSE(carol.cached);
  auto alice = one(*v, "alice@acme.example");
  EXPECT_EQ(alice.verdict, Verdict::accept);
  EXPECT_FALSE(alice.cached);
  EXPECT_FALSE(alice.accept_all);  // the new server refused a random address
  EXPECT_FALSE(v->accept_all("acme.example"));
  EXPECT_EQ(moved.rcpts, 3);  // carol, alice, and the random address
  EXPECT_TRUE(one(*v, "alice@acme.example").cached);
  EXPECT_TRUE(one(*v, "carol@acme.example").cached);
  EXPECT_EQ(moved.rcpts, 3);
  destination = old_destination;  // and back: the old server is asked again
  EXPECT_FALSE(one(*v, "carol@acme.example").cached);
  other.stop();
}

// What `verify explain` shows of the cache: the answer verify() would use, with its times;
// nothing once expired, for another destination, or after a failure (never cached).
TEST_F(VerifierTest, TellsWhatIsCachedAsVerifyWouldUseIt) {
  auto v = make();
  const auto alice = core::Address::parse("alice@acme.example").value();
  const auto nobody = core::Address::parse("nobody@acme.example").value();
  EXPECT_FALSE(v->cached(destination, alice));
  const auto t0 = clock.now();
  ASSERT_EQ(one(*v, "alice@acme.example").verdict, Verdict::accept);
  ASSERT_EQ(one(*v, "nobody@acme.example").verdict, Verdict::reject);
  const auto a = v->cached(destination, core::Address::parse("Alice@acme.example").value());
  ASSERT_TRUE(a);
  EXPECT_EQ(a->verdict, Verdict::accept);
  EXPECT_EQ(a->probe.reply.code, 250);
  EXPECT_EQ(a->refresh_at, t0 + hours(12));
  EXPECT_EQ(a->expire_at, t0 + hours(24 * 7));
  EXPECT_FALSE(a->accept_all);
  const auto n = v->cached(destination, nobody);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->verdict, Verdict::reject);
  EXPECT_EQ(n->expire_at, t0 + minutes(15));
  EXPECT_FALSE(v->cached(dead_server(), alice));  // another server's answer says nothing
  clock.advance(minutes(16));
  EXPECT_FALSE(v->cached(destination, nobody));
  EXPECT_TRUE(v->cached(destination, alice));
  clock.advance(hours(24 * 7));
  EXPECT_FALSE(v->cached(destination, alice));
}

TEST_F(VerifierTest, FlushForgetsAddressesAndDomains) {
  auto v = make();
  one(*v, "alice@acme.example");
  one(*v, "nobody@acme.example");
  EXPECT_EQ(v->stats().cache_entries, 2u);
  EXPECT_EQ(v->flush_address(core::Address::parse("Alice@acme.example").value()), 1u);
  EXPECT_FALSE(one(*v, "alice@acme.example").cached);
  EXPECT_EQ(v->flush_domain("ACME.example"), 2u);
  EXPECT_EQ(v->stats().cache_entries, 0u);
  one(*v, "alice@acme.example");
  EXPECT_EQ(v->flush_all(), 1u);
}

// A destination of several servers: a server that is down, or greets with 421, hands the
// probe to the next; it is then passed over for server_retry, so it costs one failed attempt,
// not one per probe; with no time to rest it is tried first again at once.
TEST_F(VerifierTest, AServerThatCannotTakeASessionHandsTheProbeToTheNext) {
  ScriptedMta busy;
  busy.greeting = {421, "4.3.2 too busy"};
  smtp::Server busy_server(io, smtp::ServerSettings{.listen = {"127.0.0.1", 0}}, busy);
  busy_server.start();
  const auto live = destination.hosts.at(0);
  destination.hosts = {dead_server(), {"127.0.0.1", busy_server.port()}, live};
  auto v = make();
  EXPECT_EQ(one(*v, "alice@acme.example").verdict, Verdict::accept);
  EXPECT_EQ(one(*v, "nobody@acme.example").verdict, Verdict::reject);
  EXPECT_EQ(busy.sessions, 1);  // not asked again while it rests
  EXPECT_EQ(pool.passed_over(), 2u);
  EXPECT_EQ(mta.rcpts, 3);          // alice, the random address, nobody
  EXPECT_EQ(pool.connects(), 3u);   // the second probe reused the session with the third
  EXPECT_EQ(pool.failovers(), 2u);  // both went to a server other than the first

  smtp::ClientPool eager(io, smtp::ClientSettings{.connect_timeout = seconds(2),
                                                  .command_timeout = seconds(2),
                                                  .server_retry = seconds(0)});
  Verifier again(eager, {}, clock);
  EXPECT_EQ(one(again, "alice@acme.example").verdict, Verdict::accept);
  EXPECT_EQ(busy.sessions, 2);
  EXPECT_EQ(one(again, "carol@acme.example").verdict, Verdict::reject);
  EXPECT_EQ(busy.sessions, 3);  // first in line again
  EXPECT_EQ(eager.failovers(), 2u);
  EXPECT_EQ(eager.passed_over(), 0u);  // no time to rest
  busy_server.stop();
}

TEST_F(VerifierTest, NoServerTakingASessionIsTryLaterNamingEach) {
  const auto dead = dead_server();
  destination.hosts = {dead, {"127.0.0.1", static_cast<std::uint16_t>(dead.port)}};
  destination.hosts[1].host = "localhost";
  auto v = make();
  auto r = one(*v, "alice@acme.example");
  EXPECT_EQ(r.verdict, Verdict::try_later);
  EXPECT_EQ(r.probe.failure, smtp::ClientFailure::connect);
  EXPECT_NE(r.probe.detail.find("no server took a session: " + dead.str() + ": "),
            std::string::npos)
      << r.probe.detail;
  EXPECT_NE(r.probe.detail.find("; localhost:" + std::to_string(dead.port)), std::string::npos)
      << r.probe.detail;
  EXPECT_EQ(v->stats().cache_entries, 0u);
  EXPECT_EQ(mta.rcpts, 0);
}

}  // namespace
}  // namespace mailroster::verify
