#include "net/acceptor.hpp"

#include "core/error.hpp"

namespace mailroster::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

void listen(tcp::acceptor& acceptor, const core::Endpoint& at, const std::string& what) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(at.host, ec);
  if (ec) {
    throw core::Failure(core::ErrorCode::invalid_argument,
                        what + " listen address must be an IP address, not '" + at.host + "'");
  }
  const tcp::endpoint endpoint(address, at.port);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(endpoint, ec);
  if (ec) {
    acceptor.close();
    throw core::Failure(core::ErrorCode::unavailable,
                        "cannot listen on " + at.str() + ": " + ec.message());
  }
  acceptor.listen(asio::socket_base::max_listen_connections);
}

std::uint16_t bound_port(const tcp::acceptor& acceptor) {
  boost::system::error_code ec;
  const auto ep = acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

std::string peer_address(const tcp::socket& socket) {
  boost::system::error_code ec;
  auto address = socket.remote_endpoint(ec).address();
  if (ec) return "";
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
  }
  return address.to_string();
}

}  // namespace mailroster::net
