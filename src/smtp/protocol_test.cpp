#include "smtp/protocol.hpp"

#include <gtest/gtest.h>

namespace mailroster::smtp {
namespace {

Command ok(std::string_view line) {
  auto p = parse_command(line);
  EXPECT_TRUE(p.command) << line << " -> " << p.error.code << " " << p.error.text;
  return p.command.value_or(Command{});
}

Reply refused(std::string_view line) {
  auto p = parse_command(line);
  EXPECT_FALSE(p.command) << line;
  return p.error;
}

TEST(ParseCommand, EveryVerbCaseInsensitively) {
  EXPECT_EQ(ok("EHLO client.example").verb, Verb::ehlo);
  EXPECT_EQ(ok("ehlo client.example").argument, "client.example");
  EXPECT_EQ(ok("HELO [192.0.2.1]").argument, "[192.0.2.1]");
  EXPECT_EQ(ok("MAIL FROM:<a@b.example>").verb, Verb::mail);
  EXPECT_EQ(ok("rcpt to:<a@b.example>").verb, Verb::rcpt);
  EXPECT_EQ(ok("DATA").verb, Verb::data);
  EXPECT_EQ(ok("RSET").verb, Verb::rset);
  EXPECT_EQ(ok("NOOP").verb, Verb::noop);
  EXPECT_EQ(ok("NOOP anything goes").argument, "anything goes");
  EXPECT_EQ(ok("QUIT").verb, Verb::quit);
  EXPECT_EQ(ok("VRFY alice").argument, "alice");
  EXPECT_EQ(ok("EXPN staff").verb, Verb::expn);
  EXPECT_EQ(ok("HELP").verb, Verb::help);
  EXPECT_EQ(ok("HELP MAIL").argument, "MAIL");
  EXPECT_EQ(ok("StartTLS").verb, Verb::starttls);
}

TEST(ParseCommand, MailPaths) {
  auto null = ok("MAIL FROM:<>");
  EXPECT_EQ(null.path, "");
  EXPECT_FALSE(null.address);

  auto plain = ok("MAIL FROM:<Bob@Example.ORG>");
  EXPECT_EQ(plain.path, "Bob@example.org");
  ASSERT_TRUE(plain.address);
  EXPECT_EQ(plain.address->key(), "bob@example.org");

  auto quoted = ok(R"(MAIL FROM:<"john smith>x"@example.org>)");
  EXPECT_EQ(quoted.path, R"("john smith>x"@example.org)");

  auto routed = ok("MAIL FROM:<@relay1.example,@relay2.example:bob@example.org>");
  EXPECT_EQ(routed.path, "bob@example.org");

  auto spaced = ok("MAIL FROM: <bob@example.org>");  // common in the wild
  EXPECT_EQ(spaced.path, "bob@example.org");
  EXPECT_EQ(ok("MAIL   FROM:<bob@example.org>").path, "bob@example.org");
  EXPECT_EQ(ok("RCPT  TO:<bob@example.org>").path, "bob@example.org");

  auto literal = ok("MAIL FROM:<bob@[192.0.2.1]>");
  EXPECT_EQ(literal.path, "bob@[192.0.2.1]");
  EXPECT_FALSE(literal.address);
}

TEST(ParseCommand, EsmtpParameters) {
  auto c = ok("MAIL FROM:<a@b.example> size=1024 BODY=8BITMIME SMTPUTF8");
  ASSERT_EQ(c.parameters.size(), 3u);
  EXPECT_EQ(c.parameters[0].keyword, "SIZE");
  EXPECT_EQ(c.parameters[0].value, "1024");
  EXPECT_EQ(c.parameters[1].keyword, "BODY");
  EXPECT_EQ(c.parameters[1].value, "8BITMIME");
  EXPECT_EQ(c.parameters[2].keyword, "SMTPUTF8");
  EXPECT_EQ(c.parameters[2].value, "");
  auto r = ok("RCPT TO:<a@b.example> NOTIFY=NEVER");
  ASSERT_EQ(r.parameters.size(), 1u);
  EXPECT_EQ(r.parameters[0].keyword, "NOTIFY");
}

TEST(ParseCommand, BarePathsUnlessStrict) {
  // What printers, scanners and old scripts send; Postfix, Exim and Sendmail take it.
  auto mail = ok("MAIL FROM:Bob@Example.ORG SIZE=10");
  EXPECT_EQ(mail.path, "Bob@example.org");
  ASSERT_TRUE(mail.address);
  ASSERT_EQ(mail.parameters.size(), 1u);
  EXPECT_EQ(mail.parameters[0].keyword, "SIZE");
  EXPECT_EQ(ok("RCPT TO: alice@example.org").path, "alice@example.org");
  EXPECT_EQ(ok("RCPT TO:Postmaster").path, "Postmaster");
  EXPECT_FALSE(ok("RCPT TO:Postmaster").address);
  EXPECT_EQ(ok("MAIL FROM:a@b.example").path, ok("MAIL FROM:<a@b.example>").path);

  // Not an address, or which part is the address would be a guess.
  EXPECT_EQ(refused("MAIL FROM:Bob <bob@example.org>").text.rfind("5.1.7", 0), 0u);
  EXPECT_EQ(refused("MAIL FROM:bob@example.org>").code, 501);
  EXPECT_EQ(refused("RCPT TO:a@b.example> NOTIFY=NEVER").code, 501);
  EXPECT_EQ(refused("RCPT TO:<a@b.example NOTIFY=NEVER").code, 501);

  // [smtp] strict_envelopes: RFC 5321's brackets only.
  for (const auto* line : {"MAIL FROM:a@b.example", "RCPT TO:a@b.example", "RCPT TO:postmaster"}) {
    const auto p = parse_command(line, true);
    EXPECT_FALSE(p.command) << line;
    EXPECT_EQ(p.error.code, 501) << line;
    EXPECT_EQ(p.error.text.rfind("5.5.4 Syntax:", 0), 0u) << p.error.text;
  }
  EXPECT_TRUE(parse_command("MAIL FROM:<a@b.example>", true).command);
  EXPECT_TRUE(parse_command("RCPT TO:<postmaster>", true).command);
}

TEST(ParseCommand, AKeywordGivenTwiceIsRefusedInAnyCase) {
  EXPECT_EQ(refused("MAIL FROM:<a@b.example> SIZE=1 SIZE=2").text, "5.5.4 SIZE given twice");
  EXPECT_EQ(refused("MAIL FROM:<a@b.example> SMTPUTF8 smtputf8").text,
            "5.5.4 SMTPUTF8 given twice");
  EXPECT_EQ(refused("MAIL FROM:<a@b.example> BODY=7BIT SIZE=9 body=7bit").code, 501);
  EXPECT_EQ(refused("RCPT TO:<a@b.example> NOTIFY=NEVER Notify=SUCCESS").text,
            "5.5.4 NOTIFY given twice");
  EXPECT_EQ(refused("RCPT TO:<a@b.example> ORCPT=rfc822;a@b.example ORCPT=rfc822;c@d.example").text,
            "5.5.4 ORCPT given twice");
  EXPECT_EQ(ok("MAIL FROM:<a@b.example> SIZE=1 BODY=7BIT RET=FULL ENVID=x").parameters.size(), 4u);
}

TEST(ParseCommand, RcptPaths) {
  auto r = ok("RCPT TO:<Alice@ACME.example>");
  ASSERT_TRUE(r.address);
  EXPECT_EQ(r.address->str(), "Alice@acme.example");
  auto pm = ok("RCPT TO:<Postmaster>");
  EXPECT_EQ(pm.path, "Postmaster");
  EXPECT_FALSE(pm.address);
  auto lit = ok("RCPT TO:<a@[192.0.2.1]>");
  EXPECT_FALSE(lit.address);
}

struct Malformed {
  const char* line;
  int code;
  const char* enhanced;
};

class ParseCommandRefuses : public ::testing::TestWithParam<Malformed> {};

TEST_P(ParseCommandRefuses, WithTheRightReply) {
  const auto reply = refused(GetParam().line);
  EXPECT_EQ(reply.code, GetParam().code) << GetParam().line << " -> " << reply.text;
  EXPECT_EQ(reply.text.rfind(GetParam().enhanced, 0), 0u) << reply.text;
}

INSTANTIATE_TEST_SUITE_P(
    Rfc5321, ParseCommandRefuses,
    ::testing::Values(
        Malformed{"", 500, "5.5.2"}, Malformed{"FOO bar", 500, "5.5.2"},
        Malformed{"MAILFROM:<a@b.example>", 500, "5.5.2"}, Malformed{"EHLO", 501, "5.5.4"},
        Malformed{"HELO   ", 501, "5.5.4"}, Malformed{"MAIL <a@b.example>", 501, "5.5.4"},
        Malformed{"MAIL FROM:<a@b.example", 501, "5.5.4"},
        Malformed{"MAIL FROM:<a@b.example>SIZE=1", 501, "5.5.4"},
        Malformed{"MAIL FROM:<a b@c.example>", 501, "5.1.7"},
        Malformed{"MAIL FROM:<@relay.example>", 501, "5.5.4"},
        Malformed{"MAIL FROM:<a@b.example> SIZE=", 501, "5.5.4"},
        Malformed{"MAIL FROM:<a@b.example> =1", 501, "5.5.4"},
        Malformed{"MAIL FROM:<a@b.example> -X=1", 501, "5.5.4"},
        Malformed{"RCPT TO:<>", 501, "5.1.3"}, Malformed{"RCPT TO:<alice>", 501, "5.1.3"},
        Malformed{"RCPT TO:<a..b@c.example>", 501, "5.1.3"},
        Malformed{"RCPT FROM:<a@b.example>", 501, "5.5.4"}, Malformed{"DATA now", 501, "5.5.4"},
        Malformed{"QUIT please", 501, "5.5.4"}, Malformed{"RSET x", 501, "5.5.4"},
        Malformed{"STARTTLS x", 501, "5.5.4"}, Malformed{"VRFY", 501, "5.5.4"},
        Malformed{"EXPN", 501, "5.5.4"}, Malformed{"NOOP \x01", 500, "5.5.2"},
        Malformed{"RCPT TO:<j\xC3@b.example>", 500, "5.5.2"},  // not UTF-8
        Malformed{"EHLO b\xC3\xBC.example", 500, "5.5.2"},     // UTF-8 only in paths
        Malformed{"MAIL FROM:<a@b.example> X=\xC3\xBC", 501, "5.5.4"}),
    [](const auto& param) { return "case" + std::to_string(param.index); });

// RFC 6531: MAIL and RCPT may carry UTF-8 addresses (whether SMTPUTF8 was declared is the
// session's business).
TEST(ParseCommand, Utf8PathsOfMailAndRcpt) {
  const auto rcpt = parse_command(
      "RCPT TO:<j\xC3\xBCrgen@B\xC3\xBC"
      "cher.example>");
  ASSERT_TRUE(rcpt.command) << rcpt.error.text;
  ASSERT_TRUE(rcpt.command->address);
  EXPECT_EQ(rcpt.command->address->str(), "j\xC3\xBCrgen@xn--bcher-kva.example");
  EXPECT_EQ(rcpt.command->path, rcpt.command->address->str());  // the domain as A-labels
  const auto mail = parse_command("MAIL FROM:<bj\xC3\xB6rn@example.org> SMTPUTF8");
  ASSERT_TRUE(mail.command) << mail.error.text;
  EXPECT_EQ(mail.command->parameters.at(0).keyword, "SMTPUTF8");
}

TEST(ParseCommand, NulIsRefused) {
  const std::string line("NOOP a\0b", 8);
  EXPECT_EQ(refused(line).code, 500);
}

TEST(Reply, WireFormatSingleAndMultiLine) {
  EXPECT_EQ((Reply{250, "2.0.0 Ok"}).wire(), "250 2.0.0 Ok\r\n");
  EXPECT_EQ((Reply{250, "mx.example\nPIPELINING\nSIZE 100"}).wire(),
            "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
}

TEST(ParseReply, SingleMultiPartialAndMalformed) {
  auto one = parse_reply("250 2.0.0 Ok\r\nrest");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->first.code, 250);
  EXPECT_EQ(one->first.text, "2.0.0 Ok");
  EXPECT_EQ(one->second, 14u);

  auto multi = parse_reply("250-mx\r\n250-SIZE 10\r\n250 PIPELINING\r\n");
  ASSERT_TRUE(multi);
  EXPECT_EQ(multi->first.text, "mx\nSIZE 10\nPIPELINING");

  EXPECT_FALSE(parse_reply("250-mx\r\n250 PIPE"));
  EXPECT_FALSE(parse_reply(""));
  EXPECT_EQ(parse_reply("hello\r\n")->first.code, -1);
  EXPECT_EQ(parse_reply("250-a\r\n251 b\r\n")->first.code, -1);
  EXPECT_EQ(parse_reply("220\r\n")->first.code, 220);
}

TEST(EhloKeywords, EveryLineAfterTheGreetingUpToItsFirstSpace) {
  EXPECT_EQ(ehlo_keywords("mx greets x\nPIPELINING\nsize 1000\nSmtpUtf8\n\n8BITMIME"),
            (std::vector<std::string>{"PIPELINING", "SIZE", "SMTPUTF8", "8BITMIME"}));
  EXPECT_TRUE(ehlo_keywords("mx.example").empty());
  EXPECT_TRUE(ehlo_keywords("").empty());
}

TEST(LineBuffer, SplitsCrlfLinesAcrossChunks) {
  LineBuffer b;
  b.append("EHLO a\r");
  EXPECT_FALSE(b.next(512));
  b.append("\nMAIL FROM:<>\r\nRC");
  auto first = b.next(512);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->text, "EHLO a");
  EXPECT_FALSE(first->bare_newline);
  EXPECT_EQ(b.next(512)->text, "MAIL FROM:<>");
  EXPECT_FALSE(b.next(512));
  EXPECT_EQ(b.pending(), 2u);
}

TEST(LineBuffer, FlagsBareNewlinesAndBareCarriageReturns) {
  LineBuffer b;
  b.append("NOOP\nNOOP\rx\r\n");
  auto lf = b.next(512);
  EXPECT_TRUE(lf->bare_newline);
  EXPECT_EQ(lf->text, "NOOP");
  auto cr = b.next(512);
  EXPECT_TRUE(cr->bare_newline);
}

TEST(LineBuffer, OverLongLinesAreFlaggedWithoutUnboundedBuffering) {
  LineBuffer b;
  const std::string huge(100000, 'x');
  b.append(huge.substr(0, 600));
  EXPECT_FALSE(b.next(512));
  EXPECT_EQ(b.pending(), 0u);  // dropped, not kept
  b.append(huge);
  EXPECT_FALSE(b.next(512));
  b.append("\r\nNOOP\r\n");
  auto line = b.next(512);
  ASSERT_TRUE(line);
  EXPECT_TRUE(line->too_long);
  EXPECT_EQ(b.next(512)->text, "NOOP");

  // Exactly at the limit (510 + CRLF = 512) is fine; one more is not.
  b.append(std::string(510, 'a') + "\r\n" + std::string(511, 'a') + "\r\n");
  EXPECT_FALSE(b.next(512)->too_long);
  EXPECT_TRUE(b.next(512)->too_long);
}

TEST(LineBuffer, ClearForgetsPipelinedInput) {
  LineBuffer b;
  b.append("STARTTLS\r\nMAIL FROM:<evil@x.example>\r\n");
  EXPECT_EQ(b.next(512)->text, "STARTTLS");
  b.clear();
  EXPECT_FALSE(b.next(512));
}

std::vector<Line> lines_of(std::string_view stream, std::size_t limit = 1000) {
  LineBuffer b;
  b.append(stream);
  std::vector<Line> out;
  while (auto l = b.next(limit)) out.push_back(*l);
  return out;
}

TEST(DataReader, UndoesDotStuffingAndStopsAtTheLoneDot) {
  Limits limits;
  DataReader r(limits);
  bool done = false;
  for (const auto& l : lines_of("Subject: x\r\n\r\n..leading dot\r\n.\r\nafter\r\n")) {
    if (r.add(l)) {
      done = true;
      break;
    }
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(r.message(), "Subject: x\r\n\r\n.leading dot\r\n");
  EXPECT_FALSE(r.refusal());
}

TEST(DataReader, BareLfDotIsNotTheEndAndRefusesTheMessage) {
  // The SMTP smuggling pattern: "\n.\n" must not end the message.
  Limits limits;
  DataReader r(limits);
  int ends = 0;
  for (const auto& l : lines_of("a\r\n.\nMAIL FROM:<x@y.example>\r\n.\r\n")) ends += r.add(l);
  EXPECT_EQ(ends, 1);
  ASSERT_TRUE(r.refusal());
  EXPECT_EQ(r.refusal()->code, 550);
  EXPECT_EQ(r.refusal()->text.rfind("5.6.11", 0), 0u);
}

TEST(DataReader, RefusesOversizeAndOverlongLines) {
  Limits limits;
  limits.message_size = 100;
  DataReader big(limits);
  for (const auto& l : lines_of(std::string(60, 'a') + "\r\n" + std::string(60, 'b') + "\r\n")) {
    big.add(l);
  }
  ASSERT_TRUE(big.refusal());
  EXPECT_EQ(big.refusal()->code, 552);
  EXPECT_TRUE(big.message().empty());  // not kept in memory

  Limits normal;
  DataReader wide(normal);
  for (const auto& l : lines_of(std::string(1200, 'c') + "\r\n", normal.text_line)) wide.add(l);
  ASSERT_TRUE(wide.refusal());
  EXPECT_EQ(wide.refusal()->text.rfind("5.6.0", 0), 0u);
}

TEST(Bdat, SizeAndLast) {
  EXPECT_EQ(parse_bdat("100")->size, 100u);
  EXPECT_FALSE(parse_bdat("100")->last);
  EXPECT_TRUE(parse_bdat("0 last")->last);
  EXPECT_EQ(parse_bdat("18446744073709551")->size, 18446744073709551u);
  for (const char* bad :
       {"", "LAST", "-1", "1x", "1 LAST x", "1 FIRST", "12345678901234567890", "0x10", " 1"}) {
    EXPECT_FALSE(parse_bdat(bad)) << bad;
  }
  EXPECT_EQ(ok("BDAT 12 LAST").verb, Verb::bdat);
  EXPECT_EQ(ok("bdat 12 LAST").argument, "12 LAST");
}

// Chunk boundaries fall anywhere, even between a CR and its LF; the bytes are kept as sent
// (no dot-stuffing to undo), and a message is refused for what DATA's would be.
TEST(ChunkReader, KeepsTheBytesAndChecksAcrossChunks) {
  Limits limits;
  ChunkReader r(limits);
  for (const auto* part : {"Subject: a\r", "\n\r\n.not stuffed\r\n", "", "last line"}) r.add(part);
  EXPECT_FALSE(r.refusal());
  EXPECT_EQ(r.take_message(), "Subject: a\r\n\r\n.not stuffed\r\nlast line\r\n");

  for (const auto* bare : {"a\nb\r\n", "a\rb\r\n", "ends in CR\r"}) {
    ChunkReader b(limits);
    b.add(bare);
    ASSERT_TRUE(b.refusal()) << bare;
    EXPECT_EQ(b.refusal()->text.rfind("5.6.11", 0), 0u);
  }
  ChunkReader wide(limits);
  wide.add(std::string(500, 'c'));
  wide.add(std::string(499, 'c') + "\r\n");  // 999 + CRLF: over 1000
  ASSERT_TRUE(wide.refusal());
  EXPECT_EQ(wide.refusal()->text.rfind("5.6.0", 0), 0u);
  ChunkReader fits(limits);
  fits.add(std::string(998, 'c') + "\r\n");
  EXPECT_FALSE(fits.refusal());

  limits.message_size = 100;
  ChunkReader big(limits);
  big.add(std::string(60, 'a') + "\r\n");
  big.add(std::string(60, 'b') + "\r\n");
  ASSERT_TRUE(big.refusal());
  EXPECT_EQ(big.refusal()->code, 552);
  EXPECT_TRUE(big.take_message().empty());  // not kept in memory
}

TEST(LineBuffer, TakeGivesRawBytesAndLeavesTheRest) {
  LineBuffer b;
  b.append("BDAT 5\r\nab\ncdNOOP\r\n");
  EXPECT_EQ(b.next(512)->text, "BDAT 5");
  EXPECT_EQ(b.take(5), "ab\ncd");
  EXPECT_EQ(b.next(512)->text, "NOOP");
  EXPECT_EQ(b.take(10), "");
}

TEST(DotStuff, RoundTripsThroughTheReader) {
  const std::string message = ".hidden\r\nline\r\n..two\r\n.\r\nend\r\n";
  const auto wire = dot_stuff(message);
  EXPECT_EQ(wire, "..hidden\r\nline\r\n...two\r\n..\r\nend\r\n.\r\n");
  Limits limits;
  DataReader r(limits);
  for (const auto& l : lines_of(wire)) {
    if (r.add(l)) break;
  }
  EXPECT_EQ(r.message(), message);
  EXPECT_EQ(dot_stuff("no newline"), "no newline\r\n.\r\n");
}

}  // namespace
// RFC 3461's parameter values: xtext (4), NOTIFY (4.1), ORCPT (4.2).
TEST(Dsn, XtextNotifyAndOrcpt) {
  EXPECT_TRUE(is_xtext("abc+2B+3D~!"));
  EXPECT_TRUE(is_xtext(""));
  for (const auto* bad : {"a=b", "a+2b", "a+2", "a b", "a\x7f", "caf\xc3\xa9"}) {
    EXPECT_FALSE(is_xtext(bad)) << bad;
  }
  EXPECT_TRUE(is_xtext("caf\xc3\xa9", true));  // UTF-8 under SMTPUTF8 (RFC 6533)
  EXPECT_FALSE(is_xtext("caf\xc3", true));     // not UTF-8
  EXPECT_EQ(xtext_decode("bob+2Bsales+3Dx+2"), "bob+sales=x+2");

  EXPECT_EQ(dsn_notify("never"), "NEVER");
  EXPECT_EQ(dsn_notify("success,Failure,DELAY"), "SUCCESS,FAILURE,DELAY");
  for (const auto* bad : {"", "NEVER,SUCCESS", "SUCCESS,SUCCESS", "SUCCESS,", "ALWAYS"}) {
    EXPECT_FALSE(dsn_notify(bad)) << bad;
  }
  EXPECT_TRUE((DsnRecipient{"FAILURE,SUCCESS", ""}.wants_success()));
  EXPECT_FALSE((DsnRecipient{"FAILURE,DELAY", ""}.wants_success()));
  EXPECT_FALSE((DsnRecipient{"", ""}.wants_success()));

  EXPECT_TRUE(is_dsn_orcpt("rfc822;bob+2Bsales@example.org"));
  EXPECT_TRUE(is_dsn_orcpt("utf-8;j\xc3\xbcrgen@example.org", true));
  for (const auto* bad :
       {"bob@example.org", ";bob@example.org", "rfc822;", "rfc 822;bob@x", "rfc822;a=b@x"}) {
    EXPECT_FALSE(is_dsn_orcpt(bad)) << bad;
  }
  EXPECT_FALSE(is_dsn_orcpt("rfc822;" + std::string(500, 'a')));
  // UTF-8 in a parameter's value: only ORCPT's (RFC 6533; the session wants SMTPUTF8 for it).
  const auto utf8_orcpt = parse_command("RCPT TO:<a@b.example> ORCPT=utf-8;j\xc3\xbc@b.example");
  ASSERT_TRUE(utf8_orcpt.command);
  EXPECT_EQ(utf8_orcpt.command->parameters.at(0).value, "utf-8;j\xc3\xbc@b.example");
  EXPECT_FALSE(parse_command("MAIL FROM:<a@b.example> ENVID=j\xc3\xbc").command);
  EXPECT_FALSE(parse_command("RCPT TO:<a@b.example> NOTIFY=j\xc3\xbc").command);
}

}  // namespace mailroster::smtp
