#include "core/network.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

#include "core/address.hpp"

namespace mailroster::core {

Result<IpAddress> IpAddress::parse(std::string_view text) {
  const std::string s(text);
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) return ip;
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) {
    ip.v6 = true;
    return ip;
  }
  return invalid("'" + s + "' is not an IP address");
}

std::string IpAddress::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

namespace {
// The address with every bit past the first `prefix` cleared: its network of that width.
IpAddress network_of(IpAddress ip, int prefix) {
  for (int i = 0; i < 16; ++i) {
    const int bits = std::clamp(prefix - i * 8, 0, 8);
    ip.bytes[static_cast<std::size_t>(i)] &= static_cast<std::uint8_t>(0xFF00 >> bits);
  }
  return ip;
}

// An IPv4-mapped IPv6 address ("::ffff:192.0.2.7": an IPv4 client of a dual-stack listener) as
// the IPv4 address it is; any other address as it is.
IpAddress unmapped(const IpAddress& a) {
  static constexpr std::array<std::uint8_t, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!a.v6 || !std::equal(kMapped.begin(), kMapped.end(), a.bytes.begin())) return a;
  IpAddress v4;
  std::copy(a.bytes.begin() + 12, a.bytes.end(), v4.bytes.begin());
  return v4;
}
}  // namespace

std::string client_network(std::string_view ip, int ipv6_prefix) {
  const auto parsed = IpAddress::parse(ip);
  if (!parsed) return std::string(ip);
  const auto a = unmapped(*parsed);
  if (!a.v6) return a.str();
  const int prefix = std::clamp(ipv6_prefix, 0, 128);
  if (prefix == 128) return a.str();
  return network_of(a, prefix).str() + "/" + std::to_string(prefix);
}

Result<Cidr> Cidr::parse(std::string_view text) {
  const auto slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return invalid("'" + std::string(text) + "' is not a CIDR network", "network");
  const int max_prefix = ip->v6 ? 128 : 32;
  int prefix = max_prefix;
  if (slash != std::string_view::npos) {
    const auto p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || prefix < 0 ||
        prefix > max_prefix) {
      return invalid("bad prefix length in '" + std::string(text) + "'", "network");
    }
  }
  Cidr cidr;
  cidr.network_ = *ip;
  cidr.prefix_ = prefix;
  const auto masked = network_of(*ip, prefix);
  if (!(masked == *ip)) {
    return invalid("'" + std::string(text) + "' has host bits set; did you mean " + masked.str() +
                       "/" + std::to_string(prefix) + "?",
                   "network");
  }
  return cidr;
}

Result<Cidr> Cidr::parse_trusted(std::string_view text) {
  auto cidr = parse(text);
  if (cidr && cidr->prefix_ == 0) {
    return invalid("'" + std::string(text) +
                       "' is every address: it would trust the whole Internet; name the hosts or "
                       "networks",
                   "network");
  }
  return cidr;
}

bool Cidr::contains(const IpAddress& ip) const {
  const auto a = network_.v6 ? ip : unmapped(ip);
  return a.v6 == network_.v6 && network_of(a, prefix_) == network_;
}

std::string Cidr::str() const { return network_.str() + "/" + std::to_string(prefix_); }

namespace {
Result<Endpoint> parse_endpoint(std::string_view text, std::uint16_t default_port,
                                bool allow_port_zero) {
  const std::string original(text);
  Endpoint ep;
  ep.port = default_port;
  std::string_view host = text;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return invalid("unclosed '[' in '" + original + "'");
    host = text.substr(1, close - 1);
    const auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return invalid("expected ':port' after ']' in '" + original + "'");
      port = rest.substr(1);
      if (port.empty()) return invalid("empty port in '" + original + "'");
    }
    auto ip = IpAddress::parse(host);
    if (!ip || !ip->v6) return invalid("'" + std::string(host) + "' is not an IPv6 address");
    ep.host = ip->str();
  } else {
    const auto colon = text.rfind(':');
    if (colon != std::string_view::npos) {
      if (text.find(':') != colon) {
        return invalid("IPv6 destinations must be written as [address]:port");
      }
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (port.empty()) return invalid("empty port in '" + original + "'");
    }
    if (host.empty()) return invalid("empty host in '" + original + "'");
    if (auto ip = IpAddress::parse(host)) {
      ep.host = ip->str();
    } else {
      auto name = parse_domain(host);
      if (!name) return invalid("'" + std::string(host) + "' is not a host name or IP address");
      ep.host = std::move(name).value();
    }
  }
  if (!port.empty()) {
    const auto value = parse_port(port);
    if (!value || (*value == 0 && !allow_port_zero)) {
      return invalid("bad port '" + std::string(port) + "' in '" + original + "'");
    }
    ep.port = *value;
  }
  return ep;
}

}  // namespace

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

Result<Endpoint> Endpoint::parse(std::string_view text, std::uint16_t default_port) {
  return parse_endpoint(text, default_port, false);
}

Result<Endpoint> Endpoint::parse_listen(std::string_view text, std::uint16_t default_port) {
  return parse_endpoint(text, default_port, true);
}

std::string Endpoint::str() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<Destination> Destination::parse(std::string_view text, std::uint16_t default_port) {
  Destination d;
  std::size_t at = 0;
  while (at < text.size()) {
    const auto end = std::min(text.find_first_of(", \t", at), text.size());
    if (end > at) {
      auto host = parse_endpoint(text.substr(at, end - at), default_port, false);
      if (!host) return host.error();
      if (std::find(d.hosts.begin(), d.hosts.end(), *host) != d.hosts.end()) {
        return invalid("'" + host->str() + "' is listed twice in '" + std::string(text) + "'");
      }
      d.hosts.push_back(std::move(host).value());
    }
    at = end + 1;
  }
  if (d.hosts.empty()) return invalid("no mail server given");
  if (d.hosts.size() > max_hosts) {
    return invalid("at most " + std::to_string(max_hosts) + " mail servers per destination");
  }
  return d;
}

std::string Destination::str() const {
  std::string out;
  for (const auto& h : hosts) out += (out.empty() ? "" : ", ") + h.str();
  return out;
}

}  // namespace mailroster::core
