// Network values of the model: CIDR blocks (a company's outbound relay networks) and
// host:port endpoints, and destinations: the mail servers a domain's mail goes to, in order.
// Pure parsing, no sockets.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace mailroster::core {

// An IPv4 or IPv6 address in network byte order (IPv4 uses the first 4 bytes).
struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};

  static Result<IpAddress> parse(std::string_view text);
  std::string str() const;
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// The network a client is counted by in rate limits: an IPv4 address itself (also written as
// IPv4-mapped IPv6, "::ffff:192.0.2.7"), an IPv6 address's network of ipv6_prefix bits
// ("2001:db8:1:2::/64"): a site is given a /64 of IPv6 and may send from any address in it,
// so counting each address would let one harvester through 2^64 times. Text that is no
// address is its own key.
std::string client_network(std::string_view ip, int ipv6_prefix = 64);

class Cidr {
 public:
  // "192.0.2.0/24", "2001:db8::/32"; a bare address means a single host (/32 or /128).
  // Host bits set below the prefix are an error that names the intended network.
  static Result<Cidr> parse(std::string_view text);
  // A network trusted with something (a company's relay networks, load balancers, reverse
  // proxies): as parse, but one holding every address ("0.0.0.0/0", "::/0") is an error, since
  // it would trust the whole Internet (an open relay, a spoofable client address).
  static Result<Cidr> parse_trusted(std::string_view text);

  // An IPv4 network contains the IPv4-mapped form of its addresses too ("::ffff:192.0.2.7").
  bool contains(const IpAddress& ip) const;
  std::string str() const;
  friend bool operator==(const Cidr&, const Cidr&) = default;

 private:
  IpAddress network_;
  int prefix_ = 0;
};

// A decimal port number, 0 to 65535, digits only ("25", "025"); nullopt otherwise.
std::optional<std::uint16_t> parse_port(std::string_view text);

// Where a domain's mail is delivered: "host", "host:port" or "[ipv6]:port"; port defaults
// to 25. The host is a domain name or an IP address literal.
struct Endpoint {
  std::string host;
  std::uint16_t port = 25;

  static Result<Endpoint> parse(std::string_view text, std::uint16_t default_port = 25);
  // For a listening socket: as parse(), and port 0 means "any free port".
  static Result<Endpoint> parse_listen(std::string_view text, std::uint16_t default_port);
  std::string str() const;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// Where a domain's mail is delivered (or outbound mail is sent on): one mail server, or
// several tried in the order given, the later ones when the earlier cannot take a session
// ("mx1.acme.example, mx2.acme.example:2525"; commas or spaces between them). Every one of
// them must know the domain's recipients: callouts ask whichever answers first.
struct Destination {
  static constexpr std::size_t max_hosts = 10;
  std::vector<Endpoint> hosts;  // at least one, no repeats

  Destination() = default;
  Destination(Endpoint host) : hosts{std::move(host)} {}  // NOLINT: one server is a destination
  static Result<Destination> parse(std::string_view text, std::uint16_t default_port = 25);
  // "host:port", or "mx1:25, mx2:25": parse() reads it back.
  std::string str() const;
  friend bool operator==(const Destination&, const Destination&) = default;
};

}  // namespace mailroster::core
