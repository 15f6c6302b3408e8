#include "gateway/relay.hpp"

#include "gateway/header_fields.hpp"

#include <algorithm>

namespace mailroster::gateway {

using boost::asio::awaitable;
using smtp::Reply;

namespace {

// A next hop's reply passed on to the client, with an enhanced code when it had none.
Reply pass_on(const smtp::ClientResult& r) {
  auto text = r.reply.text;
  const bool has_enhanced =
      text.size() >= 5 && std::isdigit(static_cast<unsigned char>(text[0])) && text[1] == '.';
  if (!has_enhanced) text = std::to_string(r.reply.code / 100) + ".0.0 " + text;
  return Reply{r.reply.code, text};
}

// Whether delivering needs the next hop's SMTPUTF8: the client declared it, and the envelope or
// the header section is not plain ASCII (an all-ASCII message goes through without it).
bool needs_smtputf8(const RelayRequest& request, std::string_view message) {
  return request.smtputf8 && smtp::needs_smtputf8(request.sender, request.recipients, message);
}

// How a failed step is told to the client: always temporary.
Reply failure(const smtp::ClientResult& r, std::string_view what) {
  const char* code = r.failure == smtp::ClientFailure::timeout   ? "4.4.2"
                     : r.failure == smtp::ClientFailure::connect ? "4.4.1"
                                                                 : "4.4.0";
  return Reply{
      451, std::string(code) + " " + std::string(what) + ": " + r.describe() + "; try again later"};
}

}  // namespace

RelayRequest request_for(const smtp::Transaction& tx) {
  RelayRequest request;
  request.sender = tx.mail_from;
  request.eight_bit = tx.eight_bit;
  request.smtputf8 = tx.smtputf8;
  request.recipients = tx.recipients;
  request.dsn = tx.dsn;
  request.recipient_dsn = tx.recipient_dsn;
  return request;
}

awaitable<RelayOutcome> relay(smtp::ClientPool& pool, const RelayRequest& request,
                              const std::string& message) {
  RelayOutcome out;
  auto lease = co_await pool.acquire(request.destination);
  if (!lease.connection) {
    out.reply =
        lease.result.failure == smtp::ClientFailure::none
            ? Reply{451, "4.4.0 next hop refused the connection: " + lease.result.describe()}
            : failure(lease.result, "next hop unavailable");
    co_return out;
  }
  auto& conn = *lease.connection;
  out.server = conn.destination();
  if (!conn.offers("SMTPUTF8") && needs_smtputf8(request, message)) {
    co_await pool.release(std::move(lease.connection));
    out.reply = Reply{550, "5.6.7 " + conn.destination().str() +
                               " does not support SMTPUTF8, which this message needs (a non-ASCII "
                               "address or header)"};
    co_return out;
  }
  std::string mail = "MAIL FROM:<" + request.sender + ">";
  if (conn.offers("SIZE"))
    mail += " SIZE=" + std::to_string(message.size() + request.received.size());
  if (request.eight_bit && conn.offers("8BITMIME")) mail += " BODY=8BITMIME";
  // The transaction goes on in SMTPUTF8 (and may carry a UTF-8 ORCPT, RFC 6533).
  const bool utf8 = request.smtputf8 && conn.offers("SMTPUTF8");
  if (utf8) mail += " SMTPUTF8";
  const bool dsn = conn.offers("DSN");
  if (dsn && !request.dsn.ret.empty()) mail += " RET=" + request.dsn.ret;
  if (dsn && !request.dsn.envid.empty()) mail += " ENVID=" + request.dsn.envid;
  auto r = co_await conn.command(mail);
  if (r.failure != smtp::ClientFailure::none) {
    out.reply = failure(r, "relay failed");
    co_return out;
  }
  if (!r.reply.positive()) {
    co_await pool.release(std::move(lease.connection));
    out.reply = pass_on(r);
    co_return out;
  }
  std::optional<std::pair<std::string, smtp::ClientResult>> first_refusal;
  for (std::size_t i = 0; i < request.recipients.size(); ++i) {
    const auto& rcpt = request.recipients[i];
    std::string command = "RCPT TO:<" + rcpt + ">";
    if (dsn && i < request.recipient_dsn.size()) {
      const auto& d = request.recipient_dsn[i];
      if (!d.notify.empty()) command += " NOTIFY=" + d.notify;
      if (!d.orcpt.empty() && (utf8 || core::is_ascii(d.orcpt))) command += " ORCPT=" + d.orcpt;
    }
    auto rr = co_await conn.command(command);
    if (rr.failure != smtp::ClientFailure::none) {
      out.reply = failure(rr, "relay failed");
      co_return out;
    }
    if (rr.reply.positive()) continue;
    if (rr.reply.permanent()) out.refused_permanently.push_back(rcpt);
    if (!first_refusal) first_refusal.emplace(rcpt, rr);
  }
  if (first_refusal) {
    co_await pool.release(std::move(lease.connection));
    out.reply = request.recipients.size() == 1
                    ? pass_on(first_refusal->second)
                    : Reply{451, "4.3.0 next hop refused <" + first_refusal->first + ">: " +
                                     first_refusal->second.describe() + "; try again later"};
    co_return out;
  }
  auto d = co_await conn.data(request.received + message);
  if (d.failure != smtp::ClientFailure::none) {
    // Whether the next hop took it is unknown: a retry may duplicate, never lose.
    out.reply = failure(d, "relay failed during data");
    co_return out;
  }
  co_await pool.release(std::move(lease.connection));
  if (!d.reply.positive()) {
    out.reply = pass_on(d);
    co_return out;
  }
  for (std::size_t i = 0; !dsn && i < request.recipient_dsn.size(); ++i) {
    if (request.recipient_dsn[i].wants_success()) out.relayed_notices.push_back(i);
  }
  auto text = d.reply.text;
  std::replace(text.begin(), text.end(), '\n', ' ');
  out.reply = Reply{250, "2.0.0 Ok: delivered as " + request.id + " (" +
                             std::to_string(d.reply.code) + " " + text + ")"};
  co_return out;
}

std::string received_header(const smtp::SessionInfo& session, const smtp::Transaction& tx,
                            const std::string& hostname,
                            const std::optional<std::string>& for_recipient, core::TimePoint now) {
  const bool tls = !session.tls.empty();
  const std::string protocol = tx.smtputf8      ? (tls ? "UTF8SMTPS" : "UTF8SMTP")
                               : !session.esmtp ? "SMTP"
                               : tls            ? "ESMTPS"
                                                : "ESMTP";
  // As Postfix says it: how the client's hop was encrypted.
  const auto using_tls = tls ? "\t(using " + session.tls + ")\r\n" : std::string();
  return "Received: from " + session.helo + " ([" + session.client_ip + "])\r\n" + using_tls +
         "\tby " + hostname + " (mailroster) with " + protocol + " id " + session.id + "\r\n\t" +
         (for_recipient ? "for <" + *for_recipient + ">; " : std::string()) +
         core::format_rfc5322(now) + "\r\n";
}

std::size_t count_received(std::string_view message) {
  std::size_t n = 0;
  for_each_header_field(message, [&n](const HeaderField& field) {
    n += header_name_is(field.name, "received");
    return true;
  });
  return n;
}

}  // namespace mailroster::gateway
