// The outbound gateway: mail from the companies' own mail servers to the world, on its own
// port. Only a client inside a company's outbound relay networks may send, and only with a
// sender in one of that company's domains (or the null sender, for its bounces); anything
// else gets 550 5.7.1, so this is never an open relay. Clean messages are relayed to the
// configured next hop inside the transaction (250 only when it said 250). A sender that is
// not a user is then recorded as discovered via outbound (or made a user at once when
// "auto-add new users detected via outbound" is on).
#pragma once

#include <functional>

#include <memory>
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

namespace mailroster::gateway {

struct OutboundSettings {
  std::string hostname = "mailroster.localdomain";
  // The smarthost that delivers to the Internet (several: tried in order).
  core::Destination next_hop{core::Endpoint{"127.0.0.1", 25}};
  // A message the scorer marks (rspamd: add header, rewrite subject) is relayed with the
  // X-Spam fields and the new Subject; false: as it came (recipients outside never see the
  // filter's verdict). Marked or not, it does not count toward discovery.
  bool mark = true;
  // As InboundSettings::recipient_delimiter: a sender alice+news@ is alice, not a new user.
  std::string recipient_delimiter = "+";
  // The store writes, notices, mail log and mail activity of a delivery (serve's).
  DeliveryHooks hooks;
};

class OutboundGateway final : public smtp::SessionHandler {
 public:
  OutboundGateway(Lookups& lookups, DiscoveryCounts& discovery, smtp::ClientPool& relay,
                  Scorer& scorer, admin::Metrics& metrics, const core::Clock& clock,
                  OutboundSettings settings);
  ~OutboundGateway() override;
  // A reload (SIGHUP): the next hop and the marking, for the next message; the rest stays.
  void reconfigure(const OutboundSettings& settings);

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

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailroster::gateway
