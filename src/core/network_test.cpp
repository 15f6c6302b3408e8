#include "core/network.hpp"

#include <gtest/gtest.h>

namespace mailroster::core {
namespace {

TEST(Cidr, ParsesV4AndV6AndMatches) {
  auto v4 = Cidr::parse("192.0.2.0/24").value();
  EXPECT_TRUE(v4.contains(IpAddress::parse("192.0.2.77").value()));
  EXPECT_FALSE(v4.contains(IpAddress::parse("192.0.3.1").value()));
  // An IPv4 client of a dual-stack listener ([::]:25) comes as IPv4-mapped IPv6.
  EXPECT_TRUE(v4.contains(IpAddress::parse("::ffff:192.0.2.77").value()));
  EXPECT_FALSE(v4.contains(IpAddress::parse("::ffff:192.0.3.1").value()));
  EXPECT_FALSE(v4.contains(IpAddress::parse("2001:db8::c000:24d").value()));
  EXPECT_EQ(v4.str(), "192.0.2.0/24");

  auto v6 = Cidr::parse("2001:db8::/32").value();
  EXPECT_TRUE(v6.contains(IpAddress::parse("2001:db8:1::5").value()));
  EXPECT_FALSE(v6.contains(IpAddress::parse("2001:db9::1").value()));

  auto odd = Cidr::parse("10.0.0.0/13").value();
  EXPECT_TRUE(odd.contains(IpAddress::parse("10.7.255.255").value()));
  EXPECT_FALSE(odd.contains(IpAddress::parse("10.8.0.0").value()));
}

// What rate limits count a client as: an IPv4 address, an IPv6 address's /64 (or the width
// asked for), an IPv4-mapped IPv6 address as its IPv4 one.
TEST(ClientNetwork, IsTheIpv4AddressOrTheIpv6Network) {
  EXPECT_EQ(client_network("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(client_network("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(client_network("2001:DB8:1:2::1"), client_network("2001:db8:1:2:ffff::9"));
  EXPECT_NE(client_network("2001:db8:1:2::1"), client_network("2001:db8:1:3::1"));
  EXPECT_EQ(client_network("2001:db8:1:2:3:4:5:6", 48), "2001:db8:1::/48");
  EXPECT_EQ(client_network("2001:db8:1:2:3:4:5:6", 56), "2001:db8:1::/56");
  EXPECT_EQ(client_network("2001:db8:1:2ff:3:4:5:6", 56), "2001:db8:1:200::/56");
  EXPECT_EQ(client_network("2001:db8::1", 128), "2001:db8::1");
  EXPECT_EQ(client_network("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(client_network("::1"), "::/64");
  EXPECT_EQ(client_network("not an address"), "not an address");
}

TEST(Cidr, BareAddressIsOneHost) {
  auto host = Cidr::parse("198.51.100.7").value();
  EXPECT_EQ(host.str(), "198.51.100.7/32");
  EXPECT_TRUE(host.contains(IpAddress::parse("198.51.100.7").value()));
  EXPECT_FALSE(host.contains(IpAddress::parse("198.51.100.8").value()));
  EXPECT_EQ(Cidr::parse("::1").value().str(), "::1/128");
}

TEST(Cidr, ZeroPrefixMatchesEverythingOfItsFamily) {
  auto all = Cidr::parse("0.0.0.0/0").value();
  EXPECT_TRUE(all.contains(IpAddress::parse("203.0.113.9").value()));
  EXPECT_FALSE(all.contains(IpAddress::parse("::1").value()));
}

// Trusted networks (relay networks, load balancers, reverse proxies) never hold every address.
TEST(Cidr, ATrustedNetworkIsNotTheWholeInternet) {
  for (const auto* all : {"0.0.0.0/0", "::/0"}) {
    const auto r = Cidr::parse_trusted(all);
    ASSERT_FALSE(r) << all;
    EXPECT_NE(r.error().message.find("is every address"), std::string::npos) << r.error().message;
  }
  EXPECT_EQ(Cidr::parse_trusted("0.0.0.0/1").value().str(), "0.0.0.0/1");
  EXPECT_EQ(Cidr::parse_trusted("10.0.0.5").value().str(), "10.0.0.5/32");
  EXPECT_FALSE(Cidr::parse_trusted("10.0.0.5/8"));  // still what parse refuses
}

TEST(Cidr, RejectsHostBitsWithASuggestion) {
  auto r = Cidr::parse("192.0.2.1/24");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("did you mean 192.0.2.0/24"), std::string::npos);
}

TEST(Cidr, RejectsGarbage) {
  for (const char* bad : {"", "/24", "192.0.2.0/", "192.0.2.0/33", "2001:db8::/129", "192.0.2.0/-1",
                          "192.0.2.0/2x", "example.com/24", "300.0.0.0/8"}) {
    EXPECT_FALSE(Cidr::parse(bad)) << bad;
  }
}

TEST(Endpoint, ParsesHostPortForms) {
  auto a = Endpoint::parse("127.0.0.1:2526").value();
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 2526);
  auto b = Endpoint::parse("MX1.Acme.Example").value();
  EXPECT_EQ(b.host, "mx1.acme.example");
  EXPECT_EQ(b.port, 25);
  auto c = Endpoint::parse("[2001:db8::1]:587").value();
  EXPECT_EQ(c.host, "2001:db8::1");
  EXPECT_EQ(c.port, 587);
  EXPECT_EQ(c.str(), "[2001:db8::1]:587");
  EXPECT_EQ(Endpoint::parse("[::1]").value().port, 25);
}

TEST(Endpoint, PortZeroOnlyForListening) {
  EXPECT_FALSE(Endpoint::parse("127.0.0.1:0"));
  EXPECT_EQ(Endpoint::parse_listen("127.0.0.1:0", 8080).value().port, 0);
  EXPECT_EQ(Endpoint::parse_listen("127.0.0.1", 8080).value().port, 8080);
}

TEST(Endpoint, RejectsBadInput) {
  for (const char* bad : {"", ":25", "host:", "host:0", "host:65536", "host:25x", "2001:db8::1",
                          "[2001:db8::1", "[2001:db8::1]25", "[example.com]:25", "bad_host:25"}) {
    EXPECT_FALSE(Endpoint::parse(bad)) << bad;
  }
}

TEST(Destination, OneOrSeveralServersInOrder) {
  auto one = Destination::parse("127.0.0.1:2526").value();
  ASSERT_EQ(one.hosts.size(), 1u);
  EXPECT_EQ(one.str(), "127.0.0.1:2526");  // as a single endpoint always read
  EXPECT_EQ(one, Destination(Endpoint{"127.0.0.1", 2526}));

  auto several =
      Destination::parse(" MX1.Acme.Example, mx2.acme.example:2525\t[2001:db8::1] ,").value();
  ASSERT_EQ(several.hosts.size(), 3u);
  EXPECT_EQ(several.hosts[0], (Endpoint{"mx1.acme.example", 25}));
  EXPECT_EQ(several.hosts[1], (Endpoint{"mx2.acme.example", 2525}));
  EXPECT_EQ(several.hosts[2], (Endpoint{"2001:db8::1", 25}));
  EXPECT_EQ(several.str(), "mx1.acme.example:25, mx2.acme.example:2525, [2001:db8::1]:25");
  EXPECT_EQ(Destination::parse(several.str()).value(), several);
  EXPECT_EQ(Destination::parse("mx1 mx2", 2526).value().hosts[1].port, 2526);
}

TEST(Destination, RejectsEmptyRepeatedBadAndTooMany) {
  for (const char* bad : {"", " , ", "mx1, mx1:25", "mx1, bad_host", "mx1, host:0", "[::1"}) {
    EXPECT_FALSE(Destination::parse(bad)) << bad;
  }
  EXPECT_NE(Destination::parse("mx1, MX1").error().message.find("listed twice"), std::string::npos);
  std::string eleven;
  for (int i = 0; i < 11; ++i) eleven += "mx" + std::to_string(i) + ".example ";
  EXPECT_FALSE(Destination::parse(eleven));
  eleven.resize(eleven.rfind("mx10"));
  EXPECT_TRUE(Destination::parse(eleven));
}

}  // namespace
}  // namespace mailroster::core
