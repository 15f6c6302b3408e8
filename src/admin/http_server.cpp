#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "admin/http_server.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "net/acceptor.hpp"

namespace mailroster::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpResponse json_error(int status, std::string_view code, std::string_view message) {
  nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
  return HttpResponse{status, "application/json", body.dump()};
}

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_context, HttpServerSettings s)
      : io(io_context), settings(std::move(s)), acceptor(io_context) {}

  asio::io_context& io;
  HttpServerSettings settings;
  tcp::acceptor acceptor;
  // path -> method -> handler
  std::map<std::string, std::map<std::string, HttpHandler>> routes;

  HttpResponse dispatch(const HttpRequest& req) {
    auto path = routes.find(req.path);
    if (path == routes.end()) return json_error(404, "not_found", "no such path: " + req.path);
    auto handler = path->second.find(req.method);
    if (handler == path->second.end()) {
      return json_error(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
    }
    try {
      return handler->second(req);
    } catch (const core::Failure& f) {
      // The one place typed errors become HTTP statuses.
      static const std::map<core::ErrorCode, int> kStatus = {
          {core::ErrorCode::invalid_argument, 400},
          {core::ErrorCode::not_found, 404},
          {core::ErrorCode::conflict, 409},
          {core::ErrorCode::unavailable, 503},
          {core::ErrorCode::internal, 500}};
      return json_error(kStatus.at(f.code()), core::to_string(f.code()), f.what());
    } catch (const std::exception& e) {
      spdlog::error("admin: {} {} failed: {}", req.method, req.path, e.what());
      return json_error(500, "internal", "internal error");
    }
  }

  static HttpRequest to_request(const http::request<http::string_body>& r) {
    HttpRequest req;
    req.method = std::string(r.method_string());
    const std::string target(r.target());
    const auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    for (const auto& field : r) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers[name] = std::string(field.value());
    }
    req.body = r.body();
    return req;
  }

  asio::awaitable<void> session(tcp::socket socket) {
    auto self = shared_from_this();
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      stream.expires_after(settings.idle_timeout);
      http::request_parser<http::string_body> parser;
      parser.body_limit(settings.max_body_bytes);
      parser.header_limit(16 * 1024);
      beast::error_code ec;
      co_await http::async_read(stream, buffer, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      HttpResponse out;
      bool keep_alive = false;
      unsigned version = 11;
      if (ec == http::error::body_limit) {
        out = json_error(413, "payload_too_large", "request body larger than limit");
      } else if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
                 ec == asio::error::connection_reset || ec == asio::error::eof) {
        co_return;
      } else if (ec) {
        out = json_error(400, "bad_request", "malformed HTTP request: " + ec.message());
      } else {
        const auto& r = parser.get();
        keep_alive = r.keep_alive();
        version = r.version();
        out = dispatch(to_request(r));
      }
      http::response<http::string_body> res{static_cast<http::status>(out.status), version};
      res.set(http::field::server, "mailroster");
      res.set(http::field::content_type, out.content_type);
      res.set(http::field::cache_control, "no-store");
      res.keep_alive(keep_alive);
      res.body() = std::move(out.body);
      res.prepare_payload();
      beast::error_code wec;
      co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, wec));
      if (wec || !keep_alive) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
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

void HttpServer::route(const std::string& method, const std::string& path, HttpHandler handler) {
  impl_->routes[path][method] = std::move(handler);
}

void HttpServer::start() {
  net::listen(impl_->acceptor, impl_->settings.listen, "admin");
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
}

std::uint16_t HttpServer::port() const { return net::bound_port(impl_->acceptor); }

void HttpServer::stop() {
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

}  // namespace mailroster::admin
