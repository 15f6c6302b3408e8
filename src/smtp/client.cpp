#include "smtp/client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <map>

#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

namespace mailroster::smtp {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
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

std::string_view to_string(TlsPolicy p) {
  switch (p) {
    case TlsPolicy::none:
      return "none";
    case TlsPolicy::may:
      return "may";
    case TlsPolicy::encrypt:
      return "encrypt";
    case TlsPolicy::verify:
      return "verify";
  }
  return "?";
}

std::optional<TlsPolicy> parse_tls_policy(std::string_view text) {
  for (auto p : {TlsPolicy::none, TlsPolicy::may, TlsPolicy::encrypt, TlsPolicy::verify}) {
    if (text == to_string(p)) return p;
  }
  return std::nullopt;
}

std::string ClientResult::describe() const {
  if (failure != ClientFailure::none) return std::string(to_string(failure)) + ": " + detail;
  auto text = reply.text;
  std::replace(text.begin(), text.end(), '\n', ' ');
  return std::to_string(reply.code) + " " + text;
}

struct ClientConnection::Impl {
  Impl(asio::io_context& io, const ClientSettings& s, std::shared_ptr<ssl::context> tls_ctx,
       core::Endpoint to)
      : socket(io),
        timer(io),
        settings(s),
        tls_context(std::move(tls_ctx)),
        destination(std::move(to)) {}

  tcp::socket socket;
  asio::steady_timer timer;
  const ClientSettings& settings;
  std::shared_ptr<ssl::context> tls_context;       // the pool's when this connection was made
  std::unique_ptr<ssl::stream<tcp::socket&>> tls;  // after STARTTLS
  bool plaintext = false;   // "may", again after a failed handshake: no STARTTLS this time
  bool tls_failed = false;  // the handshake failed
  TlsInfo tls_info;
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
      const auto n = tls ? co_await tls->async_read_some(asio::buffer(buf),
                                                         asio::redirect_error(use_awaitable, ec))
                         : co_await socket.async_read_some(asio::buffer(buf),
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
    const auto buffer = asio::buffer(bytes.data(), bytes.size());
    if (tls) {
      co_await asio::async_write(*tls, buffer, asio::redirect_error(use_awaitable, ec));
    } else {
      co_await asio::async_write(socket, buffer, asio::redirect_error(use_awaitable, ec));
    }
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
    if (!hello.positive()) {
      broken = true;
      co_return hello;
    }
    if (settings.tls == TlsPolicy::none || plaintext) co_return hello;
    if (!esmtp || !offers("STARTTLS")) {
      if (settings.tls == TlsPolicy::may) co_return hello;
      co_return fail(ClientFailure::connect, destination.str() + ": TLS is required (" +
                                                 std::string(to_string(settings.tls)) +
                                                 ") but STARTTLS is not offered");
    }
    co_return co_await start_tls(std::move(hello));
  }

  void describe_tls() {
    SSL* ssl = tls->native_handle();
    tls_info.active = true;
    tls_info.version = SSL_get_version(ssl);
    tls_info.cipher = SSL_get_cipher_name(ssl);
    X509* peer = SSL_get1_peer_certificate(ssl);
    if (!peer) {
      tls_info.chain_error = "no certificate";
      return;
    }
    std::array<char, 512> subject{};
    X509_NAME_oneline(X509_get_subject_name(peer), subject.data(), int(subject.size()));
    tls_info.peer_subject = subject.data();
    const long verdict = SSL_get_verify_result(ssl);
    tls_info.chain_trusted = verdict == X509_V_OK;
    if (!tls_info.chain_trusted) tls_info.chain_error = X509_verify_cert_error_string(verdict);
    boost::system::error_code ec;
    asio::ip::make_address(destination.host, ec);
    tls_info.names_host = ec ? X509_check_host(peer, destination.host.c_str(),
                                               destination.host.size(), 0, nullptr) == 1
                             : X509_check_ip_asc(peer, destination.host.c_str(), 0) == 1;
    X509_free(peer);
  }

  bool offers(std::string_view keyword) const {
    return std::find(extensions.begin(), extensions.end(), keyword) != extensions.end();
  }

