#include "gateway/dsn.hpp"

#include <gtest/gtest.h>

namespace mailroster::gateway {
namespace {

using namespace std::chrono;
const core::TimePoint kNow{sys_days{2026y / December / 6}};
const std::string kMessage = "From: Bob <bob@example.org>\r\nSubject: hello\r\n\r\nthe body\r\n";

RelayRequest request(std::string ret = "") {
  RelayRequest r;
  r.destination = core::Endpoint{"mx.acme.example", 25};
  r.sender = "bob@example.org";
  r.recipients = {"alice@acme.example", "carol@acme.example"};
  r.recipient_dsn = {{"SUCCESS", "rfc822;Alice+2Bx@acme.example"}, {"FAILURE", ""}};
  r.dsn = {std::move(ret), "id+2B1"};
  r.id = "ABC.1";
  return r;
}

RelayOutcome delivered(std::vector<std::size_t> owed) {
  RelayOutcome o;
  o.reply = smtp::Reply{250, "2.0.0 Ok"};
  o.relayed_notices = std::move(owed);
  return o;
}

TEST(RelayedNotice, SaysRelayedForTheRecipientsThatAskedAndReturnsTheHeaders) {
  const auto notice = relayed_notice(request(), delivered({0}), kMessage, "gw.example", kNow);
  ASSERT_TRUE(notice);
  const auto& n = *notice;
  EXPECT_NE(
      n.find("From: Mail Delivery System <MAILER-DAEMON@gw.example>\r\nTo: <bob@example.org>\r\n"),
      std::string::npos);
  EXPECT_NE(n.find("Reporting-MTA: dns; gw.example\r\nOriginal-Envelope-Id: id+1\r\n"),
            std::string::npos);
  EXPECT_NE(n.find("Final-Recipient: rfc822; alice@acme.example\r\n"
                   "Original-Recipient: rfc822;Alice+x@acme.example\r\n"
                   "Action: relayed\r\nStatus: 2.0.0\r\nRemote-MTA: dns; mx.acme.example\r\n"),
            std::string::npos)
      << n;
  EXPECT_EQ(n.find("carol@acme.example"), std::string::npos);  // asked for FAILURE only
  EXPECT_NE(n.find("Content-Type: text/rfc822-headers\r\n\r\nFrom: Bob <bob@example.org>\r\n"
                   "Subject: hello\r\n\r\n--"),
            std::string::npos)
      << n;
  EXPECT_EQ(n.find("the body"), std::string::npos);
  // Every part between boundaries, the last one closed.
  const auto boundary = n.substr(n.find("boundary=\"") + 10, 15 + 24);
  EXPECT_NE(n.find("\r\n--" + boundary + "--\r\n"), std::string::npos);
}

// A destination of several servers: the notice names the one that took the message.
TEST(RelayedNotice, NamesTheServerThatTookTheMessage) {
  auto r = request();
  r.destination = core::Destination::parse("mx1.acme.example, mx2.acme.example:2525").value();
  auto o = delivered({0});
  o.server = r.destination.hosts[1];
  const auto n = relayed_notice(r, o, kMessage, "gw.example", kNow).value();
  EXPECT_NE(n.find("Remote-MTA: dns; mx2.acme.example\r\n"), std::string::npos) << n;
  EXPECT_NE(n.find("to mx2.acme.example:2525, which does not"), std::string::npos) << n;
  EXPECT_EQ(n.find("mx1"), std::string::npos) << n;
}

// RFC 6533: a non-ASCII address makes the notice internationalized, its recipients of the
// "utf-8" address type; an all-ASCII one stays RFC 3464's.
TEST(RelayedNotice, IsGlobalForNonAsciiAddresses) {
  auto r = request();
  r.sender = "ren\u00e9@example.org";
  r.recipients = {"j\u00fcrgen@acme.example", "carol@acme.example"};
  r.recipient_dsn = {{"SUCCESS", "utf-8;j\u00fcrgen@acme.example"}, {"SUCCESS", ""}};
  const auto n = relayed_notice(r, delivered({0, 1}), kMessage, "gw.example", kNow).value();
  EXPECT_NE(n.find("To: <ren\u00e9@example.org>\r\n"), std::string::npos) << n;
  EXPECT_NE(n.find("Content-Type: text/plain; charset=utf-8\r\n"), std::string::npos) << n;
  EXPECT_NE(n.find("Content-Type: message/global-delivery-status\r\n"), std::string::npos) << n;
  EXPECT_NE(n.find("Final-Recipient: utf-8; j\u00fcrgen@acme.example\r\n"
                   "Original-Recipient: utf-8;j\u00fcrgen@acme.example\r\n"),
            std::string::npos)
      << n;
  EXPECT_NE(n.find("Final-Recipient: rfc822; carol@acme.example\r\n"), std::string::npos) << n;
  EXPECT_NE(n.find("Content-Type: message/global-headers\r\n\r\nFrom: Bob"), std::string::npos)
      << n;
  r.dsn.ret = "FULL";
  EXPECT_NE(relayed_notice(r, delivered({0}), kMessage, "gw.example", kNow)
                .value()
                .find("Content-Type: message/global\r\n\r\nFrom: Bob"),
            std::string::npos);
  // A non-ASCII header alone makes it global too.
  const auto plain = relayed_notice(request(), delivered({0}),
                                    "Subject: gr\u00fc\u00dfe\r\n\r\nbody\r\n", "gw.example", kNow)
                         .value();
  EXPECT_NE(plain.find("message/global-delivery-status"), std::string::npos) << plain;
  EXPECT_NE(plain.find("Final-Recipient: rfc822; alice@acme.example"), std::string::npos) << plain;
}

TEST(RelayedNotice, ReturnsTheWholeMessageWithRetFull) {
  const auto notice = relayed_notice(request("FULL"), delivered({0}), kMessage, "gw", kNow);
  ASSERT_TRUE(notice);
  EXPECT_NE(notice->find("Content-Type: message/rfc822\r\n\r\n" + kMessage), std::string::npos);
}

TEST(RelayedNotice, NoneWhenNotOwed) {
  EXPECT_FALSE(relayed_notice(request(), delivered({}), kMessage, "gw", kNow));
  auto to_null = request();
  to_null.sender = "";
  EXPECT_FALSE(relayed_notice(to_null, delivered({0}), kMessage, "gw", kNow));
  auto refused = delivered({0});
  refused.reply = smtp::Reply{451, "4.3.0 try again"};
  EXPECT_FALSE(relayed_notice(request(), refused, kMessage, "gw", kNow));
}

}  // namespace
}  // namespace mailroster::gateway
