#include "smtp/server.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <map>
#include <random>
#include <set>

#include "core/error.hpp"
#include "net/acceptor.hpp"
#include "net/proxy_protocol.hpp"
#include "net/tls.hpp"

namespace mailroster::smtp {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

namespace {

enum class State { connected, greeted, mail, rcpt, closing };

std::string_view to_string(State s) {
  switch (s) {
    case State::connected:
      return "connected";
    case State::greeted:
      return "greeted";
    case State::mail:
      return "mail";
    case State::rcpt:
      return "rcpt";
    case State::closing:
      return "closing";
  }
  return "?";
}

const Reply kBadSequence{503, "5.5.1 bad sequence of commands"};
// RFC 6531 3.5: a non-ASCII address needs MAIL ... SMTPUTF8 first.
const Reply kUndeclaredUtf8{553, "5.6.7 must declare SMTPUTF8 to send a non-ASCII address"};

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_context, ServerSettings s, SessionHandler& h)
      : io(io_context),
        settings(std::move(s)),
        handler(h),
        acceptor(io_context),
        tls(settings.name, settings.tls_cert_file, settings.tls_key_file) {}

  asio::io_context& io;
  ServerSettings settings;
  SessionHandler& handler;
  tcp::acceptor acceptor;
  net::ServerTls tls;
  Server::TlsCounts tls_counts;
  std::map<std::string, std::size_t> per_client;
  std::size_t active = 0;
  bool draining = false;

  struct Session;
  std::set<Session*> sessions;  // every connection's, for drain()
  std::uint64_t next_id = std::random_device{}() & 0xFFFFFF;

  awaitable<void> run(tcp::socket socket);
  awaitable<void> accept_loop();
};

// Everything one connection owns; all per-connection data lives here.
struct Server::Impl::Session {
  Session(Impl& server, tcp::socket s) : srv(server), socket(std::move(s)), timer(server.io) {}

  Impl& srv;
  tcp::socket socket;
  std::shared_ptr<ssl::context> tls_context;  // the certificate it started TLS with
  std::unique_ptr<ssl::stream<tcp::socket&>> tls;
  asio::steady_timer timer;
  SessionInfo info;
  State state = State::connected;
  Transaction tx;
  std::optional<ChunkReader> chunks;  // the message so far, between a BDAT and its LAST
  LineBuffer input;
  std::string output;
  std::size_t errors = 0;
  bool io_failed = false;
  bool awaiting_input = false;  // a read from the client is pending

  // drain(): a session with no transaction under way that waits for the client is told at
  // once; any other finishes what it is doing first (run() checks between commands).
  void drain() {
    if (awaiting_input && (state == State::connected || state == State::greeted)) {
      boost::system::error_code ignored;
      socket.cancel(ignored);
    }
  }
  Reply shutting_down() const {
    return {421, "4.3.2 " + srv.settings.hostname + " shutting down, try again later"};
  }

  void enter_state(State next) {
    if (next != state) {
      spdlog::trace("{} {}: {} -> {}", srv.settings.name, info.id, to_string(state),
                    to_string(next));
    }
    state = next;
  }

  // 421 means the server closes the session (RFC 5321 3.8), whoever decided it.
  void reply(const Reply& r) {
    output += r.wire();
    if (r.code == 421) enter_state(State::closing);
  }

  void reset_transaction() {
    tx = Transaction{};
    chunks.reset();
    if (state == State::mail || state == State::rcpt) enter_state(State::greeted);
  }

  // Our close_notify, without waiting for the client's (RFC 8446 6.1: the closer need not): a
  // client that never answers it must not keep the session open. (It was a blocking wait once,
  // which held the whole I/O thread, every session with it, until that client spoke.)
  awaitable<void> close_tls() {
    SSL_set_shutdown(tls->native_handle(), SSL_RECEIVED_SHUTDOWN);
    boost::system::error_code ignored;
    arm_timer();  // a client that reads nothing cannot hold the write either
    co_await tls->async_shutdown(asio::redirect_error(use_awaitable, ignored));
    timer.cancel();
  }

