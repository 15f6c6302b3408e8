// A server's TLS identity (certificate chain and private key, PEM files), the same for every
// server of mailroster (inbound and outbound SMTP's STARTTLS, the admin HTTPS), and
// replaceable while serving: after a certificate renewal, `reload()` (serve does it on SIGHUP)
// reads the files again and new connections get the new certificate; a connection under way
// keeps the one it started with. Files that cannot be used (missing, unreadable, a key that
// is not the certificate's) are refused as a whole and the identity in use stays.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

namespace mailroster::net {

class ServerTls {
 public:
  // `what` names the listener in errors ("inbound"). Empty file names: no TLS.
  ServerTls(std::string what, std::string cert_file, std::string key_file);

  bool enabled() const { return enabled_; }  // fixed at construction
  // Reads the files (again). Throws core::Failure (invalid_argument) and keeps the identity
  // in use when they cannot be used. Before the first successful load, context() is null.
  void load();
  // As load(), from other files (a reload whose configuration names new paths); these are
  // the files from then on when they can be used. Not for a listener without TLS.
  void load(const std::string& cert_file, const std::string& key_file);
  // For a new connection, which holds it for its life (null when not enabled or not loaded).
  std::shared_ptr<boost::asio::ssl::context> context() const;

  // What the certificate in use says, for logs and the expiry metric.
  struct Certificate {
    std::string subject;  // RFC 2253, "CN=mx.example.com,O=..."
    std::chrono::system_clock::time_point not_after;
  };
  Certificate certificate() const;

 private:
  std::string what_;
  bool enabled_;
  std::string cert_file_;
  std::string key_file_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  Certificate certificate_;
};

}  // namespace mailroster::net
