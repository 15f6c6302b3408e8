// Recipient verification by SMTP callout: is this address deliverable at the company's mail
// server? Purpose and stance as Postfix's verify(8): probe with EHLO, MAIL FROM:<sender>,
// RCPT TO:<address>, then leave the connection for reuse; remember the answer.
//
// Three outcomes, never two: accept (2xx), reject (5xx), try_later (4xx, timeout,
// connection or protocol failure). "Did the probe work" and "is the address good" are
// separate: a failed probe never turns into a reject, and (as Postfix's verify.c says)
// a failed probe never clobbers a cached positive result before it expires.
//
// Cache defaults, compared with Postfix's address_verify_* settings:
//   positive: answered from cache for 7 days, re-probed after 12 hours
//     (Postfix: positive_expire_time 31d, positive_refresh_time 7d). A gateway sees
//     mailboxes deleted more often than a single MTA's users, and a stale positive only
//     costs a relay-time rejection, which also drops the entry.
//   negative: 15 minutes (Postfix: negative_expire_time 3d, refresh 3h). Mailboxes are
//     created daily; a new employee's mail must not bounce for days. The harvest guard, not
//     the negative cache, is what protects the destination from probe floods.
//   failures: not cached at all.
// Concurrent verifications of one address share one probe (single-flight), and at most
// max_probes_per_destination probes run against one destination at a time.
//
// Catch-all detection: when a domain's status is unknown or older than catch_all_ttl, a
// probe that got 2xx also asks RCPT TO:<random local part> in the same session. A 2xx there
// marks the domain accept-all: its addresses are still relayed, but not counted for
// discovery, and the verdict says so.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/clock.hpp"
#include "core/network.hpp"
#include "smtp/client.hpp"

namespace mailroster::verify {

struct VerifySettings {
  std::string sender;  // probe sender; empty = the null sender <>
  std::chrono::seconds positive_ttl = std::chrono::hours(24 * 7);
  std::chrono::seconds positive_refresh = std::chrono::hours(12);
  std::chrono::seconds negative_ttl = std::chrono::minutes(15);
  std::chrono::seconds catch_all_ttl = std::chrono::hours(24);
  std::size_t max_probes_per_destination = 8;
  std::size_t max_cache_entries = 1'000'000;
};

enum class Verdict { accept, reject, try_later };
std::string_view to_string(Verdict v);

struct VerifyResult {
  Verdict verdict = Verdict::try_later;
  smtp::ClientResult probe;  // what the destination said (or how the probe failed)
  bool cached = false;       // answered from the cache
  bool accept_all = false;   // the domain accepts any local part
};

struct VerifierStats {
  std::uint64_t probes = 0;
  std::uint64_t cache_hits = 0;
  std::uint64_t shared_waits = 0;  // callers that joined another caller's probe
  std::uint64_t probe_failures = 0;
  std::size_t cache_entries = 0;
};

class Verifier {
 public:
  Verifier(smtp::ClientPool& pool, VerifySettings settings, const core::Clock& clock);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // Asks the first of the destination's servers that gives a session (smtp::ClientPool); what
  // is learnt is kept for this destination, all its servers together.
  boost::asio::awaitable<VerifyResult> verify(const core::Destination& destination,
                                              const core::Address& address);
  // Drops what is known about an address (for example after the destination refused it at
  // relay time). Returns the number of cache entries removed.
  std::size_t flush_address(const core::Address& address);
  std::size_t flush_domain(const std::string& domain);
  std::size_t flush_all();
  // What the cache holds for an address at this destination, as verify() would use it;
  // nullopt when verify() would ask (nothing cached, expired, or another server's answer).
  struct Cached {
    Verdict verdict = Verdict::try_later;  // accept or reject: failures are never cached
    smtp::ClientResult probe;              // what the destination answered
    core::TimePoint refresh_at;            // asked again after this (a positive answer stands
    core::TimePoint expire_at;             // when that fails, until it expires)
    bool accept_all = false;               // the domain's server takes any address
  };
  std::optional<Cached> cached(const core::Destination& destination,
                               const core::Address& address) const;
  // Whether the domain is known to accept any local part.
  bool accept_all(const std::string& domain) const;
  // The domains known to accept any local part (their addresses are relayed, never counted
  // for discovery), with when that was last seen, by domain name.
  struct CatchAllDomain {
    std::string domain;
    core::TimePoint checked_at;
    std::string destination;  // the destination (its servers) found to take any address
  };
  std::vector<CatchAllDomain> catch_all_domains() const;

  VerifierStats stats() const;
  // New TTLs, probe sender and probe limit (SIGHUP): cached answers keep the expiry they got.
  void reconfigure(const VerifySettings& settings);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What `mailroster domain check` finds at one server of a destination: one session as a callout
// holds it (the relay's TLS policy and CAs), with what it saw on the way. Nothing is cached or
// counted.
struct DestinationCheck {
  core::Endpoint destination;           // the server
  smtp::ClientResult hello;             // greeting, EHLO and STARTTLS; or why the session failed
  std::chrono::milliseconds took{0};    // until the session was ready
  std::vector<std::string> extensions;  // EHLO keywords
  smtp::TlsInfo tls;
  std::optional<smtp::ClientResult> mail;         // MAIL FROM:<the probe sender>
  std::optional<smtp::ClientResult> random_rcpt;  // RCPT TO:<a random local part @ domain>

  // The session was ready for mail (greeting, EHLO and any STARTTLS went through).
  bool connected() const { return hello.positive(); }
  // A random address was refused for good: the destination knows its mailboxes, and callouts
  // to it mean something.
  bool verifies_recipients() const { return random_rcpt && random_rcpt->reply.permanent(); }
  // A random address was accepted (catch-all): its addresses are relayed, never discovered.
  bool accepts_any_address() const { return random_rcpt && random_rcpt->positive(); }
};

boost::asio::awaitable<DestinationCheck> check_server(smtp::ClientPool& pool, core::Endpoint server,
                                                      std::string domain, std::string sender);
// Every server of the destination, one after the other, in its order.
boost::asio::awaitable<std::vector<DestinationCheck>> check_destination(
    smtp::ClientPool& pool, core::Destination destination, std::string domain, std::string sender);

// A local part no mailbox has ("mailroster-probe-" and 16 random letters and digits): the
// catch-all test.
std::string random_local_part();

}  // namespace mailroster::verify
