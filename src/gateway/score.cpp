#include "gateway/score.hpp"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/address.hpp"
#include "gateway/header_fields.hpp"

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
  int from = 0, date = 0, message_id = 0;
  for_each_header_field(message, [&](const HeaderField& field) {
    from += header_name_is(field.name, "from");
    date += header_name_is(field.name, "date");
    message_id += header_name_is(field.name, "message-id");
    return true;
  });
  if (from == 0) add(3, "MISSING_FROM");
  if (from > 1) add(3, "MULTIPLE_FROM");
  if (date == 0) add(1, "MISSING_DATE");
  if (message_id == 0) add(1, "MISSING_MESSAGE_ID");
  s.threshold = threshold;
  s.verdict = s.value >= threshold ? Verdict::spam : Verdict::clean;
  return s;
}

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::clean:
      return "clean";
    case Verdict::marked:
      return "marked";
    case Verdict::deferred:
      return "deferred";
    case Verdict::spam:
      return "spam";
  }
  return "?";
}

namespace {

// One line of printable ASCII: anything else becomes a space, so nothing the text holds can end
// an SMTP reply early or start a header field of its own.
std::string printable_line(std::string_view text) {
  std::string out;
  for (const char c : text) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  return out;
}

// The filter's words go into an SMTP reply: one printable line, and not too long.
std::string reply_safe(std::string_view text) { return printable_line(text.substr(0, 200)); }

std::string reasons_list(const Score& score, std::string_view separator) {
  std::string out;
  for (const auto& r : score.reasons) out += (out.empty() ? "" : std::string(separator)) + r;
  return out;
}

}  // namespace

std::optional<smtp::Reply> refusal(const Score& score) {
  switch (score.verdict) {
    case Verdict::clean:
    case Verdict::marked:
      return std::nullopt;
    case Verdict::deferred:
      // A scorer that could not be asked is a local problem (4.3.0); a filter's deferral is a
      // policy (4.7.1).
      return smtp::Reply{451, std::string(score.unavailable ? "4.3.0 " : "4.7.1 ") +
                                  (score.reply_text.empty()
                                       ? "message deferred by the content filter; try again later"
                                       : score.reply_text)};
    case Verdict::spam:
      break;
  }
  std::string text = "5.7.1 message content rejected as spam";
  if (!score.reply_text.empty()) {
    text += ": " + reply_safe(score.reply_text);
  } else if (!score.reasons.empty()) {
    text += " (" + reasons_list(score, ",") + ")";
  }
  return smtp::Reply{550, text};
}

std::string marking_headers(const Score& score) {
  if (score.verdict != Verdict::marked) return {};
  char figures[64];
  std::snprintf(figures, sizeof figures, "%.2f / %.2f", score.value, score.threshold);
  std::string out = "X-Spam: Yes\r\nX-Spam-Score: " + std::string(figures);
  // One reason per folded line (RFC 5322 2.2.3), so no line grows past 78 characters.
  for (std::size_t i = 0; i < score.reasons.size(); ++i) {
    out += (i == 0 ? " (" : ",\r\n\t") + score.reasons[i];
  }
  if (!score.reasons.empty()) out += ")";
  return out + "\r\n";
}

std::string rewrite_subject(std::string_view message, std::string_view subject) {
  const auto words = printable_line(subject);
  // Its words separated as they were; a line that would pass 78 characters is folded before a
  // word (CRLF, then the space that separated it: unfolding gives the subject back).
  std::string field = "Subject:";
  std::size_t line = field.size();
  bool word_on_line = false;
  std::size_t pos = 0;
  while (true) {
    const auto space = words.find(' ', pos);
    const auto word = std::string_view(words).substr(pos, space - pos);
    if (word_on_line && !word.empty() && line + 1 + word.size() > 78) {
      field += "\r\n";
      line = 0;
    }
    field += ' ';
    field += word;
    line += 1 + word.size();
    word_on_line = word_on_line || !word.empty();
    if (space == std::string::npos) break;
    pos = space + 1;
  }
  field += "\r\n";

  // The first Subject field (a name with white space before its colon too: obs-optional).
  std::optional<HeaderField> old;
  for_each_header_field(message, [&](const HeaderField& f) {
    auto name = f.name;
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (header_name_is(name, "subject")) old = f;
    return !old;
  });
  if (old) {
    return std::string(message.substr(0, old->begin)) + field +
           std::string(message.substr(old->end));
  }
  return field + std::string(message);
}

std::optional<std::string> relayed_form(const Score& score, std::string_view message) {
  // The header section's fields named X-Spam or X-Spam-Score, with their folded lines.
  std::string kept;
  std::size_t copied = 0;  // message[copied, field.begin) is kept as it is
  for_each_header_field(message, [&](const HeaderField& field) {
    if (header_name_is(field.name, "x-spam") || header_name_is(field.name, "x-spam-score")) {
      kept.append(message.substr(copied, field.begin - copied));
      copied = field.end;
    }
    return true;
  });
  if (copied == 0 && score.subject.empty()) return std::nullopt;
  kept.append(message.substr(copied));
  if (score.subject.empty()) return kept;
  return rewrite_subject(kept, score.subject);
}

core::Result<Score> rspamd_score(std::string_view response_body) {
  const auto bad = [](std::string what) {
    return core::Error{core::ErrorCode::unavailable, "rspamd answered " + what};
  };
  const auto json = nlohmann::json::parse(response_body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return bad("something that is not a JSON object");
  const auto action = json.find("action");
  const auto value = json.find("score");
  if (action == json.end() || !action->is_string()) return bad("no action");
  if (value == json.end() || !value->is_number()) return bad("no score");
  Score s;
  s.value = value->get<double>();
  if (const auto required = json.find("required_score");
      required != json.end() && required->is_number()) {
    s.threshold = required->get<double>();
  }
  const auto name = action->get<std::string>();
  if (name == "no action") {
    s.verdict = Verdict::clean;
  } else if (name == "add header" || name == "rewrite subject") {
    s.verdict = Verdict::marked;
  } else if (name == "greylist" || name == "soft reject") {
    s.verdict = Verdict::deferred;
  } else if (name == "reject") {
    s.verdict = Verdict::spam;
  } else {
    return bad("the unknown action '" + reply_safe(name) + "'");
  }
  // Reasons: the symbols that added to the score, heaviest first, at most ten.
  std::vector<std::pair<double, std::string>> symbols;
  if (const auto all = json.find("symbols"); all != json.end() && all->is_object()) {
    for (const auto& [symbol, detail] : all->items()) {
      const auto weight = detail.is_object() ? detail.find("score") : detail.end();
      const double w = weight != detail.end() && weight->is_number() ? weight->get<double>() : 0;
      if (w > 0 || symbol == "GTUBE") symbols.emplace_back(w, reply_safe(symbol));
    }
  }
  std::stable_sort(symbols.begin(), symbols.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t i = 0; i < symbols.size() && i < 10; ++i) s.reasons.push_back(symbols[i].second);
  if (const auto subject = json.find("subject");
      s.verdict == Verdict::marked && subject != json.end() && subject->is_string()) {
    s.subject = subject->get<std::string>();
  }
  // Its words for the client, when a rule gave some (messages.smtp_message).
  if (const auto messages = json.find("messages");
      messages != json.end() && messages->is_object()) {
    if (const auto m = messages->find("smtp_message"); m != messages->end() && m->is_string()) {
      s.reply_text = reply_safe(m->get<std::string>());
    }
  }
  return s;
}

}  // namespace mailroster::gateway