  // Arms the idle timer; when it fires, the socket is cancelled and the pending read fails.
  void arm_timer() {
    timer.expires_after(srv.settings.idle_timeout);
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        socket.cancel(ignored);
      }
    });
  }

  awaitable<void> flush() {
    if (output.empty() || io_failed) co_return;
    boost::system::error_code ec;
    arm_timer();
    if (tls) {
      co_await asio::async_write(*tls, asio::buffer(output),
                                 asio::redirect_error(use_awaitable, ec));
    } else {
      co_await asio::async_write(socket, asio::buffer(output),
                                 asio::redirect_error(use_awaitable, ec));
    }
    timer.cancel();
    output.clear();
    if (ec) io_failed = true;
  }

  // Bytes from the client into buf, after the pending replies went out (so pipelined
  // commands get their answers together); nullopt when the connection ended or timed out
  // (said to the client when it timed out, or when serve is stopping).
  awaitable<std::optional<std::size_t>> read_some(std::array<char, 4096>& buf) {
    co_await flush();
    if (io_failed) co_return std::nullopt;
    boost::system::error_code ec;
    std::size_t n = 0;
    arm_timer();
    awaiting_input = true;
    if (tls) {
      n = co_await tls->async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    } else {
      n = co_await socket.async_read_some(asio::buffer(buf),
                                          asio::redirect_error(use_awaitable, ec));
    }
    awaiting_input = false;
    const bool timed_out = timer.expiry() <= std::chrono::steady_clock::now();
    timer.cancel();
    if (ec) {
      if (timed_out) {
        reply({421, "4.4.2 " + srv.settings.hostname + " idle timeout, closing connection"});
        co_await flush();
      } else if (srv.draining && ec == asio::error::operation_aborted) {
        reply(shutting_down());
        co_await flush();
      }
      io_failed = true;
      co_return std::nullopt;
    }
    co_return n;
  }

  // The next line from the client; nullopt when the connection ended or timed out.
  awaitable<std::optional<Line>> read_line(std::size_t limit) {
    // Small: this frame lives as long as an idle session does (10,000 of them < 256 MiB).
    std::array<char, 4096> buf{};
    for (;;) {
      if (auto line = input.next(limit)) co_return line;
      const auto n = co_await read_some(buf);
      if (!n) co_return std::nullopt;
      input.append(std::string_view(buf.data(), *n));
    }
  }

  // A BDAT chunk's `size` bytes, into `sink` (or dropped when it is null); false when the
  // connection ended first. What came after the chunk stays for the next command.
  awaitable<bool> read_chunk(std::uint64_t size, ChunkReader* sink) {
    auto left = size;
    const auto take = [&](std::string_view bytes) {
      if (sink) sink->add(bytes);
      left -= bytes.size();
    };
    take(input.take(left));
    std::array<char, 4096> buf{};
    while (left > 0) {
      const auto n = co_await read_some(buf);
      if (!n) co_return false;
      const auto used = static_cast<std::size_t>(std::min<std::uint64_t>(*n, left));
      take(std::string_view(buf.data(), used));
      if (used < *n) input.append(std::string_view(buf.data() + used, *n - used));
    }
    co_return true;
  }

  // The PROXY header a load balancer sends first: the client it names becomes the session's
  // client, and what follows it is the client's. False (logged) when the connection ends,
  // times out or begins with anything else; it is then closed without a greeting.
  awaitable<bool> read_proxy_header() {
    std::string head;
    std::array<char, 512> buf{};
    for (;;) {
      const auto p = net::parse_proxy_header(head);
      if (p.status == net::ProxyParse::Status::done) {
        const auto peer = info.client_ip;
        if (p.header.source) info.client_ip = p.header.source->str();
        spdlog::debug("{} {}: client {} by PROXY v{} from {}", srv.settings.name, info.id,
                      info.client_ip, p.header.version, peer);
        input.append(std::string_view(head).substr(p.consumed));
        co_return true;
      }
      if (p.status == net::ProxyParse::Status::invalid) {
        spdlog::warn("{} {}: connection from {} closed: {}", srv.settings.name, info.id,
                     info.client_ip, p.error);
        co_return false;
      }
      boost::system::error_code ec;
      arm_timer();
      awaiting_input = true;
      const auto n = co_await socket.async_read_some(asio::buffer(buf),
                                                     asio::redirect_error(use_awaitable, ec));
      awaiting_input = false;
      timer.cancel();
      if (ec) {
        // Nothing at all, then the end: a balancer's plain TCP health check, not worth a warning.
        const auto level =
            head.empty() && ec == asio::error::eof ? spdlog::level::debug : spdlog::level::warn;
        spdlog::log(level, "{} {}: connection from {} closed before its PROXY header: {}",
                    srv.settings.name, info.id, info.client_ip, ec.message());
        co_return false;
      }
      head.append(buf.data(), n);
    }
  }

  // A protocol error; too many of them end the session (RFC 5321 allows dropping abusers).
  void error(const Reply& r) {
    reply(r);
    if (++errors >= srv.settings.max_errors) {
      reply({421, "4.7.0 " + srv.settings.hostname + " too many errors, closing connection"});
      enter_state(State::closing);
    }
  }

  std::string ehlo_text() const {
    std::string text = srv.settings.hostname + " greets " + info.helo;
    text += "\nPIPELINING";
    text += "\nSIZE " + std::to_string(srv.settings.limits.message_size);
    text += "\n8BITMIME";
    text += "\nENHANCEDSTATUSCODES";
    text += "\nSMTPUTF8";
    text += "\nDSN";
    text += "\nCHUNKING";
    if (srv.tls.enabled() && !tls) text += "\nSTARTTLS";
    return text;
  }

  awaitable<void> on_helo(const Command& c) {
    reset_transaction();
    info.helo = c.argument;
    info.esmtp = c.verb == Verb::ehlo;
    enter_state(State::greeted);
    reply({250, info.esmtp ? ehlo_text() : srv.settings.hostname});
    co_return;
  }

  awaitable<void> on_mail(const Command& c) {
    if (state == State::connected) co_return error({503, "5.5.1 send EHLO or HELO first"});
    if (state != State::greeted) co_return error({503, "5.5.1 nested MAIL command"});
    if (srv.settings.require_tls && !tls) {
      co_return error({530, "5.7.0 Must issue a STARTTLS command first"});
    }
    Transaction next;
    next.mail_from = c.path;
    for (const auto& p : c.parameters) {
      if (!info.esmtp) co_return error({555, "5.5.4 parameters need EHLO"});
      if (p.keyword == "SIZE") {
        std::uint64_t size = 0;
        auto [end, ec] = std::from_chars(p.value.data(), p.value.data() + p.value.size(), size);
        const bool digits = end == p.value.data() + p.value.size() && !p.value.empty();
        if (!digits || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
          co_return error({501, "5.5.4 bad SIZE value"});
        }
        // Too many digits for 64 bits is still a size, and over any limit (RFC 1870 6.1).
        if (ec == std::errc::result_out_of_range || size > srv.settings.limits.message_size) {
          reply({552, "5.3.4 message size exceeds fixed maximum message size"});
          co_return;
        }
        next.declared_size = size;
      } else if (p.keyword == "BODY") {
        const auto body = core::ascii_lower(p.value);
        if (body != "7bit" && body != "8bitmime") co_return error({501, "5.5.4 bad BODY value"});
        next.eight_bit = body == "8bitmime";
      } else if (p.keyword == "SMTPUTF8") {
        if (!p.value.empty()) co_return error({501, "5.5.4 SMTPUTF8 takes no value"});
        next.smtputf8 = true;
      } else if (p.keyword == "RET") {  // RFC 3461 4.3
        const auto ret = core::ascii_lower(p.value);
        if (ret != "full" && ret != "hdrs")
          co_return error({501, "5.5.4 RET must be FULL or HDRS"});
        next.dsn.ret = ret == "full" ? "FULL" : "HDRS";
      } else if (p.keyword == "ENVID") {  // RFC 3461 4.4
        if (p.value.empty() || p.value.size() > 100 || !is_xtext(p.value)) {
          co_return error({501, "5.5.4 ENVID must be xtext of at most 100 characters"});
        }
        next.dsn.envid = p.value;
      } else {
        co_return error({555, "5.5.4 unsupported parameter " + p.keyword});
      }
    }
    if (!next.smtputf8 && !core::is_ascii(c.path)) co_return error(kUndeclaredUtf8);
    const auto r = co_await srv.handler.on_mail(info, next);
    if (r.positive()) {
      tx = std::move(next);
      enter_state(State::mail);
    }
    reply(r);
  }

  awaitable<void> on_rcpt(const Command& c) {
    if (state != State::mail && state != State::rcpt)
      co_return error({503, "5.5.1 need MAIL first"});
    if (chunks) co_return error({503, "5.5.1 RCPT after BDAT"});
    DsnRecipient dsn;
    for (const auto& p : c.parameters) {
      if (!info.esmtp) co_return error({555, "5.5.4 parameters need EHLO"});
      if (p.keyword == "NOTIFY") {  // RFC 3461 4.1
        const auto notify = dsn_notify(p.value);
        if (!notify) {
          co_return error(
              {501, "5.5.4 NOTIFY must be NEVER, or one or more of SUCCESS, FAILURE, DELAY"});
        }
        dsn.notify = *notify;
      } else if (p.keyword == "ORCPT") {  // RFC 3461 4.2
        if (!is_dsn_orcpt(p.value, tx.smtputf8)) {
          co_return error({501, "5.5.4 ORCPT must be addr-type;xtext (rfc822;user@domain)"});
        }
        dsn.orcpt = p.value;
      } else {
        co_return error({555, "5.5.4 unsupported parameter " + p.keyword});
      }
    }
    if (!tx.smtputf8 && !core::is_ascii(c.path)) co_return error(kUndeclaredUtf8);
    if (tx.recipients.size() >= srv.settings.limits.recipients) {
      const Reply r{452, "4.5.3 too many recipients"};  // RFC 5321 4.5.3.1.10
      srv.handler.on_rcpt_refused(info, tx, c, r);
      reply(r);
      co_return;
    }
    const auto r = co_await srv.handler.on_rcpt(info, tx, c);
    if (r.positive()) {
      tx.recipients.push_back(c.path);
      tx.recipient_addresses.push_back(c.address.value_or(core::Address{}));
      tx.recipient_dsn.push_back(std::move(dsn));
      enter_state(State::rcpt);
      reply(r);
    } else if (r.permanent()) {
      // Refused recipients (unknown, relay denied) count as errors, as in Postfix: a client
      // spraying addresses or foreign domains is dropped at the limit, as for bad commands.
      error(r);
    } else {
      reply(r);
    }
  }

  awaitable<void> on_data(const Command&) {
    if (chunks) co_return error({503, "5.5.1 DATA after BDAT (RFC 3030 2)"});
    if (state == State::mail) co_return error({554, "5.5.1 no valid recipients"});
    if (state != State::rcpt) co_return error({503, "5.5.1 need RCPT first"});
    reply({354, "End data with <CR><LF>.<CR><LF>"});
    co_await flush();
    DataReader data(srv.settings.limits);
    for (;;) {
      auto line = co_await read_line(srv.settings.limits.text_line);
      if (!line) co_return;  // connection lost: nothing was accepted
      if (data.add(*line)) break;
    }
    Reply r;
    if (auto refusal = data.refusal()) {
      r = *refusal;
      srv.handler.on_message_refused(info, tx, r);
    } else {
      r = co_await srv.handler.on_message(info, tx, data.take_message());
    }
    reset_transaction();
    reply(r);
  }

  // BDAT (RFC 3030): a chunk is read whatever the answer, since its bytes are not commands;
  // a BDAT whose size cannot be read ends the session, as its chunk cannot be skipped. The
  // chunks are checked as DATA's lines are, and the message decided at the LAST one.
  awaitable<void> on_bdat(const Command& c) {
    const auto chunk = parse_bdat(c.argument);
    if (!chunk) {
      reply({501, "5.5.4 Syntax: BDAT <size> [LAST]"});
      reply({421, "4.5.0 " + srv.settings.hostname +
                      " closing connection: the chunk that follows cannot be told from commands"});
      co_return;
    }
    std::optional<Reply> refused;
    if (state == State::mail) {
      refused = Reply{554, "5.5.1 no valid recipients"};
    } else if (state != State::rcpt) {
      refused = Reply{503, "5.5.1 need RCPT first"};
    }
    if (!refused && !chunks) chunks.emplace(srv.settings.limits);
    if (!co_await read_chunk(chunk->size, refused ? nullptr : &*chunks)) co_return;
    if (refused) co_return error(*refused);
    if (!chunk->last) {
      co_return reply({250, "2.0.0 " + std::to_string(chunk->size) + " octets received"});
    }
    Reply r;
    if (auto refusal = chunks->refusal()) {
      r = *refusal;
      srv.handler.on_message_refused(info, tx, r);
    } else {
      r = co_await srv.handler.on_message(info, tx, chunks->take_message());
    }
    reset_transaction();
    reply(r);
  }

  awaitable<void> on_starttls(const Command&) {
    if (!srv.tls.enabled()) co_return error({502, "5.5.1 STARTTLS not offered"});
    if (tls) co_return error({503, "5.5.1 TLS already active"});
    reply({220, "2.0.0 ready to start TLS"});
    co_await flush();
    input.clear();  // RFC 3207 4.2: nothing sent in the clear may be used after the handshake
    tls_context = srv.tls.context();
    tls = std::make_unique<ssl::stream<tcp::socket&>>(socket, *tls_context);
    boost::system::error_code ec;
    arm_timer();
    co_await tls->async_handshake(ssl::stream_base::server,
                                  asio::redirect_error(use_awaitable, ec));
    timer.cancel();
    if (ec) {
      spdlog::info("{} {}: TLS handshake failed: {}", srv.settings.name, info.id, ec.message());
      ++srv.tls_counts.failed;
      io_failed = true;
      co_return;
    }
    ++srv.tls_counts.established;
    const SSL* ssl = tls->native_handle();
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    int secret_bits = 0;
    const int bits = SSL_CIPHER_get_bits(cipher, &secret_bits);
    info.tls = fmt::format("{} with cipher {} ({}/{} bits)", SSL_get_version(ssl),
                           SSL_CIPHER_get_name(cipher), bits, secret_bits);
    spdlog::debug("{} {}: TLS {}", srv.settings.name, info.id, info.tls);
    info.helo.clear();
    tx = Transaction{};
    enter_state(State::connected);
  }

  awaitable<void> dispatch(const Command& c) {
    switch (c.verb) {
      case Verb::helo:
      case Verb::ehlo:
        co_return co_await on_helo(c);
      case Verb::mail:
        co_return co_await on_mail(c);
      case Verb::rcpt:
        co_return co_await on_rcpt(c);
      case Verb::data:
        co_return co_await on_data(c);
      case Verb::bdat:
        co_return co_await on_bdat(c);
      case Verb::starttls:
        co_return co_await on_starttls(c);
      case Verb::rset:
        reset_transaction();
        co_return reply({250, "2.0.0 Ok"});
      case Verb::noop:
        co_return reply({250, "2.0.0 Ok"});
      case Verb::vrfy:
        co_return reply(
            {252, "2.5.2 cannot VRFY user, but will accept message and attempt delivery"});
      case Verb::expn:
        co_return reply({502, "5.5.1 EXPN not available"});
      case Verb::help:
        co_return reply(
            {214, "2.0.0 commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP" +
                      std::string(srv.tls.enabled() ? " STARTTLS" : "")});
      case Verb::quit:
        reply({221, "2.0.0 Bye"});
        enter_state(State::closing);
        co_return;
    }
  }

  awaitable<void> run() {
    for (;;) {
      if (state == State::closing || io_failed) break;
      if (srv.draining && (state == State::connected || state == State::greeted)) {
        reply(shutting_down());  // between transactions: nothing under way is cut
        break;
      }
      auto line = co_await read_line(srv.settings.limits.command_line);
      if (!line) break;
      if (line->too_long) {
        error({500, "5.5.2 line too long (RFC 5321 4.5.3.1.4: 512 octets)"});
        continue;
      }
      if (line->bare_newline) {
        error({500, "5.5.2 bare <LF> or <CR> received; commands must end with <CR><LF>"});
        continue;
      }
      auto parsed = parse_command(line->text, srv.settings.strict_envelopes);
      if (!parsed.command) {
        error(parsed.error);
        continue;
      }
      co_await dispatch(*parsed.command);
    }
    co_await flush();
  }
};

