// Opening a listening TCP socket the same way for every server of mailroster (admin HTTP,
// inbound and outbound SMTP): an IP address (not a name), SO_REUSEADDR, and one clear
// error line when the address is wrong or taken.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "core/network.hpp"

namespace mailroster::net {

// Binds and listens; throws core::Failure (invalid_argument for a host that is not an IP
// address, unavailable when the port cannot be had). `what` names the listener in errors.
void listen(boost::asio::ip::tcp::acceptor& acceptor, const core::Endpoint& at,
            const std::string& what);

// The bound port, 0 when not listening.
std::uint16_t bound_port(const boost::asio::ip::tcp::acceptor& acceptor);

// An accepted socket's peer as text, an IPv4 client of a dual-stack listener ([::]) as its
// IPv4 address ("192.0.2.7", not "::ffff:192.0.2.7"); "" when the socket has no peer.
std::string peer_address(const boost::asio::ip::tcp::socket& socket);

}  // namespace mailroster::net
