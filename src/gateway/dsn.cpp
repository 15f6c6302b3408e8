#include "gateway/dsn.hpp"

#include <spdlog/spdlog.h>

#include "core/address.hpp"
#include "core/random.hpp"

namespace mailroster::gateway {

namespace {

// "rfc822;bob+2Bsales@example.org" -> "rfc822;bob+sales@example.org" (RFC 3464 2.3.1).
std::string original_recipient(const std::string& orcpt) {
  const auto semicolon = orcpt.find(';');
  return orcpt.substr(0, semicolon + 1) + smtp::xtext_decode(orcpt.substr(semicolon + 1));
}

// A recipient's address type: "utf-8" for a non-ASCII address (RFC 6533 3), else "rfc822".
std::string final_recipient(const std::string& address) {
  return (core::is_ascii(address) ? "rfc822; " : "utf-8; ") + address;
}

}  // namespace

std::optional<std::string> relayed_notice(const RelayRequest& request, const RelayOutcome& outcome,
                                          std::string_view message, const std::string& hostname,
                                          core::TimePoint now) {
  if (outcome.relayed_notices.empty() || request.sender.empty() || !outcome.reply.positive()) {
    return std::nullopt;
  }
  const auto tag = core::random_hex(12);
  const auto boundary = "mailroster-dsn-" + tag;
  const bool full = request.dsn.ret == "FULL";
  const auto header_end = message.find("\r\n\r\n");
  const auto returned =
      full || header_end == std::string_view::npos ? message : message.substr(0, header_end + 2);
  // An internationalized notice (RFC 6533): a non-ASCII address or returned header makes it
  // message/global-delivery-status with message/global(-headers), sent with SMTPUTF8.
  bool utf8 = smtp::needs_smtputf8(request.sender, {}, message);
  for (const auto i : outcome.relayed_notices) {
    if (i < request.recipients.size()) utf8 |= !core::is_ascii(request.recipients[i]);
    if (i < request.recipient_dsn.size()) {
      utf8 |= !core::is_ascii(original_recipient(request.recipient_dsn[i].orcpt));
    }
  }
  const auto date = core::format_rfc5322(now);
  const auto next_hop = outcome.server ? *outcome.server : request.destination.hosts.at(0);

  std::string text;
  std::string fields = "Reporting-MTA: dns; " + hostname + "\r\n";
  if (!request.dsn.envid.empty()) {
    fields += "Original-Envelope-Id: " + smtp::xtext_decode(request.dsn.envid) + "\r\n";
  }
  fields += "Arrival-Date: " + date + "\r\n";
  for (const auto i : outcome.relayed_notices) {
    if (i >= request.recipients.size()) continue;
    const auto& rcpt = request.recipients[i];
    text += "    <" + rcpt + ">\r\n";
    fields += "\r\nFinal-Recipient: " + final_recipient(rcpt) + "\r\n";
    if (i < request.recipient_dsn.size() && !request.recipient_dsn[i].orcpt.empty()) {
      fields +=
          "Original-Recipient: " + original_recipient(request.recipient_dsn[i].orcpt) + "\r\n";
    }
    fields += "Action: relayed\r\nStatus: 2.0.0\r\n";
    fields += "Remote-MTA: dns; " + next_hop.host + "\r\n";
  }
  std::string out;
  out += "From: Mail Delivery System <MAILER-DAEMON@" + hostname + ">\r\n";
  out += "To: <" + request.sender + ">\r\n";
  out += "Subject: Delivery Status Notification (relayed)\r\n";
  out += "Date: " + date + "\r\n";
  out += "Message-ID: <dsn." + tag + "@" + hostname + ">\r\n";
  out += "Auto-Submitted: auto-replied\r\n";  // RFC 3834: no automatic answer to it
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" +
         boundary + "\"\r\n\r\n";
  out += "This is a delivery status notification in MIME format.\r\n\r\n";
  out += "--" + boundary + "\r\n";
  out += std::string("Content-Type: text/plain; charset=") + (utf8 ? "utf-8" : "us-ascii") +
         "\r\n\r\n";
  out += "Your message was relayed by " + hostname + " to " + next_hop.str() +
         ", which does not\r\nsend delivery notifications: no further notice of its delivery "
         "will come.\r\nIt was relayed for:\r\n\r\n" +
         text + "\r\n";
  out += "--" + boundary + "\r\n";
  out += std::string("Content-Type: message/") +
         (utf8 ? "global-delivery-status" : "delivery-status") + "\r\n\r\n" + fields + "\r\n";
  out += "--" + boundary + "\r\n";
  out += utf8 ? (full ? "Content-Type: message/global\r\n\r\n"
                      : "Content-Type: message/global-headers\r\n\r\n")
              : (full ? "Content-Type: message/rfc822\r\n\r\n"
                      : "Content-Type: text/rfc822-headers\r\n\r\n");
  out += returned;
  if (!returned.empty() && !returned.ends_with("\r\n")) out += "\r\n";
  out += "\r\n--" + boundary + "--\r\n";
  return out;
}

void send_relayed_notice(const RelayRequest& request, const RelayOutcome& outcome,
                         std::string_view message, const std::string& hostname, core::TimePoint now,
                         const NoticeSender& send) {
  auto notice = relayed_notice(request, outcome, message, hostname, now);
  if (!notice) return;
  if (!send) {
    spdlog::warn("{}: a relayed notice is due to <{}>, and nothing sends notices", request.id,
                 request.sender);
    return;
  }
  spdlog::info("{}: {} relayed to {}, which has no DSN: relayed notice to <{}>", request.id,
               outcome.relayed_notices.size() == 1 ? "recipient" : "recipients",
               outcome.server ? outcome.server->str() : request.destination.str(), request.sender);
  send(request.sender, std::move(*notice));
}

}  // namespace mailroster::gateway
