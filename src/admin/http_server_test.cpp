#include "admin/http_server.hpp"

#include <gtest/gtest.h>

namespace mailroster::admin {
namespace {

std::vector<core::Cidr> networks(std::initializer_list<const char*> texts) {
  std::vector<core::Cidr> out;
  for (const auto* t : texts) out.push_back(core::Cidr::parse(t).value());
  return out;
}

struct Forwarded {
  const char* peer;
  const char* header;
  const char* client;
};

class ClientBehind : public ::testing::TestWithParam<Forwarded> {};

// The proxies: 10.0.0.0/24 (the load balancer's pool) and 127.0.0.1 (an nginx on the host).
TEST_P(ClientBehind, TakesTheAddressTheTrustedProxiesName) {
  const auto trusted = networks({"10.0.0.0/24", "127.0.0.1", "2001:db8:ffff::/48"});
  const auto& f = GetParam();
  EXPECT_EQ(client_behind(f.peer, f.header, trusted), f.client) << f.peer << " / " << f.header;
}

INSTANTIATE_TEST_SUITE_P(
    AdminHttp, ClientBehind,
    ::testing::Values(
        // Not from a proxy: the header is whatever the client wrote, never believed.
        Forwarded{"198.51.100.7", "192.0.2.1", "198.51.100.7"},
        // From a proxy without a header: the proxy is the client.
        Forwarded{"127.0.0.1", "", "127.0.0.1"},
        // One proxy: the address it appended.
        Forwarded{"127.0.0.1", "198.51.100.7", "198.51.100.7"},
        // What the client wrote in front stays in front: the rightmost address not a proxy.
        Forwarded{"127.0.0.1", "192.0.2.1, 198.51.100.7", "198.51.100.7"},
        // Two proxies (balancer, then nginx): skipped from the right.
        Forwarded{"127.0.0.1", "192.0.2.1, 198.51.100.7,10.0.0.5", "198.51.100.7"},
        // Only proxies: the leftmost of them.
        Forwarded{"127.0.0.1", "10.0.0.9, 10.0.0.5", "10.0.0.9"},
        // Garbage where an address should be: the last proxy that was heard from.
        Forwarded{"127.0.0.1", "unknown, 10.0.0.5", "10.0.0.5"},
        Forwarded{"127.0.0.1", "198.51.100.7, <script>", "127.0.0.1"},
        // With ports, in brackets, IPv6.
        Forwarded{"127.0.0.1", "198.51.100.7:51000", "198.51.100.7"},
        Forwarded{"127.0.0.1", "[2001:db8:1::7]:443", "2001:db8:1::7"},
        Forwarded{"2001:db8:ffff::1", "2001:db8:1::7", "2001:db8:1::7"},
        Forwarded{"127.0.0.1", " 2001:DB8:1::7 ", "2001:db8:1::7"}));

// A path segment for the CLI's requests to serve (an address in .../recipients/{address}):
// encoded so that the router's decoding gives it back, '+' and '/' included.
TEST(PercentEncode, ASegmentComesBackWhole) {
  EXPECT_EQ(percent_encode("alice+news@acme.example"), "alice%2Bnews@acme.example");
  for (const std::string text : {"a/b@x.example", "\"quoted local\"@x.example", "100%@x.example",
                                 "j\xc3\xbcrgen@x.example", "q?x#y@x.example"}) {
    const auto encoded = percent_encode(text);
    EXPECT_EQ(encoded.find_first_of("/?# +\""), std::string::npos) << encoded;
    EXPECT_EQ(percent_decode(encoded), text);
  }
}

}  // namespace
}  // namespace mailroster::admin
