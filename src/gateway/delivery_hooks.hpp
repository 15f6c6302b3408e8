// What serve gives both gateways (inbound and outbound) to do beside the SMTP conversation:
// where store writes run, how notices are sent, where the mail log goes, who had mail. Each
// has a default that does without (tests leave them so).
#pragma once

#include <functional>
#include <string>

#include "core/model.hpp"

namespace mailroster::gateway {

struct DeliveryHooks {
  // Where the discovery bookkeeping of a delivery (store writes) runs: serve gives a queue
  // away from the I/O thread, so SMTP never waits for an import or a sync writing meanwhile.
  std::function<void(std::function<void()>)> defer = [](std::function<void()> task) { task(); };
  // Sends a "relayed" delivery status notification to an envelope sender (gateway/dsn.hpp);
  // serve submits it through [reports] relay. Unset: the notice due is only logged.
  std::function<void(const std::string& to, std::string message)> notify;
  // Takes the mail log's entries (gateway/mail_log.hpp), in the company the mail belongs to:
  // each recipient (or outbound sender) refused, each message's outcome per recipient.
  // Unset: none kept.
  std::function<void(core::MailLogEntry)> log;
  // A user had mail: a clean message was delivered to it or one of its aliases, or it sent one
  // out (gateway/mail_activity.hpp). Unset: not kept.
  std::function<void(core::Id user)> had_mail;
};

}  // namespace mailroster::gateway
