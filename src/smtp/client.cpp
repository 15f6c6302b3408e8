#include "smtp/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <map>

namespace mailroster::smtp {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

std::string_view to_string(ClientFailure f) {
  switch (f) {
    case ClientFailure::none:
      return "none";
    case ClientFailure::connect:
      return "connect";
    case ClientFailure::protocol:
      return "protocol";
    case ClientFailure::timeout:
      return "timeout";
  }
  return "?";
}

std::string ClientResult::describe() const {
  if (failure != ClientFailure::none) return std::string(to_string(failure)) + ": " + detail;
  auto text = reply.text;
  std::replace(text.begin(), text.end(), '\n', ' ');
  return std::to_string(reply.code) + " " + text;
}

struct ClientConnection::Impl {
  Impl(asio::io_context& io, const ClientSettings& s, core::Endpoint to)
      : socket(io), timer(io), settings(s), destination(std::move(to)) {}

  tcp::socket socket;
  asio::steady_timer timer;
  const ClientSettings& settings;
  core::Endpoint destination;
  std::string input;
  bool esmtp = false;
  std::vector<std::string> extensions;  // EHLO keywords, upper-cased
  bool broken = false;
  std::chrono::steady_clock::time_point idle_since;

  void arm(std::chrono::milliseconds timeout) {
    timer.expires_after(timeout);
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        socket.cancel(ignored);
      }
    });
  }

  bool expired() const { return timer.expiry() <= std::chrono::steady_clock::now(); }

  ClientResult fail(ClientFailure f, std::string detail) {
    broken = true;
    return ClientResult{f, {}, std::move(detail)};
  }

  awaitable<ClientResult> read_reply(std::chrono::milliseconds timeout) {
    std::array<char, 8192> buf{};
    for (;;) {
      if (auto parsed = parse_reply(input)) {
        input.erase(0, parsed->second);
        if (parsed->first.code < 0) co_return fail(ClientFailure::protocol, parsed->first.text);
        if (parsed->first.code == 421) broken = true;  // the server is closing
        co_return ClientResult{ClientFailure::none, parsed->first, {}};
      }
      if (input.size() > 64 * 1024) co_return fail(ClientFailure::protocol, "reply too long");
      boost::system::error_code ec;
      arm(timeout);
      const auto n = co_await socket.async_read_some(asio::buffer(buf),
                                                     asio::redirect_error(use_awaitable, ec));
      const bool timed_out = expired();
      timer.cancel();
      if (ec) {
        co_return fail(timed_out ? ClientFailure::timeout : ClientFailure::protocol,
                       timed_out ? "no reply in time" : "connection lost: " + ec.message());
      }
      input.append(buf.data(), n);
    }
  }

  awaitable<ClientResult> send(std::string_view bytes, std::chrono::milliseconds timeout) {
    boost::system::error_code ec;
    arm(timeout);
    co_await asio::async_write(socket, asio::buffer(bytes.data(), bytes.size()),
                               asio::redirect_error(use_awaitable, ec));
    const bool timed_out = expired();
    timer.cancel();
    if (ec) {
      co_return fail(timed_out ? ClientFailure::timeout : ClientFailure::protocol,
                     "send failed: " + ec.message());
    }
    co_return ClientResult{};
  }

  awaitable<ClientResult> command(std::string_view line, std::chrono::milliseconds timeout) {
    if (broken) co_return ClientResult{ClientFailure::protocol, {}, "connection not usable"};
    std::string wire(line);
    wire += "\r\n";
    auto sent = co_await send(wire, timeout);
    if (sent.failure != ClientFailure::none) co_return sent;
    co_return co_await read_reply(timeout);
  }

  awaitable<ClientResult> open(asio::io_context& io) {
    boost::system::error_code ec;
    tcp::resolver resolver(io);
    const auto endpoints =
        co_await resolver.async_resolve(destination.host, std::to_string(destination.port),
                                        asio::redirect_error(use_awaitable, ec));
    if (ec)
      co_return fail(ClientFailure::connect,
                     "cannot resolve " + destination.host + ": " + ec.message());
    arm(settings.connect_timeout);
    co_await asio::async_connect(socket, endpoints, asio::redirect_error(use_awaitable, ec));
    const bool timed_out = expired();
    timer.cancel();
    if (ec) {
      co_return fail(ClientFailure::connect,
                     destination.str() + ": " + (timed_out ? "connect timed out" : ec.message()));
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto greeting = co_await read_reply(settings.connect_timeout);
    if (greeting.failure != ClientFailure::none) {
      greeting.failure = ClientFailure::connect;
      greeting.detail = destination.str() + " greeting: " + greeting.detail;
      co_return greeting;
    }
    if (!greeting.reply.positive()) {
      broken = true;
      co_return greeting;
    }
    auto hello = co_await command("EHLO " + settings.helo_name, settings.command_timeout);
    if (hello.failure == ClientFailure::none && hello.reply.permanent() &&
        hello.reply.code != 421) {
      hello = co_await command("HELO " + settings.helo_name, settings.command_timeout);
    } else {
      esmtp = hello.positive();
      if (esmtp) extensions = ehlo_keywords(hello.reply.text);
    }
    if (!hello.positive()) broken = true;
    co_return hello;
  }
};

