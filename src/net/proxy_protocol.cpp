#include "net/proxy_protocol.hpp"

#include <algorithm>
#include <vector>

#include "core/split.hpp"

namespace mailroster::net {

namespace {

using Status = ProxyParse::Status;

constexpr std::string_view kV1 = "PROXY ";
constexpr std::size_t kV1Max = 107;  // "the maximum line length ... is 107 characters"
constexpr std::string_view kV2{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr std::size_t kV2Fixed = 16;

ProxyParse invalid(std::string why) {
  ProxyParse p;
  p.status = Status::invalid;
  p.error = std::move(why);
  return p;
}

// v1 ports are plain decimal, without leading zeros.
std::optional<std::uint16_t> port(std::string_view s) {
  if (s.size() > 1 && s.front() == '0') return std::nullopt;
  return core::parse_port(s);
}

ProxyParse parse_v1(std::string_view bytes) {
  // The line ends at its first LF, which must follow a CR.
  const auto lf = bytes.substr(0, kV1Max).find('\n');
  if (lf == std::string_view::npos) {
    if (bytes.size() >= kV1Max) return invalid("PROXY v1 line longer than 107 bytes");
    return {};
  }
  if (bytes[lf - 1] != '\r') return invalid("PROXY v1 line without CRLF");
  const auto eol = lf - 1;
  const auto line = bytes.substr(kV1.size(), eol - kV1.size());
  ProxyParse p;
  p.status = Status::done;
  p.consumed = eol + 2;
  p.header.version = 1;
  if (line == "UNKNOWN" || line.starts_with("UNKNOWN ")) return p;  // the real peer stands
  const auto f = core::split(line, ' ');
  if (f.size() != 5 || (f[0] != "TCP4" && f[0] != "TCP6")) {
    return invalid("PROXY v1: expected TCP4|TCP6 source destination sport dport");
  }
  const bool v6 = f[0] == "TCP6";
  auto source = core::IpAddress::parse(f[1]);
  auto destination = core::IpAddress::parse(f[2]);
  if (!source || !destination || source->v6 != v6 || destination->v6 != v6) {
    return invalid("PROXY v1: bad " + std::string(f[0]) + " address");
  }
  const auto sport = port(f[3]);
  if (!sport || !port(f[4])) return invalid("PROXY v1: bad port");
  p.header.source = *source;
  p.header.source_port = *sport;
  return p;
}

ProxyParse parse_v2(std::string_view bytes) {
  if (bytes.size() < kV2Fixed) return {};
  const auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(bytes[i]); };
  if ((b(12) >> 4) != 2) return invalid("PROXY v2: unknown version");
  const int command = b(12) & 0x0F;
  if (command > 1) return invalid("PROXY v2: unknown command");
  const std::size_t length = (std::size_t{b(14)} << 8) | b(15);
  if (kV2Fixed + length > kMaxProxyHeader) return invalid("PROXY v2: header too long");
  if (bytes.size() < kV2Fixed + length) return {};
  ProxyParse p;
  p.status = Status::done;
  p.consumed = kV2Fixed + length;
  p.header.version = 2;
  if (command == 0) return p;  // LOCAL: the balancer's own connection (health checks)
  const int family = b(13) >> 4;
  if (family != 1 && family != 2) return p;  // UNSPEC, UNIX: the real peer stands
  const std::size_t size = family == 1 ? 4 : 16;
  if (length < 2 * size + 4) return invalid("PROXY v2: address block too short");
  core::IpAddress source;
  source.v6 = family == 2;
  std::copy_n(bytes.begin() + kV2Fixed, size, source.bytes.begin());
  p.header.source = source;
  p.header.source_port =
      static_cast<std::uint16_t>((b(kV2Fixed + 2 * size) << 8) | b(kV2Fixed + 2 * size + 1));
  return p;
}

}  // namespace

ProxyParse parse_proxy_header(std::string_view bytes) {
  // A prefix of either signature may still become a header.
  const auto prefix_of = [&](std::string_view signature) {
    const auto n = std::min(bytes.size(), signature.size());
    return bytes.substr(0, n) == signature.substr(0, n);
  };
  const bool v1 = prefix_of(kV1), v2 = prefix_of(kV2);
  if (!v1 && !v2) return invalid("the connection did not begin with a PROXY header");
  if (bytes.size() < kV1.size() && v1) return {};
  if (v1) return parse_v1(bytes);
  if (bytes.size() < kV2.size()) return {};
  return parse_v2(bytes);
}

}  // namespace mailroster::net
