// Relaying a message to its next hop inside the client's SMTP transaction, shared by the
// inbound gateway (to the company's mail server) and the outbound one (to the smarthost).
// The client's answer is the next hop's: 250 only when it said 250; its 4xx/5xx are passed
// on; a connection or protocol failure is always 451 (nothing is accepted that could be lost).
// A recipient the next hop refuses at this stage fails the whole message (4xx, or its own 5xx
// for a single recipient), so the client retries and nothing is delivered twice.
// DSN parameters (RFC 3461) are passed on as they came when the next hop offers DSN; when it
// does not, the outcome names the recipients owed a "relayed" notice.
// Extensions are used as the next hop offers them: SIZE, BODY=8BITMIME, SMTPUTF8. A message that
// needs SMTPUTF8 (the client declared it, and an address or a header is not ASCII) is refused
// with 550 5.6.7 when the next hop does not offer it (RFC 6531 3.2: never downgraded here).
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/network.hpp"
#include "smtp/client.hpp"
#include "smtp/server.hpp"

namespace mailroster::gateway {

struct RelayRequest {
  core::Destination destination;  // its servers are tried in order (smtp::ClientPool)
  std::string sender;             // "" = <>
  bool eight_bit = false;
  bool smtputf8 = false;
  std::vector<std::string> recipients;
  smtp::DsnRequest dsn;                           // RET=, ENVID= (RFC 3461)
  std::vector<smtp::DsnRecipient> recipient_dsn;  // parallel to recipients (or empty)
  std::string received;                           // header prepended to the message
  std::string id;                                 // names the delivery in the 250 text
};

struct RelayOutcome {
  smtp::Reply reply;
  std::optional<core::Endpoint> server;          // the one of the destination's servers used
  std::vector<std::string> refused_permanently;  // recipients the next hop 5xx'd at RCPT
  // Delivered to a next hop without DSN: the recipients (indexes) whose NOTIFY asked for
  // SUCCESS, for whom a "relayed" notice is due (RFC 3461 4.1; gateway/dsn.hpp).
  std::vector<std::size_t> relayed_notices;
};

// A request with the transaction's envelope: sender, BODY, SMTPUTF8, its DSN parameters and
// recipients as given; the caller sets the destination, the Received header and the id (and
// may put the recipients' parsed form in their place, in the same order).
RelayRequest request_for(const smtp::Transaction& tx);

boost::asio::awaitable<RelayOutcome> relay(smtp::ClientPool& pool, const RelayRequest& request,
                                           const std::string& message);

// "Received: from helo ([ip]) by host (mailroster) with ESMTP id X for <rcpt>; date" (RFC 5321
// 4.4; the protocol UTF8SMTP(S) for an SMTPUTF8 transaction, RFC 6531 4.3), CRLF-terminated.
std::string received_header(const smtp::SessionInfo& session, const smtp::Transaction& tx,
                            const std::string& hostname,
                            const std::optional<std::string>& for_recipient, core::TimePoint now);

// Received: fields in the header section (more than a few dozen means a mail loop).
std::size_t count_received(std::string_view message);

}  // namespace mailroster::gateway
