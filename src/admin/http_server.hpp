// The admin HTTP server: HTTP/1.1 (HTTPS when a certificate is configured) with keep-alive
// on Boost.Beast, routing by method and exact
// path to handlers that take and return plain values (no Beast types leave this module).
// Limits: request bodies over max_body_bytes get 413; a connection idle for idle_timeout
// is closed. Unknown paths get 404 and known paths with another method 405, both as JSON
// {"error": {"code", "message"}}.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/network.hpp"

namespace mailroster::net {
class ServerTls;
}

namespace boost::asio {
class io_context;
}

namespace mailroster::admin {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // without the query string
  std::string query;                           // after '?', undecoded
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::map<std::string, std::string> params;  // {name} segments of the matched route
  // The client's IP address: the peer's, or, when the peer is a trusted proxy, the address
  // its X-Forwarded-For names (HttpServerSettings::trusted_proxies).
  std::string client;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra (Set-Cookie, ...)
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct RouteOptions {
  // Runs on the server's worker threads, not the I/O thread (LDAP and Graph calls block).
  bool blocking = false;
  std::size_t max_body_bytes = 0;  // 0: the server's limit
};

struct HttpServerSettings {
  core::Endpoint listen{"127.0.0.1", 8080};
  std::size_t max_body_bytes = 1 << 20;
  std::chrono::seconds idle_timeout{60};
  std::size_t worker_threads = 2;  // for blocking routes
  std::string tls_cert_file;       // PEM; HTTPS when set (with the key)
  std::string tls_key_file;
  // Reverse proxies in front of the server (nginx, HAProxy terminating TLS): a request from
  // one of them has its client taken from X-Forwarded-For (client_behind), so that the login
  // limit counts the browser's address, not the proxy's. Empty: the header is never believed.
  std::vector<core::Cidr> trusted_proxies;
};

// The client of a request from `peer`: peer itself unless it is in trusted; then the
// X-Forwarded-For list (comma-separated, each proxy appending the address it heard from) read
// from the right, skipping trusted proxies: the first address that is not one, or the last
// trusted one when the list ends or holds something that is no IP address (what a client wrote
// into the header itself is never believed).
std::string client_behind(const std::string& peer, std::string_view forwarded_for,
                          const std::vector<core::Cidr>& trusted);

// Percent-decoding (RFC 3986). A '+' is a space only in a query's form encoding
// (plus_is_space); in a path it stays itself, as in a+tag@example.com. The router hands
// HttpRequest::params over decoded.
std::string percent_decode(const std::string& text, bool plus_is_space = false);
// The other way, for one path segment: all but RFC 3986's unreserved characters and '@'.
std::string percent_encode(std::string_view segment);

// {"error": {"code": code, "message": message, "field": field}} with the given status
// (field only when not empty: the request field that was wrong).
HttpResponse json_error(int status, std::string_view code, std::string_view message,
                        std::string_view field = {});

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpServerSettings settings);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // path: exact segments, or "{name}" for one segment handed over in HttpRequest::params
  // ("/api/v1/users/{id}"); an exact segment wins over a parameter.
  void route(const std::string& method, const std::string& path, HttpHandler handler,
             RouteOptions options = {});
  // Every (method, path pattern) routed, for the OpenAPI document and its test.
  std::vector<std::pair<std::string, std::string>> routes() const;
  // Binds and starts accepting on the io_context. Throws core::Failure when it cannot bind.
  void start();
  // The bound port (useful when listening on port 0).
  std::uint16_t port() const;
  // Stops accepting new connections; the open ones go on.
  void stop_accepting();
  // Stops accepting, closes the connections waiting for a request, and answers the requests
  // under way (with "Connection: close"); active_requests() says when none is left. On the
  // io_context's thread.
  void drain();
  std::size_t active_requests() const;
  // Stops accepting, and waits for the requests running on the worker threads (an import's
  // apply, a directory sync) to finish; open connections end after their current request.
  void stop();
  // Its HTTPS certificate (enabled() false for plain HTTP): reload() after a renewal.
  net::ServerTls& tls();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mailroster::admin
