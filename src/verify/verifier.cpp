#include "verify/verifier.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <random>
#include <unordered_map>

namespace mailroster::verify {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using core::TimePoint;

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::accept:
      return "accept";
    case Verdict::reject:
      return "reject";
    case Verdict::try_later:
      return "try_later";
  }
  return "?";
}

namespace {

// What one destination answered for an address. When the domain's mail moves to another
// server (a migration to a hosted mailbox service, a new relay), the old server's answers say
// nothing about the new one: an entry is used only for the destination that gave it.
struct CacheEntry {
  Verdict verdict;  // accept or reject; failures are never cached
  smtp::ClientResult probe;
  TimePoint refresh_at;
  TimePoint expire_at;
  std::string destination;  // the destination (Destination::str()) that answered
};

struct CatchAll {
  bool accept_all = false;
  TimePoint checked_at{};
  std::string destination;  // the destination (Destination::str()) that was tested
};

// A wake-up signal for coroutines on one thread: waiters sleep on a timer that never fires
// by itself; notify() cancels it.
struct Event {
  explicit Event(const asio::any_io_executor& ex)
      : timer(ex, asio::steady_timer::time_point::max()) {}
  awaitable<void> wait() {
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
  }
  void notify() { timer.cancel(); }
  asio::steady_timer timer;
};

struct Flight {
  explicit Flight(const asio::any_io_executor& ex) : done(ex) {}
  Event done;
  std::optional<VerifyResult> result;
};

// Bounds concurrent probes to one destination; a released slot passes to the oldest waiter.
struct Slots {
  std::size_t in_use = 0;
  std::deque<std::shared_ptr<Event>> waiters;
};

}  // namespace

struct Verifier::Impl {
  Impl(smtp::ClientPool& p, VerifySettings s, const core::Clock& c)
      : pool(p), settings(std::move(s)), clock(c) {}

  smtp::ClientPool& pool;
  VerifySettings settings;
  const core::Clock& clock;
  std::unordered_map<std::string, CacheEntry> cache;  // by address key
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights;
  std::unordered_map<std::string, Slots> slots;         // by destination
  std::unordered_map<std::string, CatchAll> catch_all;  // by domain
  VerifierStats stats;

  awaitable<void> acquire_slot(const std::string& destination) {
    auto& s = slots[destination];
    if (s.in_use < settings.max_probes_per_destination) {
      ++s.in_use;
      co_return;
    }
    auto event = std::make_shared<Event>(co_await asio::this_coro::executor);
    s.waiters.push_back(event);
    co_await event->wait();  // the slot was handed over by release_slot
  }

  void release_slot(const std::string& destination) {
    auto& s = slots[destination];
    if (!s.waiters.empty()) {
      s.waiters.front()->notify();
      s.waiters.pop_front();
    } else {
      --s.in_use;
    }
  }

  static Verdict verdict_of(const smtp::ClientResult& r) {
    if (r.failure != smtp::ClientFailure::none) return Verdict::try_later;
    if (r.reply.positive()) return Verdict::accept;
    if (r.reply.permanent()) return Verdict::reject;
    return Verdict::try_later;
  }

