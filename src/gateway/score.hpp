// What scoring decides about a message, as pure functions (no I/O; the fuzzer links them):
// the verdict, the client's answer it means, the headers of a marked message, the built-in
// checks, and rspamd's answer read. The scorers themselves are in gateway/scorer.hpp.
//
// A score's verdict decides the answer to the client (one place for both gateways: refusal()):
//   clean     relayed; counts toward discovery (SPEC: below the spam threshold)
//   marked    relayed with X-Spam headers (rspamd's "add header" / "rewrite subject", then with
//             the Subject rspamd gave); does not count toward discovery
//   deferred  451 4.7.1 (rspamd's "soft reject" / "greylist"), or 451 4.3.0 when rspamd could not
//             be asked and [scoring] rspamd_failure = "defer": the client retries, nothing lost
//   spam      550 5.7.1, relayed nowhere
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
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
  std::string subject;       // marked: the Subject the message is relayed with ("" = its own)
  bool unavailable = false;  // deferred because the scorer could not be asked

  bool clean() const { return verdict == Verdict::clean; }
};

// The answer to the client when the verdict stops the message (deferred, spam); nullopt when
// the message goes on to be relayed.
std::optional<smtp::Reply> refusal(const Score& score);

// Header lines (CRLF-terminated) prepended to a marked message: "X-Spam: Yes" and its score
// with the reasons, folded. Empty for any other verdict.
std::string marking_headers(const Score& score);

// The message as it is relayed after scoring, when that differs from what the client sent:
// X-Spam and X-Spam-Score fields it came with are dropped (only the gateway's own say what the
// filter found: a sender cannot vouch for its own mail to the filters downstream), and a
// rewritten Subject (score.subject) is put in. nullopt: relay the message as it is.
std::optional<std::string> relayed_form(const Score& score, std::string_view message);

// The message with its Subject field (the first one, with its folded lines) replaced by
// `Subject: subject`, or that field added when it has none; only the header section is looked
// at. The subject is made one line of printable ASCII (rspamd encodes others, RFC 2047) and
// folded at its spaces to keep lines short (RFC 5322 2.1.1).
std::string rewrite_subject(std::string_view message, std::string_view subject);

// The built-in rules, pure: GTUBE (1000), no From (3), several From (3), no Date (1),
// no Message-ID (1), no header/body separator (2). Spam at or above threshold, else clean.
Score builtin_score(std::string_view message, double threshold);

// rspamd's answer to POST /checkv2 (JSON: action, score, required_score, symbols, messages)
// as a score. Actions: "no action" clean; "add header", "rewrite subject" (with its new
// "subject") marked; "greylist",
// "soft reject" deferred; "reject" spam. Anything else, or a body that is not such JSON, is an
// error (the server could not be asked).
core::Result<Score> rspamd_score(std::string_view response_body);

}  // namespace mailroster::gateway