awaitable<void> Server::Impl::run(tcp::socket socket) {
  auto self = shared_from_this();
  auto peer = net::peer_address(socket);
  if (peer.empty()) co_return;
  Session s(*this, std::move(socket));
  sessions.insert(&s);
  struct Unlist {
    Impl& srv;
    Session* s;
    ~Unlist() { srv.sessions.erase(s); }
  } unlist{*this, &s};
  s.info.client_ip = std::move(peer);
  char id[16];
  std::snprintf(id, sizeof id, "%010llX", static_cast<unsigned long long>(++next_id));
  s.info.id = id;
  if (settings.proxy.enabled) {
    const auto ip = core::IpAddress::parse(s.info.client_ip);
    if (!ip || std::none_of(settings.proxy.from.begin(), settings.proxy.from.end(),
                            [&](const core::Cidr& c) { return c.contains(*ip); })) {
      spdlog::warn("{} {}: connection from {} closed: not a proxy_from address", settings.name,
                   s.info.id, s.info.client_ip);
      co_return;
    }
    if (!co_await s.read_proxy_header()) co_return;
  }

  s.info.client_network = core::client_network(s.info.client_ip, settings.ipv6_prefix);
  auto& count = per_client[s.info.client_network];
  ++count;
  ++active;
  struct Release {
    Impl& srv;
    std::string network;
    ~Release() {
      --srv.active;
      if (--srv.per_client[network] == 0) srv.per_client.erase(network);
    }
  } release{*this, s.info.client_network};

  Reply greeting{220, settings.hostname + " ESMTP mailroster"};
  if (active > settings.max_connections) {
    greeting = {421, "4.3.2 " + settings.hostname + " too busy, try again later"};
  } else if (count > settings.max_connections_per_client) {
    greeting = {
        421, "4.7.0 " + settings.hostname + " too many connections from " + s.info.client_network};
  } else {
    const auto r = handler.on_connect(s.info);
    if (!r.positive()) greeting = r;
  }
  s.reply(greeting);
  spdlog::debug("{} {}: connection from {}, greeted {}", settings.name, s.info.id, s.info.client_ip,
                greeting.code);
  if (!greeting.positive()) {
    co_await s.flush();
    co_return;
  }
  co_await s.run();
  if (s.tls) co_await s.close_tls();
  handler.on_disconnect(s.info);
  spdlog::debug("{} {}: session from {} ended", settings.name, s.info.id, s.info.client_ip);
}