  // One callout: EHLO (in acquire), MAIL FROM, RCPT TO, and the catch-all check when due.
  awaitable<VerifyResult> probe(const core::Destination& destination,
                                const core::Address& address) {
    ++stats.probes;
    VerifyResult result;
    auto lease = co_await pool.acquire(destination);
    if (!lease.connection) {
      result.probe = lease.result;
      // A greeting or EHLO answered 5xx says nothing about the address: try later.
      result.verdict = Verdict::try_later;
      co_return result;
    }
    auto& conn = *lease.connection;
    // A non-ASCII address can only be asked about with SMTPUTF8 (RFC 6531); a destination
    // without it could never take mail for it: a permanent refusal, as its 553 would be.
    const bool utf8 = !core::is_ascii(address.str());
    if (utf8 && !conn.offers("SMTPUTF8")) {
      result.probe.reply = smtp::Reply{553, "5.6.7 " + conn.destination().str() +
                                                " does not support SMTPUTF8 (non-ASCII address)"};
      result.verdict = Verdict::reject;
      co_await pool.release(std::move(lease.connection));
      co_return result;
    }
    auto mail =
        co_await conn.command("MAIL FROM:<" + settings.sender + ">" + (utf8 ? " SMTPUTF8" : ""));
    if (!mail.positive()) {
      result.probe = mail;
      result.verdict = Verdict::try_later;  // the probe sender was refused, not the address
      spdlog::warn("verify: {} refused the probe sender <{}>: {}", conn.destination().str(),
                   settings.sender, mail.describe());
      co_await pool.release(std::move(lease.connection));
      co_return result;
    }
    result.probe = co_await conn.command("RCPT TO:<" + address.str() + ">");
    result.verdict = verdict_of(result.probe);

    if (result.verdict == Verdict::accept) {
      auto& ca = catch_all[address.domain()];
      const auto now = clock.now();
      if (ca.checked_at == TimePoint{} || now - ca.checked_at > settings.catch_all_ttl ||
          ca.destination != destination.str()) {
        auto random_rcpt =
            co_await conn.command("RCPT TO:<" + random_local_part() + "@" + address.domain() + ">");
        const auto v = verdict_of(random_rcpt);
        if (v != Verdict::try_later) {
          const bool was = ca.accept_all;
          ca.accept_all = v == Verdict::accept;
          ca.checked_at = now;
          ca.destination = destination.str();
          if (ca.accept_all && !was) {
            spdlog::warn(
                "verify: {} accepts any address at {} (catch-all): its addresses are relayed "
                "but not counted for discovery",
                destination.str(), address.domain());
          }
        }
      }
    }
    co_await pool.release(std::move(lease.connection));
    co_return result;
  }

  void remember(const core::Address& address, const std::string& destination,
                const VerifyResult& r) {
    const auto now = clock.now();
    auto it = cache.find(address.key());
    if (r.verdict == Verdict::try_later) {
      ++stats.probe_failures;
      return;  // never cached, and never clobbers what is cached
    }
    if (cache.size() >= settings.max_cache_entries && it == cache.end()) {
      // Make room: drop expired entries, or if none, an arbitrary one.
      for (auto e = cache.begin(); e != cache.end();) {
        e = e->second.expire_at <= now ? cache.erase(e) : std::next(e);
      }
      if (cache.size() >= settings.max_cache_entries) cache.erase(cache.begin());
    }
    CacheEntry entry{r.verdict, r.probe, {}, {}, destination};
    if (r.verdict == Verdict::accept) {
      entry.refresh_at = now + settings.positive_refresh;
      entry.expire_at = now + settings.positive_ttl;
    } else {
      entry.refresh_at = entry.expire_at = now + settings.negative_ttl;
    }
    cache[address.key()] = std::move(entry);
  }

  // Whether the domain's server accepts any address: as last found, or as found at this
  // destination when one is given.
  bool is_accept_all(const std::string& domain, const std::string* destination = nullptr) const {
    auto it = catch_all.find(domain);
    return it != catch_all.end() && it->second.accept_all &&
           (!destination || it->second.destination == *destination);
  }
};

Verifier::Verifier(smtp::ClientPool& pool, VerifySettings settings, const core::Clock& clock)
    : impl_(std::make_unique<Impl>(pool, std::move(settings), clock)) {}

void Verifier::reconfigure(const VerifySettings& settings) { impl_->settings = settings; }
Verifier::~Verifier() = default;

awaitable<VerifyResult> Verifier::verify(const core::Destination& destination,
                                         const core::Address& address) {
  auto& I = *impl_;
  const auto now = I.clock.now();
  const auto key = address.key();

  const auto dest_key = destination.str();
  auto cached = I.cache.find(key);
  if (cached != I.cache.end() && cached->second.destination != dest_key) {
    I.cache.erase(cached);  // another server's answer
    cached = I.cache.end();
  }
  if (cached != I.cache.end() && cached->second.expire_at <= now) {
    if (cached->second.verdict != Verdict::accept) {
      I.cache.erase(cached);
      cached = I.cache.end();
    }
  }
  if (cached != I.cache.end() && now < cached->second.refresh_at) {
    ++I.stats.cache_hits;
    co_return VerifyResult{cached->second.verdict, cached->second.probe, true,
                           I.is_accept_all(address.domain(), &dest_key)};
  }

  // Join a probe already under way for this address.
  if (auto f = I.flights.find(key); f != I.flights.end()) {
    ++I.stats.shared_waits;
    auto flight = f->second;
    while (!flight->result) co_await flight->done.wait();
    co_return *flight->result;
  }

  auto flight = std::make_shared<Flight>(co_await asio::this_coro::executor);
  I.flights.emplace(key, flight);
  co_await I.acquire_slot(dest_key);
  VerifyResult result;
  try {
    result = co_await I.probe(destination, address);
  } catch (const std::exception& e) {
    result.verdict = Verdict::try_later;
    result.probe = {smtp::ClientFailure::protocol, {}, e.what()};
  }
  I.release_slot(dest_key);

  // A positive entry past its refresh time still stands when the refresh probe failed.
  auto stale = I.cache.find(key);
  if (result.verdict == Verdict::try_later && stale != I.cache.end() &&
      stale->second.verdict == Verdict::accept && I.clock.now() < stale->second.expire_at) {
    ++I.stats.probe_failures;
    result = VerifyResult{Verdict::accept, stale->second.probe, true, false};
  } else {
    I.remember(address, dest_key, result);
  }
  result.accept_all =
      result.verdict == Verdict::accept && I.is_accept_all(address.domain(), &dest_key);

  flight->result = result;
  flight->done.notify();
  I.flights.erase(key);
  co_return result;
}

