// SMTP protocol values and pure parsing (RFC 5321), shared by the server session and the
// client. Bytes in, values or replies out; nothing here touches a socket, so all of it is
// unit-tested and fuzzable.
//
// Bare LF policy: a line that ends in LF without CR, or carries a CR not followed by LF, is
// refused, in commands and in message data alike (as Postfix's smtpd_forbid_bare_newline
// does since the 2023 SMTP smuggling reports). The end of data is only CRLF.CRLF.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/address.hpp"

namespace mailroster::smtp {

// RFC 5321 section 4.5.3.1: limits of the protocol, all configurable upward.
struct Limits {
  std::size_t command_line = 512;  // 4.5.3.1.4, including CRLF
  std::size_t text_line = 1000;    // 4.5.3.1.6, including CRLF
  std::size_t recipients = 100;    // 4.5.3.1.8
  std::size_t message_size = 25 * 1024 * 1024;
};

// A reply: code and text (which starts with the enhanced status code, RFC 3463).
struct Reply {
  int code = 0;
  std::string text;

  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
  // "250-..." / "250 ..." lines, CRLF-terminated; multi-line when text holds '\n'.
  std::string wire() const;
};

enum class Verb {
  helo,
  ehlo,
  mail,
  rcpt,
  data,
  bdat,
  rset,
  noop,
  quit,
  vrfy,
  expn,
  help,
  starttls
};

std::string_view to_string(Verb verb);

struct Parameter {
  std::string keyword;  // upper-cased
  std::string value;    // empty when the parameter has none
};

struct Command {
  Verb verb = Verb::noop;
  std::string argument;  // HELO/EHLO domain, VRFY/EXPN/HELP/NOOP argument, BDAT's (as given)
  // MAIL/RCPT: the mailbox inside <>, without source route; empty for the null path <>.
  std::string path;
  std::optional<core::Address> address;  // parsed path, when it is a valid mailbox
  std::vector<Parameter> parameters;     // ESMTP parameters, in order
};

// The outcome of parsing one command line: a command, or the reply that refuses it.
struct Parsed {
  std::optional<Command> command;
  Reply error;
};

// Parses one command line without its CRLF. MAIL and RCPT take their path without angle
// brackets too ("MAIL FROM:bob@example.org"), as Postfix, Exim and Sendmail do for the devices
// and scripts that send it, unless strict_paths (RFC 5321's syntax only; 501 otherwise).
Parsed parse_command(std::string_view line, bool strict_paths = false);

// One line taken off a byte stream.
struct Line {
  std::string text;       // without the line ending; truncated when too_long
  bool too_long = false;  // longer than the limit (the rest was discarded)
  bool bare_newline = false;
};

// Splits a byte stream into CRLF lines, enforcing a length limit without buffering more
// than the limit of any one line.
class LineBuffer {
 public:
  void append(std::string_view bytes) { buffer_.append(bytes); }
  // Bytes received but not yet returned as lines.
  std::size_t pending() const { return buffer_.size() - start_; }
  // The next complete line, or nullopt when more bytes are needed.
  std::optional<Line> next(std::size_t limit);
  // Up to `max` bytes as they came, whatever they hold (a BDAT chunk's, RFC 3030).
  std::string take(std::size_t max);
  // Forgets buffered input (RFC 3207 section 4.2: nothing sent before TLS may be used after).
  void clear();

 private:
  std::string buffer_;
  std::size_t start_ = 0;    // where the next line begins in buffer_
  std::size_t scanned_ = 0;  // bytes after start_ known to hold no '\n'
  bool discarding_ = false;  // inside an over-long line, dropping bytes until its end
};

// BDAT's argument (RFC 3030 2): "<size>" or "<size> LAST"; nullopt when it is neither, and
// the chunk that follows cannot be told from commands.
struct Chunk {
  std::uint64_t size = 0;
  bool last = false;
};
std::optional<Chunk> parse_bdat(std::string_view argument);

// The reply that refuses a message, from what was found reading it (DATA or BDAT alike).
std::optional<Reply> message_refusal(const Limits& limits, bool too_big, bool bare_newline,
                                     bool long_line);

// Collects a message sent in BDAT chunks (RFC 3030): the bytes as they are (no dot-stuffing),
// and every reason to refuse it, as DataReader does: over the size limit (nothing more is
// kept), a bare CR or LF (a line must end with CRLF), a line longer than the limit.
class ChunkReader {
 public:
  explicit ChunkReader(const Limits& limits) : limits_(limits) {}
  void add(std::string_view bytes);
  // The message, ending in CRLF (added when the last chunk did not end a line).
  std::string take_message();
  std::optional<Reply> refusal() const;

