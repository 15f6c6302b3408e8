#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "admin/http_server.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <limits>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/split.hpp"
#include "net/acceptor.hpp"
#include "net/tls.hpp"

namespace mailroster::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpResponse json_error(int status, std::string_view code, std::string_view message,
                        std::string_view field) {
  nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
  if (!field.empty()) body["error"]["field"] = field;
  return HttpResponse{status, "application/json", body.dump(), {}};
}

std::string client_behind(const std::string& peer, std::string_view forwarded_for,
                          const std::vector<core::Cidr>& trusted) {
  const auto is_trusted = [&trusted](const core::IpAddress& ip) {
    return std::any_of(trusted.begin(), trusted.end(),
                       [&ip](const core::Cidr& c) { return c.contains(ip); });
  };
  const auto peer_ip = core::IpAddress::parse(peer);
  if (!peer_ip || !is_trusted(*peer_ip) || forwarded_for.empty()) return peer;
  auto hops = core::split(forwarded_for, ',');
  std::string client = peer;
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    auto hop = *it;
    while (!hop.empty() && (hop.front() == ' ' || hop.front() == '\t')) hop.remove_prefix(1);
    while (!hop.empty() && (hop.back() == ' ' || hop.back() == '\t')) hop.remove_suffix(1);
    if (hop.starts_with('[')) {
      hop = hop.substr(1, hop.find(']') - 1);  // "[2001:db8::1]:443"
    } else if (std::count(hop.begin(), hop.end(), ':') == 1) {
      hop = hop.substr(0, hop.find(':'));  // "192.0.2.7:51000"
    }
    const auto ip = core::IpAddress::parse(hop);
    if (!ip) break;
    client = ip->str();
    if (!is_trusted(*ip)) break;
  }
  return client;
}

namespace {

// "/api/v1/users" -> {"api", "v1", "users"}
std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  if (path.empty()) return out;
  for (const auto part : core::split(std::string_view(path).substr(1), '/')) out.emplace_back(part);
  return out;
}

}  // namespace

