// The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2): the header a load
// balancer sends before the client's first byte, naming the client it connects on behalf of.
// Behind a TCP load balancer every connection comes from the balancer; with this header the
// gateway sees each client's own address again, which the harvest guard, the per-client
// connection limit, the outbound relay networks and the logs all key on.
//
// Pure parsing, no sockets: the server (smtp/server.cpp) reads bytes until parse_proxy_header
// says the header is complete or cannot be one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/network.hpp"

namespace mailroster::net {

struct ProxyHeader {
  // The client the balancer speaks for. nullopt when the header names none (v1 UNKNOWN, v2
  // LOCAL such as the balancer's own health checks, v2 UNSPEC or UNIX): the connection's own
  // peer address stands.
  std::optional<core::IpAddress> source;
  std::uint16_t source_port = 0;
  int version = 0;  // 1 or 2
};

struct ProxyParse {
  enum class Status { need_more, done, invalid };
  Status status = Status::need_more;
  std::size_t consumed = 0;  // done: the header's length; the client's bytes follow it
  ProxyHeader header;        // done
  std::string error;         // invalid: why, for the log
};

// v1 is at most 107 bytes; a v2 header longer than this (its TLVs) is refused.
inline constexpr std::size_t kMaxProxyHeader = 4096;

// Parses the start of a connection's bytes. need_more while `bytes` is a proper prefix of a
// header that may still be valid.
ProxyParse parse_proxy_header(std::string_view bytes);

}  // namespace mailroster::net
