// The scorers: the built-in checks, and rspamd's HTTP protocol (POST /checkv2) with Beast, on
// the SMTP I/O thread.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "gateway/scorer.hpp"

namespace mailroster::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

boost::asio::awaitable<Score> BuiltinScorer::score(const Envelope&, std::string_view message) {
  co_return builtin_score(message, threshold_);
}

struct RspamdScorer::Impl {
  RspamdSettings settings;
  admin::Metrics& metrics;

  // Throws on anything but a readable answer.
  asio::awaitable<Score> ask(const Envelope& envelope, std::string_view message) {
    const auto executor = co_await asio::this_coro::executor;
    asio::ip::tcp::resolver resolver(executor);
    beast::tcp_stream stream(executor);
    stream.expires_after(settings.timeout);
    const auto& server = settings.server;
    co_await stream.async_connect(
        co_await resolver.async_resolve(server.host, std::to_string(server.port),
                                        asio::use_awaitable),
        asio::use_awaitable);

    // The message is sent from where it lies (a span body), not copied.
    http::request<http::span_body<const char>> request{http::verb::post, "/checkv2", 11};
    request.set(http::field::host, server.str());
    request.set(http::field::connection, "close");
    request.set("IP", envelope.client_ip);
    if (!envelope.helo.empty()) request.set("Helo", envelope.helo);
    request.set("From", envelope.mail_from.empty() ? "<>" : envelope.mail_from);
    for (const auto& rcpt : envelope.recipients) request.insert("Rcpt", rcpt);
    request.set("Queue-Id", envelope.queue_id);
    request.body() = {message.data(), message.size()};
    request.prepare_payload();
    co_await http::async_write(stream, request, asio::use_awaitable);

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
    const auto& response = parser.get();
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    if (response.result() != http::status::ok) {
      throw core::Failure(core::ErrorCode::unavailable,
                          "rspamd answered HTTP " + std::to_string(response.result_int()));
    }
    co_return rspamd_score(response.body()).value();
  }
};

asio::awaitable<Score> SwappableScorer::score(const Envelope& envelope, std::string_view message) {
  const auto in_use = scorer_;  // alive until this message is scored, whatever a reload does
  co_return co_await in_use->score(envelope, message);
}

RspamdScorer::RspamdScorer(RspamdSettings settings, admin::Metrics& metrics)
    : impl_(new Impl{std::move(settings), metrics}) {
  metrics.describe("mailroster_rspamd_failures_total",
                   "Messages rspamd could not be asked about (connection, timeout, bad answer)",
                   "counter", {""});
  metrics.describe("mailroster_scored_messages_total", "Messages scored, by verdict", "counter",
                   admin::Metrics::each("verdict", {"clean", "marked", "deferred", "spam"}));
}

RspamdScorer::~RspamdScorer() = default;

asio::awaitable<Score> RspamdScorer::score(const Envelope& envelope, std::string_view message) {
  auto& I = *impl_;
  Score s;
  bool asked = false;
  std::string failure;
  try {
    s = co_await I.ask(envelope, message);
    asked = true;
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!asked) {
    I.metrics.add("mailroster_rspamd_failures_total");
    const bool fallback = I.settings.on_failure == RspamdFailure::builtin;
    spdlog::warn("scoring {}: rspamd at {} could not be asked: {}; {}", envelope.queue_id,
                 I.settings.server.str(), failure,
                 fallback ? "using the built-in checks" : "deferring the message (451)");
    if (fallback) {
      s = builtin_score(message, I.settings.builtin_threshold);
    } else {
      s.verdict = Verdict::deferred;
      s.unavailable = true;
      s.reasons = {"RSPAMD_UNAVAILABLE"};
      s.reply_text = "content filter unavailable; try again later";
    }
  }
  I.metrics.add("mailroster_scored_messages_total",
                "verdict=\"" + std::string(to_string(s.verdict)) + "\"");
  co_return s;
}

}  // namespace mailroster::gateway