std::string percent_decode(const std::string& text, bool plus_is_space) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+' && plus_is_space) {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() &&
               std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string percent_encode(std::string_view segment) {
  std::string out;
  for (const char c : segment) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' || c == '@') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_context, HttpServerSettings s)
      : io(io_context),
        settings(std::move(s)),
        acceptor(io_context),
        workers(std::max<std::size_t>(1, settings.worker_threads)),
        tls("admin", settings.tls_cert_file, settings.tls_key_file) {
    tls.load();
  }

  asio::io_context& io;
  HttpServerSettings settings;
  tcp::acceptor acceptor;
  asio::thread_pool workers;
  net::ServerTls tls;
  // Draining (serve's SIGTERM): a request under way is answered, with "Connection: close";
  // a connection waiting for its next request is closed.
  bool draining = false;
  std::size_t active_requests = 0;       // read, not yet answered
  std::set<beast::tcp_stream*> waiting;  // connections waiting for a request
  struct Handler {
    HttpHandler fn;
    RouteOptions options;
  };
  // path pattern -> method -> handler
  std::map<std::string, std::map<std::string, Handler>> routes;

  // Where a request goes: its handler (null: no route for this path, or not this method)
  // and the parameters of the path.
  struct Route {
    const Handler* handler = nullptr;
    bool path_known = false;
    std::string allow;  // the methods the path takes ("GET, POST"), for a 405's Allow
    std::map<std::string, std::string> params;
  };

  // The pattern matching path (exact segments preferred), with its parameters.
  Route resolve(const std::string& method, const std::string& path) const {
    Route route;
    const std::map<std::string, Handler>* methods = nullptr;
    if (auto same = routes.find(path); same != routes.end()) {
      methods = &same->second;
    } else {
      const auto want = segments(path);
      int best_exact = -1;
      for (const auto& [pattern, candidates] : routes) {
        const auto have = segments(pattern);
        if (have.size() != want.size()) continue;
        std::map<std::string, std::string> found;
        int exact = 0;
        bool ok = true;
        for (std::size_t i = 0; i < have.size() && ok; ++i) {
          if (have[i].size() > 2 && have[i].front() == '{' && have[i].back() == '}') {
            ok = !want[i].empty();
            found[have[i].substr(1, have[i].size() - 2)] = percent_decode(want[i]);
          } else {
            ok = have[i] == want[i];
            ++exact;
          }
        }
        if (ok && exact > best_exact) {
          methods = &candidates;
          best_exact = exact;
          route.params = std::move(found);
        }
      }
    }
    if (!methods) return route;
    route.path_known = true;
    // HEAD is GET without the body (RFC 9110 9.3.2): a balancer's health check may ask so.
    auto h = methods->find(method);
    if (h == methods->end() && method == "HEAD") h = methods->find("GET");
    if (h != methods->end()) {
      route.handler = &h->second;
      return route;
    }
    for (const auto& [m, unused] : *methods) {  // only a 405 needs them
      route.allow += (route.allow.empty() ? "" : ", ") + m + (m == "GET" ? ", HEAD" : "");
    }
    return route;
  }

  HttpResponse dispatch(const HttpRequest& req, const Route& route) {
    if (!route.path_known) return json_error(404, "not_found", "no such path: " + req.path);
    if (!route.handler) {  // RFC 9110 15.5.6: with the methods it does take
      auto r = json_error(405, "method_not_allowed",
                          req.method + " is not allowed on " + req.path + " (" + route.allow + ")");
      r.headers.emplace_back("Allow", route.allow);
      return r;
    }
    try {
      return route.handler->fn(req);
    } catch (const core::Failure& f) {
      // The one place typed errors become HTTP statuses.
      static const std::map<core::ErrorCode, int> kStatus = {
          {core::ErrorCode::invalid_argument, 400},
          {core::ErrorCode::not_found, 404},
          {core::ErrorCode::conflict, 409},
          {core::ErrorCode::unavailable, 503},
          {core::ErrorCode::internal, 500}};
      return json_error(kStatus.at(f.code()), core::to_string(f.code()), f.what(), f.error().field);
    } catch (const std::exception& e) {
      spdlog::error("admin: {} {} failed: {}", req.method, req.path, e.what());
      return json_error(500, "internal", "internal error");
    }
  }

  asio::awaitable<HttpResponse> dispatch_async(HttpRequest request, Route route) {
    co_return dispatch(request, route);
  }

  HttpRequest to_request(http::request<http::string_body>&& r, const std::string& peer) const {
    HttpRequest req;
    req.method = std::string(r.method_string());
    const std::string target(r.target());
    const auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    for (const auto& field : r) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto& value = req.headers[name];
      // Each proxy may add its own X-Forwarded-For line: one list, in order (RFC 9110 5.3).
      if (!value.empty() && name == "x-forwarded-for") {
        value += ", ";
      } else {
        value.clear();  // another field given twice: the last one, as before
      }
      value.append(field.value().data(), field.value().size());
    }
    const auto forwarded = req.headers.find("x-forwarded-for");
    req.client =
        client_behind(peer, forwarded == req.headers.end() ? std::string_view() : forwarded->second,
                      settings.trusted_proxies);
    req.body = std::move(r.body());  // not copied: a CSV upload may be 64 MiB
    return req;
  }

  asio::awaitable<void> session(tcp::socket socket) {
    auto self = shared_from_this();
    const auto client = net::peer_address(socket);
    const auto tls_context = tls.context();  // held for the connection's life
    if (!tls_context) {
      beast::tcp_stream stream(std::move(socket));
      co_await exchange(stream, client);
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls_context);
    beast::get_lowest_layer(stream).expires_after(settings.idle_timeout);
    beast::error_code ec;
    co_await stream.async_handshake(asio::ssl::stream_base::server,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;  // not TLS, or a failed handshake: nothing to answer
    co_await exchange(stream, client);
    co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  }

  // Requests and responses on one connection until it closes, times out or says so.
  template <class Stream>
  asio::awaitable<void> exchange(Stream& stream, const std::string& client) {
    beast::flat_buffer buffer;
    auto& connection = beast::get_lowest_layer(stream);
    for (;;) {
      if (draining) co_return;
      connection.expires_after(settings.idle_timeout);
      http::request_parser<http::string_body> parser;
      parser.header_limit(16 * 1024);
      // No limit while the header is read: Beast would hold its Content-Length against its
      // default 1 MiB before the route (and so the route's own limit) is known. (Not
      // boost::none: Beast 1.74 compares a length with it as "greater".)
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      beast::error_code ec;
      waiting.insert(&connection);
      co_await http::async_read_header(stream, buffer, parser,
                                       asio::redirect_error(asio::use_awaitable, ec));
      waiting.erase(&connection);
      if (draining && ec == asio::error::operation_aborted) co_return;
      ++active_requests;
      struct Answered {
        std::size_t& n;
        ~Answered() { --n; }
      } answered{active_requests};
      Route route;  // resolved once from the header: its body limit, then its handler
      if (!ec) {
        const std::string target(parser.get().target());
        route =
            resolve(std::string(parser.get().method_string()), target.substr(0, target.find('?')));
        const auto route_limit = route.handler ? route.handler->options.max_body_bytes : 0;
        const std::uint64_t limit = route_limit ? route_limit : settings.max_body_bytes;
        if (parser.content_length() && *parser.content_length() > limit) {
          ec = http::error::body_limit;
        } else {
          parser.body_limit(limit);  // a chunked body is held to it as it arrives
          co_await http::async_read(stream, buffer, parser,
                                    asio::redirect_error(asio::use_awaitable, ec));
        }
      }
      HttpResponse out;
      bool keep_alive = false;
      bool head = false;  // the answer's header only, its Content-Length the body's
      unsigned version = 11;
      if (ec == http::error::body_limit) {
        out = json_error(413, "payload_too_large", "request body larger than limit");
      } else if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
                 ec == asio::error::connection_reset || ec == asio::error::eof ||
                 ec == asio::ssl::error::stream_truncated) {
        co_return;
      } else if (ec) {
        out = json_error(400, "bad_request", "malformed HTTP request: " + ec.message());
      } else {
        auto r = parser.release();
        keep_alive = r.keep_alive();
        head = r.method() == http::verb::head;
        version = r.version();
        auto request = to_request(std::move(r), client);
        request.params = route.params;
        if (route.handler && route.handler->options.blocking) {
          // The request is the coroutine's parameter, so its frame owns it (a lambda's
          // captures would die with the lambda).
          out = co_await asio::co_spawn(workers.get_executor(),
                                        dispatch_async(std::move(request), std::move(route)),
                                        asio::use_awaitable);
        } else {
          out = dispatch(request, route);
        }
      }
      http::response<http::string_body> res{static_cast<http::status>(out.status), version};
      res.set(http::field::server, "mailroster");
      res.set(http::field::content_type, out.content_type);
      res.set(http::field::cache_control, "no-store");
      for (const auto& [name, value] : out.headers) res.insert(name, value);
      res.keep_alive(keep_alive && !draining);
      res.body() = std::move(out.body);
      res.prepare_payload();
      if (head) res.body().clear();  // Content-Length stays the GET's
      beast::error_code wec;
      co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, wec));
      if (wec || !res.keep_alive()) break;
    }
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        spdlog::warn("admin: accept failed: {}", ec.message());
        continue;
      }
      asio::co_spawn(io, session(std::move(socket)), asio::detached);
    }
  }
};

HttpServer::HttpServer(asio::io_context& io, HttpServerSettings settings)
    : impl_(std::make_shared<Impl>(io, std::move(settings))) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(const std::string& method, const std::string& path, HttpHandler handler,
                       RouteOptions options) {
  impl_->routes[path][method] = {std::move(handler), options};
}

void HttpServer::start() {
  net::listen(impl_->acceptor, impl_->settings.listen, "admin");
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
}

std::vector<std::pair<std::string, std::string>> HttpServer::routes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [path, methods] : impl_->routes) {
    for (const auto& [method, handler] : methods) out.emplace_back(method, path);
  }
  return out;
}

std::uint16_t HttpServer::port() const { return net::bound_port(impl_->acceptor); }

void HttpServer::stop_accepting() {
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

void HttpServer::drain() {
  stop_accepting();
  impl_->draining = true;
  for (auto* connection : impl_->waiting) connection->cancel();
}

std::size_t HttpServer::active_requests() const { return impl_->active_requests; }

void HttpServer::stop() {
  stop_accepting();
  impl_->workers.stop();
  impl_->workers.join();
}

net::ServerTls& HttpServer::tls() { return impl_->tls; }

}  // namespace mailroster::admin