std::size_t Verifier::flush_address(const core::Address& address) {
  return impl_->cache.erase(address.key());
}

std::size_t Verifier::flush_domain(const std::string& domain) {
  std::size_t removed = 0;
  const auto suffix = "@" + core::ascii_lower(domain);
  for (auto it = impl_->cache.begin(); it != impl_->cache.end();) {
    const auto& k = it->first;
    if (k.size() >= suffix.size() &&
        k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0) {
      it = impl_->cache.erase(it);
      ++removed;
    } else {
      ++it;
    }
  }
  impl_->catch_all.erase(core::ascii_lower(domain));
  return removed;
}

std::size_t Verifier::flush_all() {
  const auto n = impl_->cache.size();
  impl_->cache.clear();
  impl_->catch_all.clear();
  return n;
}

std::optional<Verifier::Cached> Verifier::cached(const core::Destination& destination,
                                                 const core::Address& address) const {
  const auto& I = *impl_;
  const auto it = I.cache.find(address.key());
  const auto dest_key = destination.str();
  if (it == I.cache.end() || it->second.destination != dest_key ||
      it->second.expire_at <= I.clock.now()) {
    return std::nullopt;
  }
  const auto& e = it->second;
  return Cached{e.verdict, e.probe, e.refresh_at, e.expire_at,
                e.verdict == Verdict::accept && I.is_accept_all(address.domain(), &dest_key)};
}

bool Verifier::accept_all(const std::string& domain) const { return impl_->is_accept_all(domain); }

std::vector<Verifier::CatchAllDomain> Verifier::catch_all_domains() const {
  std::vector<CatchAllDomain> out;
  for (const auto& [domain, state] : impl_->catch_all) {
    if (state.accept_all) out.push_back({domain, state.checked_at, state.destination});
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.domain < b.domain; });
  return out;
}

VerifierStats Verifier::stats() const {
  auto s = impl_->stats;
  s.cache_entries = impl_->cache.size();
  return s;
}

std::string random_local_part() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::string out = "mailroster-probe-";
  for (int i = 0; i < 16; ++i) out += kAlphabet[random() % (sizeof kAlphabet - 1)];
  return out;
}

awaitable<DestinationCheck> check_server(smtp::ClientPool& pool, core::Endpoint server,
                                         std::string domain, std::string sender) {
  DestinationCheck out;
  out.destination = server;
  const auto started = std::chrono::steady_clock::now();
  auto lease = co_await pool.acquire(server);
  out.took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  out.hello = lease.result;
  if (!lease.connection) co_return out;
  auto& conn = *lease.connection;
  out.extensions = conn.extensions();
  out.tls = conn.tls_info();
  out.mail = co_await conn.command("MAIL FROM:<" + sender + ">");
  if (out.mail->positive()) {
    out.random_rcpt = co_await conn.command("RCPT TO:<" + random_local_part() + "@" + domain + ">");
  }
  co_await conn.command("QUIT");
  co_return out;
}

awaitable<std::vector<DestinationCheck>> check_destination(smtp::ClientPool& pool,
                                                           core::Destination destination,
                                                           std::string domain, std::string sender) {
  std::vector<DestinationCheck> out;
  for (const auto& server : destination.hosts) {
    out.push_back(co_await check_server(pool, server, domain, sender));
  }
  co_return out;
}

}  // namespace mailroster::verify