ClientConnection::ClientConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClientConnection::~ClientConnection() = default;
const core::Endpoint& ClientConnection::destination() const { return impl_->destination; }
bool ClientConnection::esmtp() const { return impl_->esmtp; }
bool ClientConnection::offers(std::string_view keyword) const {
  const auto& e = impl_->extensions;
  return std::find(e.begin(), e.end(), keyword) != e.end();
}
bool ClientConnection::usable() const { return !impl_->broken && impl_->socket.is_open(); }

awaitable<ClientResult> ClientConnection::command(std::string_view line) {
  return impl_->command(line, impl_->settings.command_timeout);
}

awaitable<ClientResult> ClientConnection::data(std::string_view message) {
  auto go = co_await impl_->command("DATA", impl_->settings.command_timeout);
  if (go.failure != ClientFailure::none || go.reply.code != 354) {
    if (go.failure == ClientFailure::none && go.reply.positive()) {
      co_return impl_->fail(ClientFailure::protocol, "DATA answered " + go.describe());
    }
    co_return go;
  }
  auto sent = co_await impl_->send(dot_stuff(message), impl_->settings.data_timeout);
  if (sent.failure != ClientFailure::none) co_return sent;
  co_return co_await impl_->read_reply(impl_->settings.data_timeout);
}

struct ClientPool::Impl {
  Impl(asio::io_context& io_context, ClientSettings s) : io(io_context), settings(std::move(s)) {}
  asio::io_context& io;
  ClientSettings settings;
  std::map<std::string, std::vector<std::unique_ptr<ClientConnection>>> idle;
  std::size_t connects = 0;
};

ClientPool::ClientPool(asio::io_context& io, ClientSettings settings)
    : impl_(std::make_unique<Impl>(io, std::move(settings))) {}
ClientPool::~ClientPool() = default;
std::size_t ClientPool::connects() const { return impl_->connects; }
void ClientPool::clear() { impl_->idle.clear(); }

awaitable<ClientPool::Lease> ClientPool::acquire(const core::Endpoint& to) {
  auto& idle = impl_->idle[to.str()];
  while (!idle.empty()) {
    auto c = std::move(idle.back());
    idle.pop_back();
    const auto age = std::chrono::steady_clock::now() - c->impl_->idle_since;
    if (age > impl_->settings.idle_keep || !c->usable()) continue;
    // The server may have closed it meanwhile: check with RSET before trusting it.
    auto check = co_await c->command("RSET");
    if (check.positive()) co_return Lease{std::move(c), check};
  }
  auto impl = std::make_unique<ClientConnection::Impl>(impl_->io, impl_->settings, to);
  ++impl_->connects;
  auto result = co_await impl->open(impl_->io);
  if (!result.positive()) co_return Lease{nullptr, result};
  co_return Lease{std::unique_ptr<ClientConnection>(new ClientConnection(std::move(impl))), result};
}

awaitable<void> ClientPool::release(std::unique_ptr<ClientConnection> c) {
  if (!c || !c->usable()) co_return;
  auto& idle = impl_->idle[c->destination().str()];
  if (idle.size() >= impl_->settings.max_idle_per_destination) {
    co_await c->command("QUIT");
    co_return;
  }
  c->impl_->idle_since = std::chrono::steady_clock::now();
  idle.push_back(std::move(c));
}

}  // namespace mailroster::smtp
