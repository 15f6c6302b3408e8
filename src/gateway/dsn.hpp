// The "relayed" delivery status notification (RFC 3461 4.1, in RFC 3464's format): the sender
// asked for a notice on success (NOTIFY=SUCCESS), and the message went to a next hop that does
// not offer DSN, so no notice of its delivery can come from further on. mailroster then says
// itself that it relayed the message, as the RFC asks of the last DSN-capable hop. The notice
// goes to the envelope sender from the null sender (never to <>), through [reports] relay.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "gateway/relay.hpp"

namespace mailroster::gateway {

// The notice the outcome of a relay owes the sender (a multipart/report message, CRLF lines),
// or nullopt when none is due. The original message comes back whole with RET=FULL, else as
// its header section (text/rfc822-headers).
std::optional<std::string> relayed_notice(const RelayRequest& request, const RelayOutcome& outcome,
                                          std::string_view message, const std::string& hostname,
                                          core::TimePoint now);

// Sends the notice relayed_notice() makes, if one is due, with `send` (to, message); logs it.
using NoticeSender = std::function<void(const std::string& to, std::string message)>;
void send_relayed_notice(const RelayRequest& request, const RelayOutcome& outcome,
                         std::string_view message, const std::string& hostname, core::TimePoint now,
                         const NoticeSender& send);

}  // namespace mailroster::gateway
