// libFuzzer target: what scoring makes of a message (the built-in checks) and of an answer
// from rspamd. Whatever either says, the reply to the SMTP client stays one line of printable
// ASCII with the right code, a marked message's headers are well-formed header lines, and a
// rewritten Subject adds no line break of its own.
#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/score.hpp"

namespace {

using namespace mailroster::gateway;

void check(const Score& score) {
  if (const auto r = refusal(score)) {
    const bool want = score.verdict == Verdict::spam ? r->code == 550 : r->code == 451;
    if (!want || r->text.empty()) __builtin_trap();
    for (const unsigned char c : r->text) {
      if (c < 0x20 || c >= 0x7f) __builtin_trap();  // no CR/LF: nothing smuggled after it
    }
  } else if (score.verdict == Verdict::spam || score.verdict == Verdict::deferred) {
    __builtin_trap();
  }
  const auto headers = marking_headers(score);
  if (score.verdict != Verdict::marked) {
    if (!headers.empty()) __builtin_trap();
    return;
  }
  // Header lines: CRLF-terminated, continuations start with a tab, no bare CR or LF.
  std::string_view rest(headers);
  if (rest.substr(0, 11) != "X-Spam: Yes") __builtin_trap();
  while (!rest.empty()) {
    const auto eol = rest.find("\r\n");
    if (eol == std::string_view::npos) __builtin_trap();
    const auto line = rest.substr(0, eol);
    if (line.find_first_of("\r\n") != std::string_view::npos || line.size() > 998) __builtin_trap();
    rest.remove_prefix(eol + 2);
    if (!rest.empty() && rest.front() != '\t' && rest.substr(0, 7) != "X-Spam-") __builtin_trap();
  }
}

// Bare line feeds (not after a CR): a rewritten Subject must not add any (the field it
// replaces may take some away).
std::size_t bare_lf(std::string_view text) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); ++i)
    n += text[i] == '\n' && (i == 0 || text[i - 1] != '\r');
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check(builtin_score(text, 5));
  if (const auto answer = rspamd_score(text)) check(*answer);
  // Dropping the X-Spam fields a message came with only ever takes away.
  if (const auto dropped = relayed_form(Score{}, text); dropped && dropped->size() >= text.size()) {
    __builtin_trap();
  }
  // The input as both the message and the new subject.
  const auto rewritten = rewrite_subject(text, text);
  if (bare_lf(rewritten) > bare_lf(text) || rewritten.find("Subject: ") == std::string::npos) {
    __builtin_trap();
  }
  return 0;
}
