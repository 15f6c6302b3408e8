#include "gateway/scorer.hpp"

#include "core/address.hpp"

namespace mailroster::gateway {

namespace {
// The Generic Test for Unsolicited Bulk Email (https://spamassassin.apache.org/gtube/).
constexpr std::string_view kGtube =
    "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
}  // namespace

Score builtin_score(std::string_view message, double threshold) {
  Score s;
  auto add = [&](double points, const char* reason) {
    s.value += points;
    s.reasons.emplace_back(reason);
  };
  if (message.find(kGtube) != std::string_view::npos) add(1000, "GTUBE");

  // The header section ends at the first empty line (RFC 5322 2.1).
  const auto end = message.find("\r\n\r\n");
  if (end == std::string_view::npos) add(2, "NO_HEADER_BODY_SEPARATOR");
  const auto headers = message.substr(0, end == std::string_view::npos ? message.size() : end + 2);
  int from = 0, date = 0, message_id = 0;
  std::size_t pos = 0;
  while (pos < headers.size()) {
    auto eol = headers.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = headers.size();
    const auto line = headers.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty() || line.front() == ' ' || line.front() == '\t') continue;  // folded
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const auto name = core::ascii_lower(line.substr(0, colon));
    from += name == "from";
    date += name == "date";
    message_id += name == "message-id";
  }
  if (from == 0) add(3, "MISSING_FROM");
  if (from > 1) add(3, "MULTIPLE_FROM");
  if (date == 0) add(1, "MISSING_DATE");
  if (message_id == 0) add(1, "MISSING_MESSAGE_ID");
  s.spam = s.value >= threshold;
  return s;
}

boost::asio::awaitable<Score> BuiltinScorer::score(std::string_view message) {
  co_return builtin_score(message, threshold_);
}

}  // namespace mailroster::gateway
