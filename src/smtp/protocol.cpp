#include "smtp/protocol.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "core/split.hpp"

namespace mailroster::smtp {
namespace {

// ASCII upper case (ESMTP keywords are ASCII).
std::string upper(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

Parsed refuse(int code, std::string text) {
  return Parsed{std::nullopt, Reply{code, std::move(text)}};
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && core::ascii_lower(a) == core::ascii_lower(b);
}

bool istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

constexpr std::array<std::pair<Verb, std::string_view>, 13> kVerbs{{
    {Verb::helo, "HELO"},
    {Verb::ehlo, "EHLO"},
    {Verb::mail, "MAIL"},
    {Verb::rcpt, "RCPT"},
    {Verb::data, "DATA"},
    {Verb::bdat, "BDAT"},
    {Verb::rset, "RSET"},
    {Verb::noop, "NOOP"},
    {Verb::quit, "QUIT"},
    {Verb::vrfy, "VRFY"},
    {Verb::expn, "EXPN"},
    {Verb::help, "HELP"},
    {Verb::starttls, "STARTTLS"},
}};

// RFC 5321 esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
bool valid_keyword(std::string_view k) {
  if (k.empty() || !std::isalnum(static_cast<unsigned char>(k.front()))) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
  });
}

// RFC 5321 esmtp-value = 1*(%d33-60 / %d62-126)
// esmtp-value (RFC 5321 4.1.2); with utf8, also UTF-8 octets (RFC 6533's ORCPT under
// SMTPUTF8, whose value the session checks).
bool valid_value(std::string_view v, bool utf8 = false) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [utf8](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 33 && u <= 126 && u != '=') || (utf8 && u >= 0x80);
  });
}

// Parses "<path> params" after "FROM:" or "TO:" (a bare path unless strict).
Parsed parse_path_command(Verb verb, std::string_view rest, bool strict) {
  const bool rcpt = verb == Verb::rcpt;
  const char* syntax =
      rcpt ? "5.5.4 Syntax: RCPT TO:<address>" : "5.5.4 Syntax: MAIL FROM:<address>";
  rest = trim(rest);  // tolerate "MAIL FROM: <a@b>", as real clients send it
  if (rest.empty()) return refuse(501, syntax);
  std::string_view path;
  std::string_view params;
  if (rest.front() == '<') {
    // Find the closing '>' outside quoted strings.
    std::size_t close = std::string_view::npos;
    bool quoted = false;
    for (std::size_t i = 1; i < rest.size(); ++i) {
      const char c = rest[i];
      if (quoted && c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = !quoted;
      } else if (c == '>' && !quoted) {
        close = i;
        break;
      }
    }
    if (close == std::string_view::npos) return refuse(501, syntax);
    path = rest.substr(1, close - 1);
    params = rest.substr(close + 1);
    if (!params.empty() && params.front() != ' ') return refuse(501, syntax);
  } else {
    // A bare path: up to the first space, with no bracket in it (a display name before
    // "<...>" is not taken: which part is the address would be a guess).
    if (strict) return refuse(501, syntax);
    const auto space = rest.find(' ');
    path = rest.substr(0, space);
    params = space == std::string_view::npos ? std::string_view() : rest.substr(space);
    if (path.find_first_of("<>") != std::string_view::npos) return refuse(501, syntax);
  }

  // RFC 5321 4.1.2: a source route (A-d-l) may precede the mailbox; it is ignored (C.1).
  if (!path.empty() && path.front() == '@') {
    const auto colon = path.find(':');
    if (colon == std::string_view::npos) return refuse(501, syntax);
    path.remove_prefix(colon + 1);
  }

  Command cmd;
  cmd.verb = verb;
  cmd.path = std::string(path);
  if (path.empty()) {
    if (rcpt) return refuse(501, "5.1.3 the null path is not a recipient");
  } else if (rcpt && iequals(path, "postmaster")) {
    // RFC 5321 4.5.1: <postmaster> without a domain is a valid recipient.
  } else {
    auto address = core::Address::parse(path);
    if (address) {
      cmd.address = std::move(address).value();
      cmd.path = cmd.address->str();
    } else {
      // A mailbox at an address literal is valid syntax, though never a company address.
      const auto at = path.rfind('@');
      const bool literal = at != std::string_view::npos && at + 1 < path.size() &&
                           path[at + 1] == '[' && path.back() == ']' && at > 0;
      if (!literal) {
        return refuse(501, std::string(rcpt ? "5.1.3" : "5.1.7") + " bad " +
                               (rcpt ? "recipient" : "sender") +
                               " address syntax: " + address.error().message);
      }
    }
  }

  params = trim(params);
  while (!params.empty()) {
    const auto space = params.find(' ');
    const auto token = params.substr(0, space);
    params = space == std::string_view::npos ? std::string_view() : trim(params.substr(space));
    const auto eq = token.find('=');
    Parameter p;
    p.keyword = upper(token.substr(0, eq));
    if (eq != std::string_view::npos) p.value = std::string(token.substr(eq + 1));
    if (!valid_keyword(p.keyword) ||
        (eq != std::string_view::npos && !valid_value(p.value, rcpt && p.keyword == "ORCPT"))) {
      return refuse(501, "5.5.4 malformed parameter '" + std::string(token) + "'");
    }
    // A keyword given twice has no one meaning (SIZE=1 SIZE=2): refused, whichever it is.
    for (const auto& seen : cmd.parameters) {
      if (seen.keyword == p.keyword) return refuse(501, "5.5.4 " + p.keyword + " given twice");
    }
    cmd.parameters.push_back(std::move(p));
  }
  return Parsed{std::move(cmd), {}};
}

}  // namespace

