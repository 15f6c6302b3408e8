#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "admin/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/error.hpp"

namespace mailroster::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

HttpResponse http_request(const core::Endpoint& server, const std::string& method,
                          const std::string& path, const std::string& json_body,
                          const std::vector<std::pair<std::string, std::string>>& headers) {
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(30));
    stream.connect(resolver.resolve(server.host, std::to_string(server.port)));
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
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    return HttpResponse{static_cast<int>(res.result_int()),
                        std::string(res[http::field::content_type]), res.body()};
  } catch (const boost::system::system_error& e) {
    throw core::Failure(core::ErrorCode::unavailable, "cannot reach mailroster serve at " +
                                                          server.str() + ": " + e.code().message());
  }
}

}  // namespace mailroster::admin
