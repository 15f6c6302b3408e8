// Message scoring: what happens to a message after DATA, and is it clean enough to count toward
// discovery? Two scorers: the built-in checks (the default; GTUBE and a few header sanity
// checks) and an rspamd server ([scoring] rspamd), asked over its HTTP protocol.
//
// A score's verdict decides the answer to the client (one place for both gateways: refusal()):
//   clean     relayed; counts toward discovery (SPEC: below the spam threshold)
//   marked    relayed with X-Spam headers (rspamd's "add header" / "rewrite subject"); does not
//             count toward discovery
//   deferred  451 4.7.1 (rspamd's "soft reject" / "greylist"), or 451 4.3.0 when rspamd could not
//             be asked and [scoring] rspamd_failure = "defer": the client retries, nothing lost
//   spam      550 5.7.1, relayed nowhere
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
#include "core/error.hpp"
#include "core/network.hpp"
#include "smtp/protocol.hpp"

namespace mailroster::gateway {

enum class Verdict { clean, marked, deferred, spam };
std::string_view to_string(Verdict v);

struct Score {
  double value = 0;
  double threshold = 0;  // the score at which the scorer rejects (rspamd: its required_score)
  Verdict verdict = Verdict::clean;
  std::vector<std::string> reasons;  // "GTUBE", "MISSING_FROM", rspamd's symbols by weight
  std::string reply_text;            // the filter's own words for the client ("" = ours)
  bool unavailable = false;          // deferred because the scorer could not be asked

  bool clean() const { return verdict == Verdict::clean; }
};

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

// The answer to the client when the verdict stops the message (deferred, spam); nullopt when
// the message goes on to be relayed.
std::optional<smtp::Reply> refusal(const Score& score);

// Header lines (CRLF-terminated) prepended to a marked message: "X-Spam: Yes" and its score
// with the reasons, folded. Empty for any other verdict.
std::string marking_headers(const Score& score);

// The built-in rules, pure: GTUBE (1000), no From (3), several From (3), no Date (1),
// no Message-ID (1), no header/body separator (2). Spam at or above threshold, else clean.
Score builtin_score(std::string_view message, double threshold);

class BuiltinScorer final : public Scorer {
 public:
  explicit BuiltinScorer(double threshold) : threshold_(threshold) {}
  boost::asio::awaitable<Score> score(const Envelope& envelope, std::string_view message) override;

 private:
  double threshold_;
};

// rspamd's answer to POST /checkv2 (JSON: action, score, required_score, symbols, messages)
// as a score. Actions: "no action" clean; "add header", "rewrite subject" marked; "greylist",
// "soft reject" deferred; "reject" spam. Anything else, or a body that is not such JSON, is an
// error (the server could not be asked).
core::Result<Score> rspamd_score(std::string_view response_body);

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