 private:
  const Limits& limits_;
  std::string message_;
  std::uint64_t size_ = 0;
  std::size_t line_ = 0;  // bytes of the current line so far
  bool after_cr_ = false;
  bool too_big_ = false;
  bool long_line_ = false;
  bool bare_newline_ = false;
};

// Collects message data after DATA's 354: undoes dot-stuffing (RFC 5321 4.5.2), stops at the
// lone ".", and notes every reason the message must be refused, so the whole message is
// always read before answering.
class DataReader {
 public:
  explicit DataReader(const Limits& limits) : limits_(limits) {}
  // Takes one line; returns true when it was the terminating ".".
  bool add(const Line& line);
  // The message with CRLF line endings, as the client meant it.
  const std::string& message() const { return message_; }
  std::string take_message() { return std::move(message_); }
  // The refusal when the message broke a rule, else nullopt.
  std::optional<Reply> refusal() const;

 private:
  const Limits& limits_;
  std::string message_;
  std::size_t size_ = 0;
  bool too_big_ = false;
  bool long_line_ = false;
  bool bare_newline_ = false;
};

// Writes message data for the wire: dot-stuffed, ending in CRLF.CRLF.
std::string dot_stuff(std::string_view message);

// Whether mail needs SMTPUTF8 (RFC 6531 3.2): an envelope address, or the header section (up to
// the first empty line), is not ASCII. Such mail goes only to a server that offers it.
bool needs_smtputf8(std::string_view sender, const std::vector<std::string>& recipients,
                    std::string_view message);

// The extension keywords of an EHLO reply's text (every line after the first, up to its first
// space), upper-cased: "mx greets x\nPIPELINING\nSIZE 1000" -> PIPELINING, SIZE.
std::vector<std::string> ehlo_keywords(std::string_view reply_text);

// Reads one reply from the start of text ("250-a\r\n250 b\r\n"); returns it and the
// number of bytes it used, or nullopt when text holds no complete reply yet.
std::optional<std::pair<Reply, std::size_t>> parse_reply(std::string_view text);

// Delivery status notification parameters (RFC 3461), as a client gave them and the next hop
// is given them again. Empty: not given.
struct DsnRequest {
  std::string ret;    // MAIL RET=: "FULL" or "HDRS"
  std::string envid;  // MAIL ENVID=: xtext, at most 100 characters
};
struct DsnRecipient {
  std::string notify;  // RCPT NOTIFY=: "NEVER", or some of "SUCCESS,FAILURE,DELAY" (upper case)
  std::string orcpt;   // RCPT ORCPT=: "rfc822;bob+2Bsales@example.org" (addr-type ";" xtext)
  bool wants_success() const;
};

// RFC 3461 4: xtext, printable ASCII with "+" and "=" written as "+XX" (upper-case hex).
// utf8: RFC 6533's form under SMTPUTF8, which may also carry UTF-8 characters.
bool is_xtext(std::string_view text, bool utf8 = false);
// The NOTIFY value in upper case, or nullopt when it is not NEVER alone or a list of SUCCESS,
// FAILURE and DELAY without repeats.
std::optional<std::string> dsn_notify(std::string_view value);
// Whether an ORCPT value is addr-type ";" xtext, at most 500 characters (RFC 3461 4.2).
bool is_dsn_orcpt(std::string_view value, bool utf8 = false);
// xtext decoded ("bob+2Bsales" -> "bob+sales"), for the report a person reads.
std::string xtext_decode(std::string_view text);

}  // namespace mailroster::smtp