std::string_view to_string(Verb verb) {
  for (const auto& [v, name] : kVerbs) {
    if (v == verb) return name;
  }
  return "?";
}

std::string Reply::wire() const {
  std::string out;
  std::string_view rest = text;
  const std::string code_text = std::to_string(code);
  for (;;) {
    const auto nl = rest.find('\n');
    out += code_text;
    out += nl == std::string_view::npos ? ' ' : '-';
    out += rest.substr(0, nl);
    out += "\r\n";
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  return out;
}

Parsed parse_command(std::string_view line, bool strict_paths) {
  static constexpr std::string_view kBadCharacter =
      "5.5.2 command contains a control or non-ASCII character";
  bool non_ascii = false;
  for (char c : line) {
    const auto u = static_cast<unsigned char>(c);
    if (u == 0 || (u < 32 && c != '\t')) return refuse(500, std::string(kBadCharacter));
    non_ascii = non_ascii || u >= 0x80;
  }
  if (non_ascii && !core::is_valid_utf8(line)) return refuse(500, "5.5.2 command is not UTF-8");
  const auto space = line.find(' ');
  const auto word = line.substr(0, space);
  // Spaces after the verb are one separator ("RCPT  TO:<a@b>"), as Postfix reads them.
  auto rest = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);

  std::optional<Verb> verb;
  for (const auto& [v, name] : kVerbs) {
    if (iequals(word, name)) verb = v;
  }
  if (!verb) {
    return refuse(500, "5.5.2 command unrecognized");
  }

  // RFC 6531: UTF-8 only in the paths of MAIL and RCPT (the server then asks for SMTPUTF8).
  if (non_ascii && *verb != Verb::mail && *verb != Verb::rcpt) {
    return refuse(500, std::string(kBadCharacter));
  }
  Command cmd;
  cmd.verb = *verb;
  switch (*verb) {
    case Verb::helo:
    case Verb::ehlo: {
      const auto arg = trim(rest);
      if (arg.empty()) {
        return refuse(501, "5.5.4 Syntax: " + std::string(to_string(*verb)) + " hostname");
      }
      cmd.argument = std::string(arg.substr(0, arg.find(' ')));
      return Parsed{std::move(cmd), {}};
    }
    case Verb::mail:
      if (!istarts_with(rest, "FROM:")) return refuse(501, "5.5.4 Syntax: MAIL FROM:<address>");
      return parse_path_command(Verb::mail, rest.substr(5), strict_paths);
    case Verb::rcpt:
      if (!istarts_with(rest, "TO:")) return refuse(501, "5.5.4 Syntax: RCPT TO:<address>");
      return parse_path_command(Verb::rcpt, rest.substr(3), strict_paths);
    case Verb::data:
    case Verb::rset:
    case Verb::quit:
    case Verb::starttls:
      if (!trim(rest).empty()) {
        return refuse(501,
                      "5.5.4 Syntax: " + std::string(to_string(*verb)) + " takes no parameters");
      }
      return Parsed{std::move(cmd), {}};
    case Verb::vrfy:
    case Verb::expn:
      if (trim(rest).empty()) {
        return refuse(501, "5.5.4 Syntax: " + std::string(to_string(*verb)) + " string");
      }
      cmd.argument = std::string(trim(rest));
      return Parsed{std::move(cmd), {}};
    case Verb::noop:
    case Verb::help:
    case Verb::bdat:  // checked by the session: a bad one ends it (its chunk cannot be skipped)
      cmd.argument = std::string(trim(rest));
      return Parsed{std::move(cmd), {}};
  }
  return refuse(500, "5.5.2 command unrecognized");
}