awaitable<void> Server::Impl::accept_loop() {
  auto self = shared_from_this();
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      spdlog::warn("{}: accept failed: {}", settings.name, ec.message());
      continue;
    }
    asio::co_spawn(io, run(std::move(socket)), asio::detached);
  }
}

Server::Server(asio::io_context& io, ServerSettings settings, SessionHandler& handler)
    : impl_(std::make_shared<Impl>(io, std::move(settings), handler)) {}

Server::~Server() { stop(); }

void Server::start() {
  auto& s = impl_->settings;
  impl_->tls.load();
  net::listen(impl_->acceptor, s.listen, s.name);
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
}

std::uint16_t Server::port() const { return net::bound_port(impl_->acceptor); }

void Server::reconfigure(const ServerSettings& settings) {
  auto& s = impl_->settings;
  s.limits = settings.limits;
  s.idle_timeout = settings.idle_timeout;
  s.max_connections = settings.max_connections;
  s.max_connections_per_client = settings.max_connections_per_client;
  s.ipv6_prefix = settings.ipv6_prefix;
  s.max_errors = settings.max_errors;
  s.strict_envelopes = settings.strict_envelopes;
  s.require_tls = settings.require_tls && impl_->tls.enabled();
  s.proxy = settings.proxy;
}

void Server::stop() {
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

void Server::drain() {
  stop();
  impl_->draining = true;
  for (auto* s : impl_->sessions) s->drain();
}

std::size_t Server::active_sessions() const { return impl_->active; }

net::ServerTls& Server::tls() { return impl_->tls; }

Server::TlsCounts Server::tls_counts() const { return impl_->tls_counts; }

}  // namespace mailroster::smtp
