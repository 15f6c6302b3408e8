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

}  // namespace mailroster::net