std::optional<Line> LineBuffer::next(std::size_t limit) {
  for (;;) {
    const auto nl = buffer_.find('\n', start_ + scanned_);
    if (nl == std::string::npos) {
      scanned_ = buffer_.size() - start_;
      if (scanned_ > limit) {
        // An over-long line: drop what we have, remember to refuse it at its end.
        discarding_ = true;
        buffer_.clear();
        start_ = 0;
        scanned_ = 0;
      }
      return std::nullopt;
    }
    const std::string_view raw(buffer_.data() + start_, nl + 1 - start_);
    Line line;
    const bool crlf = raw.size() >= 2 && raw[raw.size() - 2] == '\r';
    const auto text = raw.substr(0, raw.size() - (crlf ? 2 : 1));
    line.bare_newline = !crlf || text.find('\r') != std::string_view::npos;
    if (discarding_) {
      line.too_long = true;
      discarding_ = false;
    } else {
      line.too_long = raw.size() > limit;
      line.text = std::string(line.too_long ? text.substr(0, limit) : text);
    }
    start_ = nl + 1;
    scanned_ = 0;
    if (start_ == buffer_.size()) {
      buffer_.clear();
      start_ = 0;
    } else if (start_ > 64 * 1024) {
      buffer_.erase(0, start_);
      start_ = 0;
    }
    return line;
  }
}

std::string LineBuffer::take(std::size_t max) {
  const auto n = std::min(max, pending());
  std::string out = buffer_.substr(start_, n);
  start_ += n;
  scanned_ = 0;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  return out;
}

void LineBuffer::clear() {
  buffer_.clear();
  start_ = 0;
  scanned_ = 0;
  discarding_ = false;
}

bool DataReader::add(const Line& line) {
  if (line.text == "." && !line.too_long && !line.bare_newline) return true;
  std::string_view text = line.text;
  if (!text.empty() && text.front() == '.') text.remove_prefix(1);  // RFC 5321 4.5.2
  long_line_ |= line.too_long;
  bare_newline_ |= line.bare_newline;
  size_ += text.size() + 2;
  if (size_ > limits_.message_size) {
    too_big_ = true;
    message_.clear();
    message_.shrink_to_fit();
  }
  if (!too_big_) {
    message_.append(text);
    message_.append("\r\n");
  }
  return false;
}

std::optional<Reply> message_refusal(const Limits& limits, bool too_big, bool bare_newline,
                                     bool long_line) {
  if (too_big) return Reply{552, "5.3.4 message size exceeds fixed maximum message size"};
  if (bare_newline) {
    return Reply{550, "5.6.11 bare <LF> or <CR> in message; lines must end with <CR><LF>"};
  }
  if (long_line) {
    return Reply{550, "5.6.0 message has a line longer than " + std::to_string(limits.text_line) +
                          " octets (RFC 5321 4.5.3.1.6)"};
  }
  return std::nullopt;
}

std::optional<Reply> DataReader::refusal() const {
  return message_refusal(limits_, too_big_, bare_newline_, long_line_);
}

std::optional<Chunk> parse_bdat(std::string_view argument) {
  const auto space = argument.find(' ');
  const auto size = argument.substr(0, space);
  auto rest = space == std::string_view::npos ? std::string_view() : argument.substr(space + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  Chunk chunk;
  const auto [end, ec] = std::from_chars(size.data(), size.data() + size.size(), chunk.size);
  if (size.empty() || size.size() > 19 || ec != std::errc() || end != size.data() + size.size()) {
    return std::nullopt;
  }
  if (!rest.empty() && !iequals(rest, "LAST")) return std::nullopt;
  chunk.last = !rest.empty();
  return chunk;
}

void ChunkReader::add(std::string_view bytes) {
  for (const char c : bytes) {
    if (c == '\n') {
      bare_newline_ |= !after_cr_;
      line_ = 0;
    } else {
      bare_newline_ |= after_cr_;  // a CR not followed by LF
      if (c != '\r') ++line_;
    }
    after_cr_ = c == '\r';
    long_line_ |= line_ + 2 > limits_.text_line;
  }
  size_ += bytes.size();
  if (size_ > limits_.message_size) {
    too_big_ = true;
    message_.clear();
    message_.shrink_to_fit();
  }
  if (!too_big_) message_.append(bytes);
}

std::string ChunkReader::take_message() {
  if (!message_.empty() && !message_.ends_with("\r\n")) message_.append("\r\n");
  return std::move(message_);
}

std::optional<Reply> ChunkReader::refusal() const {
  // A CR at the very end is a line ending the last chunk did not finish: a bare CR.
  return message_refusal(limits_, too_big_, bare_newline_ || after_cr_, long_line_);
}

std::string dot_stuff(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 64 + 8);
  std::size_t pos = 0;
  while (pos < message.size()) {
    auto nl = message.find('\n', pos);
    const auto end = nl == std::string_view::npos ? message.size() : nl + 1;
    if (message[pos] == '.') out.push_back('.');
    out.append(message.substr(pos, end - pos));
    pos = end;
  }
  if (!out.empty() && out.back() != '\n') out.append("\r\n");
  out.append(".\r\n");
  return out;
}