  // STARTTLS, the handshake, and EHLO again (RFC 3207 4.2: what was said before is forgotten).
  awaitable<ClientResult> start_tls(ClientResult hello) {
    auto go = co_await command("STARTTLS", settings.command_timeout);
    if (go.failure != ClientFailure::none) co_return go;
    if (go.reply.code != 220) {
      if (settings.tls == TlsPolicy::may) co_return hello;  // the session goes on in the clear
      co_return fail(
          ClientFailure::connect,
          destination.str() + ": TLS is required but STARTTLS was answered " + go.describe());
    }
    input.clear();
    tls = std::make_unique<ssl::stream<tcp::socket&>>(socket, *tls_context);
    if (settings.tls == TlsPolicy::verify) {
      tls->set_verify_mode(ssl::verify_peer);
      tls->set_verify_callback(ssl::host_name_verification(destination.host));
    }
    boost::system::error_code ec;
    asio::ip::make_address(destination.host, ec);
    if (ec) SSL_set_tlsext_host_name(tls->native_handle(), destination.host.c_str());  // SNI
    ec.clear();
    arm(settings.command_timeout);
    co_await tls->async_handshake(ssl::stream_base::client,
                                  asio::redirect_error(use_awaitable, ec));
    const bool timed_out = expired();
    timer.cancel();
    if (ec) {
      tls_failed = true;
      co_return fail(ClientFailure::connect,
                     destination.str() + ": TLS handshake failed: " +
                         (timed_out ? std::string("timed out") : ec.message()));
    }
    describe_tls();
    auto again = co_await command("EHLO " + settings.helo_name, settings.command_timeout);
    if (!again.positive()) {
      broken = true;
      co_return again;
    }
    extensions = ehlo_keywords(again.reply.text);
    co_return again;
  }
};

ClientConnection::ClientConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClientConnection::~ClientConnection() = default;
const core::Endpoint& ClientConnection::destination() const { return impl_->destination; }
bool ClientConnection::esmtp() const { return impl_->esmtp; }
bool ClientConnection::tls() const { return impl_->tls != nullptr; }
const TlsInfo& ClientConnection::tls_info() const { return impl_->tls_info; }
const std::vector<std::string>& ClientConnection::extensions() const { return impl_->extensions; }
bool ClientConnection::offers(std::string_view keyword) const { return impl_->offers(keyword); }
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

namespace {

// The client side's TLS: TLS 1.2 or later, and the CAs loaded for every policy (under "may"
// and "encrypt" a certificate is checked too, and the outcome shown by `domain check`, only
// not enforced). Throws when CAs that are needed cannot be loaded.
std::shared_ptr<ssl::context> client_tls_context(const ClientSettings& settings) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  if (settings.tls_ca_file.empty()) {
    context->set_default_verify_paths(ec);
  } else {
    context->load_verify_file(settings.tls_ca_file, ec);
  }
  if (ec && (settings.tls == TlsPolicy::verify || !settings.tls_ca_file.empty())) {
    throw std::runtime_error("cannot load the CAs to verify destinations ('" +
                             settings.tls_ca_file + "'): " + ec.message());
  }
  return context;
}

}  // namespace

struct ClientPool::Impl {
  Impl(asio::io_context& io_context, ClientSettings s)
      : io(io_context), settings(std::move(s)), tls_context(client_tls_context(settings)) {}
  asio::io_context& io;
  ClientSettings settings;
  std::shared_ptr<ssl::context> tls_context;
  std::map<std::string, std::vector<std::unique_ptr<ClientConnection>>> idle;  // by server
  // Servers that failed lately, by server: until when each is tried after the others, and
  // its last failure as failing() shows it.
  struct Failed {
    std::chrono::steady_clock::time_point until;
    ClientPool::FailingServer shown;
  };
  std::map<std::string, Failed> failed;
  std::size_t connects = 0;
  std::size_t tls_connects = 0;
  std::size_t failovers = 0;

  bool resting(const core::Endpoint& server, std::chrono::steady_clock::time_point now) {
    const auto it = failed.find(server.str());
    if (it == failed.end()) return false;
    if (it->second.until > now) return true;
    failed.erase(it);
    return false;
  }

