// Message scoring: what happens to a message after DATA, and is it clean enough to count toward
// discovery? Two scorers: the built-in checks (the default; GTUBE and a few header sanity
// checks) and an rspamd server ([scoring] rspamd), asked over its HTTP protocol. What their
// verdicts mean is in gateway/score.hpp.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admin/metrics.hpp"
#include "core/network.hpp"
#include "gateway/score.hpp"

namespace mailroster::gateway {

// What the scorer is told besides the message, as the SMTP session had it.
struct Envelope {
  std::string client_ip;
  std::string helo;
  std::string mail_from;  // "" = the null sender
  std::vector<std::string> recipients;
  std::string queue_id;   // the id in mailroster's log line
  bool outbound = false;  // from a company's own server (its relay networks)
};

class Scorer {
 public:
  virtual ~Scorer() = default;
  virtual boost::asio::awaitable<Score> score(const Envelope& envelope,
                                              std::string_view message) = 0;
};

class BuiltinScorer final : public Scorer {
 public:
  explicit BuiltinScorer(double threshold) : threshold_(threshold) {}
  boost::asio::awaitable<Score> score(const Envelope& envelope, std::string_view message) override;

 private:
  double threshold_;
};

// The scorer in use, which a reload (SIGHUP) may replace: a message being scored keeps the one
// it started with. Use it from the I/O thread only.
class SwappableScorer final : public Scorer {
 public:
  explicit SwappableScorer(std::shared_ptr<Scorer> scorer) : scorer_(std::move(scorer)) {}
  void set(std::shared_ptr<Scorer> scorer) { scorer_ = std::move(scorer); }
  boost::asio::awaitable<Score> score(const Envelope& envelope, std::string_view message) override;

 private:
  std::shared_ptr<Scorer> scorer_;
};

enum class RspamdFailure {
  defer,    // 451 4.3.0: the client retries later (Postfix's milter_default_action = tempfail)
  builtin,  // score with the built-in checks instead
};

struct RspamdSettings {
  core::Endpoint server{"127.0.0.1", 11333};  // rspamd's normal worker
  std::chrono::seconds timeout{15};           // connect, send, scan and answer together
  RspamdFailure on_failure = RspamdFailure::defer;
  double builtin_threshold = 5.0;  // for RspamdFailure::builtin
};

// Asks rspamd about each message, one HTTP/1.1 connection per message (with the envelope in
// its headers: IP, Helo, From, Rcpt, Queue-Id). A connection failure, timeout, HTTP error or
// answer it cannot read is logged, counted (mailroster_rspamd_failures_total) and handled as
// on_failure says.
class RspamdScorer final : public Scorer {
 public:
  RspamdScorer(RspamdSettings settings, admin::Metrics& metrics);
  ~RspamdScorer() override;
  boost::asio::awaitable<Score> score(const Envelope& envelope, std::string_view message) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailroster::gateway
