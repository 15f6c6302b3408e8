#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "admin/http_client.hpp"

#include <openssl/x509_vfy.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/error.hpp"

namespace mailroster::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

template <class Stream>
HttpResponse exchange(Stream& stream, const core::Endpoint& server, const std::string& method,
                      const std::string& path, const std::string& json_body,
                      const std::vector<std::pair<std::string, std::string>>& headers) {
  http::request<http::string_body> req{http::string_to_verb(method), path, 11};
  req.set(http::field::host, server.host);
  req.set(http::field::content_type, "application/json");
  for (const auto& [name, value] : headers) req.insert(name, value);
  req.body() = json_body;
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  return HttpResponse{static_cast<int>(res.result_int()),
                      std::string(res[http::field::content_type]), res.body()};
}

}  // namespace

HttpResponse http_request(const core::Endpoint& server, const std::string& method,
                          const std::string& path, const std::string& json_body,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          const std::string& tls_trust_file) {
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream tcp(io);
    tcp.expires_after(std::chrono::seconds(30));
    tcp.connect(resolver.resolve(server.host, std::to_string(server.port)));
    if (tls_trust_file.empty()) {
      auto res = exchange(tcp, server, method, path, json_body, headers);
      beast::error_code ignored;
      tcp.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      return res;
    }
    // HTTPS to our own admin port: the server's certificate must chain to the configured file,
    // which may be the server's own (self-signed) certificate, hence a partial chain is enough.
    // That pins the certificate, so the name in it is not checked.
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                    asio::ssl::context::no_tlsv1_1);
    ctx.load_verify_file(tls_trust_file);
    X509_STORE_set_flags(SSL_CTX_get_cert_store(ctx.native_handle()), X509_V_FLAG_PARTIAL_CHAIN);
    ctx.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> tls(std::move(tcp), ctx);
    tls.handshake(asio::ssl::stream_base::client);
    auto res = exchange(tls, server, method, path, json_body, headers);
    beast::error_code ignored;
    tls.shutdown(ignored);
    return res;
  } catch (const boost::system::system_error& e) {
    throw core::Failure(core::ErrorCode::unavailable, "cannot reach mailroster serve at " +
                                                          server.str() + ": " + e.code().message());
  }
}

}  // namespace mailroster::admin