bool needs_smtputf8(std::string_view sender, const std::vector<std::string>& recipients,
                    std::string_view message) {
  if (!core::is_ascii(sender)) return true;
  for (const auto& r : recipients) {
    if (!core::is_ascii(r)) return true;
  }
  return !core::is_ascii(message.substr(0, message.find("\r\n\r\n")));
}

std::vector<std::string> ehlo_keywords(std::string_view reply_text) {
  std::vector<std::string> out;
  auto nl = reply_text.find('\n');
  while (nl != std::string_view::npos) {
    const auto start = nl + 1;
    nl = reply_text.find('\n', start);
    auto line = reply_text.substr(start, nl == std::string_view::npos ? nl : nl - start);
    line = line.substr(0, line.find(' '));
    if (!line.empty()) out.push_back(upper(line));
  }
  return out;
}

std::optional<std::pair<Reply, std::size_t>> parse_reply(std::string_view text) {
  Reply reply;
  std::size_t pos = 0;
  bool first = true;
  for (;;) {
    const auto nl = text.find('\n', pos);
    if (nl == std::string_view::npos) return std::nullopt;
    auto line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl + 1;
    const bool digits = line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                        std::isdigit(static_cast<unsigned char>(line[1])) &&
                        std::isdigit(static_cast<unsigned char>(line[2]));
    if (!digits || (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
      return std::make_pair(Reply{-1, "malformed reply: " + std::string(line)}, pos);
    }
    const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (!first && code != reply.code) {
      return std::make_pair(Reply{-1, "inconsistent multi-line reply"}, pos);
    }
    reply.code = code;
    if (!first) reply.text += '\n';
    if (line.size() > 4) reply.text += line.substr(4);
    first = false;
    if (line.size() <= 3 || line[3] == ' ') return std::make_pair(reply, pos);
  }
}

bool DsnRecipient::wants_success() const {
  for (const auto part : core::split(notify, ',')) {
    if (part == "SUCCESS") return true;
  }
  return false;
}

namespace {

bool is_upper_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

}  // namespace

bool is_xtext(std::string_view text, bool utf8) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '+') {
      if (i + 2 >= text.size() || !is_upper_hex(text[i + 1]) || !is_upper_hex(text[i + 2])) {
        return false;
      }
      i += 2;
    } else if (c >= 0x80) {
      if (!utf8) return false;
    } else if (c < 33 || c > 126 || c == '=') {
      return false;
    }
  }
  return !utf8 || core::is_valid_utf8(text);
}

std::optional<std::string> dsn_notify(std::string_view value) {
  const auto notify = upper(value);
  if (notify == "NEVER") return notify;
  std::vector<std::string_view> seen;
  for (const auto part : core::split(notify, ',')) {
    if (part != "SUCCESS" && part != "FAILURE" && part != "DELAY") return std::nullopt;
    if (std::find(seen.begin(), seen.end(), part) != seen.end()) return std::nullopt;
    seen.push_back(part);
  }
  return notify;
}

bool is_dsn_orcpt(std::string_view value, bool utf8) {
  if (value.size() > 500) return false;
  const auto semicolon = value.find(';');
  if (semicolon == 0 || semicolon == std::string_view::npos) return false;
  for (const char c : value.substr(0, semicolon)) {  // addr-type: an atom
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  const auto address = value.substr(semicolon + 1);
  return !address.empty() && is_xtext(address, utf8);
}

std::string xtext_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+' && i + 2 < text.size() && is_upper_hex(text[i + 1]) &&
        is_upper_hex(text[i + 2])) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace mailroster::smtp
