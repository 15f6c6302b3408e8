// The SMTP client used for recipient callouts and for relaying accepted mail downstream.
// It carries no policy: every step returns a typed result, and the caller (verify/,
// gateway/) decides what it means. Failures are classed as in OpenSMTPD's smtp.h:
// connect (no TCP connection or no greeting), protocol (garbage or a dropped connection
// mid-dialogue), timeout, or a response (a 4xx/5xx reply, carried in the reply itself).
//
// Idle connections are kept per server for reuse (ClientPool): a reused connection is RSET
// before use, which also proves it is still open; one older than idle_keep is dropped.
//
// A destination may name several servers (core::Destination): they are tried in order until
// one gives a session ready for mail (connected, greeted 2xx, EHLO and any STARTTLS the policy
// needs went through). Nothing is sent to a later server once MAIL has gone to one, so a
// message is never handed to two. A server that failed is tried after the others for
// `server_retry`, so a dead first server costs one timeout, not one per message.
//
// TLS (RFC 3207 STARTTLS), as Postfix's smtp_tls_security_level: "may" (the default) uses it
// whenever the server offers it, and when the handshake fails connects again without it;
// "encrypt" refuses a server that does not offer it or whose handshake fails; "verify" also
// checks the certificate chain (tls_ca_file, else the system's CAs) and that it names the
// destination's host (or IP address); "none" never starts it. A refusal is a connect failure
// (the caller answers 4xx: nothing is lost).
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/network.hpp"
#include "smtp/protocol.hpp"

namespace boost::asio {
class io_context;
}

namespace mailroster::smtp {

enum class TlsPolicy { none, may, encrypt, verify };
std::string_view to_string(TlsPolicy p);
std::optional<TlsPolicy> parse_tls_policy(std::string_view text);

struct ClientSettings {
  std::string helo_name = "mailroster.localdomain";
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds command_timeout{60'000};
  std::chrono::milliseconds data_timeout{300'000};  // RFC 5321 4.5.3.2.6: 10 min for "."
  std::size_t max_idle_per_destination = 8;
  std::chrono::seconds idle_keep{30};
  std::chrono::seconds server_retry{60};  // a server that failed is tried last this long
  TlsPolicy tls = TlsPolicy::may;
  std::string tls_ca_file;  // "verify": the CAs to trust (PEM); "": the system's
};

enum class ClientFailure { none, connect, protocol, timeout };
std::string_view to_string(ClientFailure f);

// What a TLS session with a server was like (shown by `domain check`).
struct TlsInfo {
  bool active = false;
  std::string version;         // "TLSv1.3"
  std::string cipher;          // "TLS_AES_256_GCM_SHA384"
  std::string peer_subject;    // the certificate's subject, "/CN=mx.acme.example"
  bool chain_trusted = false;  // signed by the CAs "verify" would trust
  std::string chain_error;     // why not, when not
  bool names_host = false;     // the certificate names the destination's host or IP
};

struct ClientResult {
  ClientFailure failure = ClientFailure::none;
  Reply reply;         // the server's reply when failure == none
  std::string detail;  // what went wrong otherwise

  bool positive() const { return failure == ClientFailure::none && reply.positive(); }
  // One line for logs: "250 2.0.0 Ok" or "connect: connection refused".
  std::string describe() const;
};

class ClientConnection;

// A pool of SMTP client connections, per destination. Single-threaded: use it from the
// io_context's thread only.
class ClientPool {
 public:
  ClientPool(boost::asio::io_context& io, ClientSettings settings);
  ~ClientPool();
  ClientPool(const ClientPool&) = delete;
  ClientPool& operator=(const ClientPool&) = delete;

  // A session with a server of `to` that has said EHLO (or HELO) and is ready for MAIL: the
  // first of its servers that can give one, those that failed lately last.
  struct Lease {
    std::unique_ptr<ClientConnection> connection;
    ClientResult result;  // why none could, when connection is null (every server's answer)
  };
  boost::asio::awaitable<Lease> acquire(const core::Destination& to);
  // Gives a connection back after a finished transaction; it is RSET and kept for reuse.
  boost::asio::awaitable<void> release(std::unique_ptr<ClientConnection> connection);
  // Drops idle connections (at shutdown).
  void clear();
  // New settings (SIGHUP): timeouts and limits for the next command of every connection; a
  // new TLS policy or CA file for the next session (idle sessions are dropped; sessions in use
  // finish as they began). Throws, changing nothing, when the new CAs cannot be loaded. The
  // HELO name stays.
  void reconfigure(const ClientSettings& settings);

  std::size_t connects() const;      // TCP connections opened so far
  std::size_t tls_connects() const;  // ... of which went on in TLS
  std::size_t failovers() const;     // sessions with a server other than a destination's first
  std::size_t passed_over() const;   // servers that failed lately, tried after the others now
  // Those servers: when each failed last, why, and until when it is tried after the others.
  struct FailingServer {
    std::string server;  // host:port
    std::chrono::system_clock::time_point failed_at;
    std::chrono::system_clock::time_point retry_at;
    std::string why;
  };
  std::vector<FailingServer> failing() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class ClientConnection {
 public:
  ~ClientConnection();
  const core::Endpoint& destination() const;  // the server this connection is to
  bool esmtp() const;
  bool tls() const;  // the session runs in TLS (STARTTLS done)
  const TlsInfo& tls_info() const;
  const std::vector<std::string>& extensions() const;  // EHLO keywords, upper case
  // Whether the server's EHLO reply named this extension ("SMTPUTF8", "8BITMIME"; upper case).
  bool offers(std::string_view keyword) const;
  // Sends one command line (without CRLF) and reads its reply.
  boost::asio::awaitable<ClientResult> command(std::string_view line);
  // DATA, then the message dot-stuffed, then the final reply.
  boost::asio::awaitable<ClientResult> data(std::string_view message);
  // False once an I/O error or a 421 has been seen; such a connection is not reused.
  bool usable() const;

 private:
  friend class ClientPool;
  struct Impl;
  explicit ClientConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailroster::smtp
