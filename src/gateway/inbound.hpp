// The inbound gateway: what mailroster answers to mail arriving for the companies' domains,
// as SPEC.md "SMTP Discovery / Inbound" says. Per RCPT:
//   domain not registered        -> 550 5.7.1 relay access denied (never an open relay)
//   user or alias                -> accept, no callout
//   marked invalid               -> 550 5.1.1 ... marked invalid
//   discovery off, unknown       -> 550 5.1.1 user unknown
//   otherwise callout (verify/)  -> 2xx accept, 5xx 550 5.1.1, anything else 451 4.4.x
// A client collecting unknown-recipient rejections is slowed, then refused with 421
// (verify/harvest_guard.hpp).
// One message goes to one delivery destination; a recipient of another destination gets
// 452 4.5.3 and is sent by the client in a separate transaction (RFC 5321 4.5.3.1.10).
// After DATA the message is scored; spam gets 550 5.7.1 and goes nowhere; a clean message
// is relayed within the same SMTP transaction and the client gets the destination's answer,
// so 250 means the destination said 250. Then each clean delivery to an address that is not
// a user (and whose domain is not accept-all) counts toward discovery.
#pragma once

#include <functional>

#include <memory>
#include <optional>
#include <string>

#include "admin/metrics.hpp"
#include "core/clock.hpp"
#include "gateway/delivery_hooks.hpp"
#include "gateway/discovery_counts.hpp"
#include "gateway/lookups.hpp"
#include "gateway/scorer.hpp"
#include "smtp/client.hpp"
#include "smtp/server.hpp"
#include "store/store.hpp"
#include "verify/harvest_guard.hpp"
#include "verify/verifier.hpp"

namespace mailroster::gateway {

struct InboundSettings {
  std::string hostname = "mailroster.localdomain";
  std::size_t max_received_headers = 50;  // more means a mail loop (RFC 5321 6.3)
  // Where RCPT TO:<postmaster> (no domain, RFC 5321 4.5.1) goes: decided and relayed as this
  // address. Unset: 550 5.1.1 saying there is none here.
  std::optional<core::Address> postmaster;
  // Sub-addressing (RFC 5233): the characters that begin a local part's extension, so that
  // alice+news@ is taken as alice's and counted as alice in discovery; "" for none.
  std::string recipient_delimiter = "+";
  // The store writes, notices, mail log and mail activity of a delivery (serve's).
  DeliveryHooks hooks;
};

class InboundGateway final : public smtp::SessionHandler {
 public:
  InboundGateway(Lookups& lookups, DiscoveryCounts& discovery, verify::Verifier& verifier,
                 verify::HarvestGuard& harvest, smtp::ClientPool& relay, Scorer& scorer,
                 admin::Metrics& metrics, const core::Clock& clock, InboundSettings settings);
  ~InboundGateway() override;

  smtp::Reply on_connect(const smtp::SessionInfo& session) override;
  boost::asio::awaitable<smtp::Reply> on_mail(const smtp::SessionInfo& session,
                                              const smtp::Transaction& tx) override;
  boost::asio::awaitable<smtp::Reply> on_rcpt(const smtp::SessionInfo& session,
                                              const smtp::Transaction& tx,
                                              const smtp::Command& rcpt) override;
  boost::asio::awaitable<smtp::Reply> on_message(const smtp::SessionInfo& session,
                                                 const smtp::Transaction& tx,
                                                 std::string message) override;
  void on_rcpt_refused(const smtp::SessionInfo& session, const smtp::Transaction& tx,
                       const smtp::Command& rcpt, const smtp::Reply& reply) override;
  void on_message_refused(const smtp::SessionInfo& session, const smtp::Transaction& tx,
                          const smtp::Reply& reply) override;
  void on_disconnect(const smtp::SessionInfo& session) override;
  // A reload (SIGHUP): where RCPT TO:<postmaster> goes from the next RCPT on.
  void set_postmaster(std::optional<core::Address> postmaster);
  // A reload: the sub-address delimiters from the next RCPT on.
  void set_recipient_delimiter(std::string delimiters);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailroster::gateway
