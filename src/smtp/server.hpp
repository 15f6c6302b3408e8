// The SMTP server: accepts connections and runs one session per connection as a C++20
// coroutine on Boost.Asio. The session is a state machine over the pure parsing of
// smtp/protocol.hpp; what to answer to MAIL, RCPT and the message is asked of a
// SessionHandler (the gateway), so this module knows nothing of companies or users.
//
// Settings (ServerSettings): listen address, hostname in the greeting, protocol limits
// (RFC 5321 4.5.3), idle timeout (RFC 5321 4.5.3.2.7 suggests 5 minutes), connections per
// client address and in all, a TLS certificate and key for STARTTLS (offered when set), and
// the PROXY protocol for a listener behind a load balancer.
// Replies to pipelined commands are sent together when the client's input runs dry
// (RFC 2920). After STARTTLS all buffered input is discarded (RFC 3207 4.2).
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/network.hpp"
#include "smtp/protocol.hpp"

namespace mailroster::net {
class ServerTls;
}

namespace boost::asio {
class io_context;
}

namespace mailroster::smtp {

// Behind a TCP load balancer (HAProxy's `send-proxy` / `send-proxy-v2`, or any balancer that
// speaks the PROXY protocol, net/proxy_protocol.hpp): every connection must then begin with a
// PROXY header and come from one of `from` (the balancers); the client the header names is the
// session's client, for the harvest guard, connection limits, relay networks and logs. A
// connection from elsewhere, or without a valid header, is closed without a greeting.
struct ProxySettings {
  bool enabled = false;
  std::vector<core::Cidr> from;
};

struct ServerSettings {
  std::string name = "smtp";  // for logs: "inbound", "outbound"
  core::Endpoint listen{"127.0.0.1", 2525};
  std::string hostname = "mailroster.localdomain";
  Limits limits;
  std::chrono::seconds idle_timeout{300};
  std::size_t max_connections = 20000;
  std::size_t max_connections_per_client = 50;  // per client network (see ipv6_prefix)
  // What a client is counted as, for max_connections_per_client and the harvest guard
  // (SessionInfo::client_network): its IPv4 address, or its IPv6 network this wide, since a
  // site is given a /64 and may connect from any address in it (core::client_network).
  int ipv6_prefix = 64;
  std::size_t max_errors = 20;    // protocol errors before the session is dropped (421)
  bool strict_envelopes = false;  // MAIL/RCPT paths only in angle brackets (see parse_command)
  std::string tls_cert_file;
  std::string tls_key_file;
  // MAIL only after STARTTLS (530 5.7.0 before, RFC 3207 4): for a listener that only known
  // servers use, as the companies' own on the outbound one. Needs the certificate.
  bool require_tls = false;
  ProxySettings proxy;
};

struct SessionInfo {
  std::string id;         // unique per connection, in logs
  std::string client_ip;  // textual
  // What per-client limits count the client as: client_ip when IPv4, its IPv6 network
  // ("2001:db8:1:2::/64", ServerSettings::ipv6_prefix) otherwise. Set once, at connect.
  std::string client_network;
  std::string helo;
  bool esmtp = false;
  // After STARTTLS: "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"; empty in the
  // clear.
  std::string tls;
};

struct Transaction {
  std::string mail_from;  // "" is the null sender
  std::uint64_t declared_size = 0;
  bool eight_bit = false;
  bool smtputf8 = false;  // MAIL ... SMTPUTF8 (RFC 6531): UTF-8 addresses and headers allowed
  DsnRequest dsn;         // MAIL RET= and ENVID= (RFC 3461)
  std::vector<std::string> recipients;             // accepted ones, as given in RCPT
  std::vector<core::Address> recipient_addresses;  // parallel: parsed form (postmaster: empty)
  std::vector<DsnRecipient> recipient_dsn;         // parallel: RCPT NOTIFY= and ORCPT=
};

class SessionHandler {
 public:
  virtual ~SessionHandler() = default;
  // A new connection; a reply with code >= 400 refuses it (sent instead of the greeting).
  virtual Reply on_connect(const SessionInfo& session) = 0;
  virtual boost::asio::awaitable<Reply> on_mail(const SessionInfo& session,
                                                const Transaction& tx) = 0;
  virtual boost::asio::awaitable<Reply> on_rcpt(const SessionInfo& session, const Transaction& tx,
                                                const Command& rcpt) = 0;
  // The complete message (CRLF lines, dot-stuffing undone). The reply is the client's answer.
  virtual boost::asio::awaitable<Reply> on_message(const SessionInfo& session,
                                                   const Transaction& tx, std::string message) = 0;
  // A message the server refused itself, never given to on_message (over the size limit, a
  // line too long, a bare CR or LF): what the client was told.
  virtual void on_message_refused(const SessionInfo&, const Transaction&, const Reply&) {}
  // A recipient the server refused itself, never given to on_rcpt (over the recipient limit):
  // what the client was told.
  virtual void on_rcpt_refused(const SessionInfo&, const Transaction&, const Command&,
                               const Reply&) {}
  virtual void on_disconnect(const SessionInfo& session) = 0;
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerSettings settings, SessionHandler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. Throws core::Failure when it cannot bind or load the TLS
  // certificate.
  void start();
  std::uint16_t port() const;
  // Stops accepting; the sessions go on.
  void stop();
  // Stops accepting, and ends every session as soon as nothing is under way in it: one
  // waiting for a command outside a transaction gets 421 4.3.2 at once; one in a transaction
  // (sending RCPTs, its message, or waiting for the destination's answer) finishes it, then
  // gets 421 4.3.2 instead of its next command. active_sessions() says when all are gone.
  void drain();
  std::size_t active_sessions() const;
  // New limits, timeouts, connection caps, require_tls and PROXY settings (SIGHUP): for new
  // connections, and for the next command or message of the sessions under way. The listen
  // address, the name, the host name and the certificate's files stay.
  void reconfigure(const ServerSettings& settings);
  // Its STARTTLS certificate (enabled() false when none is set): reload() after a renewal.
  net::ServerTls& tls();
  // STARTTLS handshakes so far (on the io_context's thread): a rise in failures after a
  // certificate change is worth an alert.
  struct TlsCounts {
    std::uint64_t established = 0;
    std::uint64_t failed = 0;
  };
  TlsCounts tls_counts() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mailroster::smtp
