#include "net/proxy_protocol.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace mailroster::net {
namespace {

using Status = ProxyParse::Status;

std::string v2(std::uint8_t ver_cmd, std::uint8_t family, const std::string& body) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h.push_back(static_cast<char>(ver_cmd));
  h.push_back(static_cast<char>(family));
  h.push_back(static_cast<char>(body.size() >> 8));
  h.push_back(static_cast<char>(body.size() & 0xFF));
  return h + body;
}

std::string bytes(std::initializer_list<int> list) {
  std::string s;
  for (int b : list) s.push_back(static_cast<char>(b));
  return s;
}

TEST(ProxyProtocol, Version1NamesTheClientAndLeavesItsBytes) {
  const std::string line = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n";
  const auto p = parse_proxy_header(line + "EHLO x\r\n");
  ASSERT_EQ(p.status, Status::done) << p.error;
  EXPECT_EQ(p.consumed, line.size());
  EXPECT_EQ(p.header.version, 1);
  ASSERT_TRUE(p.header.source);
  EXPECT_EQ(p.header.source->str(), "192.0.2.7");
  EXPECT_EQ(p.header.source_port, 56324);

  const auto six = parse_proxy_header("PROXY TCP6 2001:db8::7 2001:db8::1 65535 25\r\n");
  ASSERT_EQ(six.status, Status::done) << six.error;
  EXPECT_EQ(six.header.source->str(), "2001:db8::7");

  const auto unknown = parse_proxy_header("PROXY UNKNOWN ffff:f...f:ffff 1 2\r\n");
  ASSERT_EQ(unknown.status, Status::done);
  EXPECT_FALSE(unknown.header.source);  // the connection's own peer stands
  EXPECT_EQ(parse_proxy_header("PROXY UNKNOWN\r\n").status, Status::done);
}

TEST(ProxyProtocol, EveryPrefixOfAHeaderAsksForMore) {
  const std::string line = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n";
  const auto two = v2(0x21, 0x11, bytes({192, 0, 2, 7, 198, 51, 100, 1, 0xDC, 0x04, 0, 25}));
  for (const auto& header : {line, two}) {
    for (std::size_t n = 0; n < header.size(); ++n) {
      EXPECT_EQ(parse_proxy_header(header.substr(0, n)).status, Status::need_more) << n;
    }
    EXPECT_EQ(parse_proxy_header(header).status, Status::done);
  }
}

TEST(ProxyProtocol, Version1MistakesAreRefused) {
  for (const auto& bad : std::vector<std::string>{
           "EHLO client.example\r\n",                         // no header at all
           "proxy TCP4 192.0.2.7 198.51.100.1 1 25\r\n",      // case matters
           "PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n",         // a field short
           "PROXY TCP4 192.0.2.7  198.51.100.1 1 25\r\n",     // two spaces
           "PROXY TCP4 2001:db8::7 198.51.100.1 1 25\r\n",    // family mismatch
           "PROXY TCP6 192.0.2.7 2001:db8::1 1 25\r\n",       // family mismatch
           "PROXY TCP4 192.0.2.300 198.51.100.1 1 25\r\n",    // not an address
           "PROXY TCP4 192.0.2.7 198.51.100.1 65536 25\r\n",  // port range
           "PROXY TCP4 192.0.2.7 198.51.100.1 01 25\r\n",     // leading zero
           "PROXY TCP4 192.0.2.7 198.51.100.1 -1 25\r\n",     // sign
           "PROXY UDP4 192.0.2.7 198.51.100.1 1 25\r\n",      // protocol
           "PROXY TCP4 192.0.2.7 198.51.100.1 1 25\n",        // LF only
           "PROXY UNKNOWN x\ny\r\n",  // a bare LF ends the line (found by the fuzzer)
           "PROXY TCP4 192.0.2.7 198.51.100.1 1 25" + std::string(80, ' '),  // no CRLF in 107
       }) {
    const auto p = parse_proxy_header(bad);
    EXPECT_EQ(p.status, Status::invalid) << bad;
    EXPECT_FALSE(p.error.empty());
  }
}

TEST(ProxyProtocol, Version2AddressesLocalAndTlvs) {
  // TCP over IPv4 with a TLV after the addresses (skipped by its length).
  auto p = parse_proxy_header(
      v2(0x21, 0x11,
         bytes({192, 0, 2, 7, 198, 51, 100, 1, 0xDC, 0x04, 0, 25, 0x04, 0, 3, 'a', 'b', 'c'})) +
      "EHLO x\r\n");
  ASSERT_EQ(p.status, Status::done) << p.error;
  EXPECT_EQ(p.consumed, 16u + 12u + 6u);  // fixed part, addresses, TLV
  EXPECT_EQ(p.header.version, 2);
  EXPECT_EQ(p.header.source->str(), "192.0.2.7");
  EXPECT_EQ(p.header.source_port, 56324);

  std::string six = bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7});
  six += six;
  six += bytes({0, 80, 0, 25});
  p = parse_proxy_header(v2(0x21, 0x21, six));
  ASSERT_EQ(p.status, Status::done) << p.error;
  EXPECT_EQ(p.header.source->str(), "2001:db8::7");

  // LOCAL (health checks), UNSPEC and UNIX: done, naming no client.
  for (const auto& h : {v2(0x20, 0x00, ""), v2(0x20, 0x11, std::string(12, '\0')),
                        v2(0x21, 0x00, "xyz"), v2(0x21, 0x31, std::string(216, 'u'))}) {
    p = parse_proxy_header(h);
    ASSERT_EQ(p.status, Status::done) << p.error;
    EXPECT_FALSE(p.header.source);
    EXPECT_EQ(p.consumed, h.size());
  }
}

TEST(ProxyProtocol, Version2MistakesAreRefused) {
  const auto addresses = bytes({192, 0, 2, 7, 198, 51, 100, 1, 0, 1, 0, 25});
  for (const auto& bad : {
           v2(0x11, 0x11, addresses),                          // version 1 in a v2 header
           v2(0x22, 0x11, addresses),                          // command 2
           v2(0x21, 0x11, addresses.substr(0, 11)),            // too short for IPv4
           v2(0x21, 0x21, std::string(35, '\0')),              // too short for IPv6
           v2(0x21, 0x11, std::string(kMaxProxyHeader, 'x')),  // longer than we take
       }) {
    EXPECT_EQ(parse_proxy_header(bad).status, Status::invalid);
  }
}

}  // namespace
}  // namespace mailroster::net