  // A session with this one server: an idle connection that still answers RSET, or a new one.
  awaitable<Lease> acquire(const core::Endpoint& to) {
    auto& waiting = idle[to.str()];
    while (!waiting.empty()) {
      auto c = std::move(waiting.back());
      waiting.pop_back();
      const auto age = std::chrono::steady_clock::now() - c->impl_->idle_since;
      if (age > settings.idle_keep || !c->usable()) continue;
      // The server may have closed it meanwhile: check with RSET before trusting it.
      auto check = co_await c->command("RSET");
      if (check.positive()) co_return Lease{std::move(c), check};
    }
    auto [impl, result] = co_await connect(to, false);
    if (!result.positive() && impl->tls_failed && settings.tls == TlsPolicy::may) {
      // As Postfix: a server whose TLS is broken still gets its mail, in the clear.
      std::tie(impl, result) = co_await connect(to, true);
    }
    if (!result.positive()) co_return Lease{nullptr, result};
    co_return Lease{std::unique_ptr<ClientConnection>(new ClientConnection(std::move(impl))),
                    result};
  }

  awaitable<std::pair<std::unique_ptr<ClientConnection::Impl>, ClientResult>> connect(
      const core::Endpoint& to, bool plaintext) {
    auto impl = std::make_unique<ClientConnection::Impl>(io, settings, tls_context, to);
    impl->plaintext = plaintext;
    ++connects;
    auto result = co_await impl->open(io);
    if (result.positive() && impl->tls) ++tls_connects;
    co_return std::make_pair(std::move(impl), std::move(result));
  }
};

ClientPool::ClientPool(asio::io_context& io, ClientSettings settings)
    : impl_(std::make_unique<Impl>(io, std::move(settings))) {}
ClientPool::~ClientPool() = default;
std::size_t ClientPool::connects() const { return impl_->connects; }
std::size_t ClientPool::tls_connects() const { return impl_->tls_connects; }
std::size_t ClientPool::failovers() const { return impl_->failovers; }
std::vector<ClientPool::FailingServer> ClientPool::failing() const {
  const auto now = std::chrono::steady_clock::now();
  std::vector<FailingServer> out;
  for (const auto& [server, f] : impl_->failed) {
    if (f.until > now) out.push_back(f.shown);
  }
  return out;
}

std::size_t ClientPool::passed_over() const { return failing().size(); }
void ClientPool::clear() { impl_->idle.clear(); }

void ClientPool::reconfigure(const ClientSettings& settings) {
  auto& s = impl_->settings;
  if (settings.tls != s.tls || settings.tls_ca_file != s.tls_ca_file) {
    impl_->tls_context = client_tls_context(settings);  // throws before anything changed
    s.tls = settings.tls;
    s.tls_ca_file = settings.tls_ca_file;
    impl_->idle.clear();  // sessions opened under the old policy are not reused
  }
  s.connect_timeout = settings.connect_timeout;
  s.command_timeout = settings.command_timeout;
  s.data_timeout = settings.data_timeout;
  s.max_idle_per_destination = settings.max_idle_per_destination;
  s.idle_keep = settings.idle_keep;
  s.server_retry = settings.server_retry;
}

awaitable<ClientPool::Lease> ClientPool::acquire(const core::Destination& to) {
  auto& I = *impl_;
  const auto now = std::chrono::steady_clock::now();
  std::vector<const core::Endpoint*> order;  // as listed, those that failed lately last
  for (const auto& server : to.hosts) {
    if (!I.resting(server, now)) order.push_back(&server);
  }
  for (const auto& server : to.hosts) {
    if (I.resting(server, now)) order.push_back(&server);
  }
  Lease lease;
  std::string failures;
  for (const auto* server : order) {
    lease = co_await I.acquire(*server);
    if (lease.connection) {
      I.failed.erase(server->str());
      if (server != &to.hosts.front()) ++I.failovers;
      co_return lease;
    }
    // "mx1:25: Connection refused", "mx2:25: 421 4.3.2 too busy"
    auto why =
        lease.result.failure == ClientFailure::none ? lease.result.describe() : lease.result.detail;
    if (!why.starts_with(server->str())) why = server->str() + ": " + why;
    if (to.hosts.size() > 1 && !I.resting(*server, std::chrono::steady_clock::now())) {
      spdlog::warn("{} (a server of {}): tried after the others for {} s", why, to.str(),
                   I.settings.server_retry.count());
    }
    const auto at = std::chrono::system_clock::now();
    I.failed[server->str()] = {std::chrono::steady_clock::now() + I.settings.server_retry,
                               {server->str(), at, at + I.settings.server_retry, why}};
    failures += (failures.empty() ? "" : "; ") + why;
  }
  if (to.hosts.size() > 1) {
    lease.result =
        ClientResult{ClientFailure::connect, {}, "no server took a session: " + failures};
  }
  co_return lease;
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
