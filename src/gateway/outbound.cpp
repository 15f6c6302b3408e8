#include "gateway/outbound.hpp"

#include <spdlog/spdlog.h>

#include <unordered_map>

#include "gateway/dsn.hpp"
#include "gateway/mail_log.hpp"
#include "gateway/relay.hpp"

namespace mailroster::gateway {

using boost::asio::awaitable;
using smtp::Reply;

struct OutboundGateway::Impl {
  Lookups& lookups;
  DiscoveryCounts& discovery;
  smtp::ClientPool& relay;
  Scorer& scorer;
  admin::Metrics& metrics;
  const core::Clock& clock;
  OutboundSettings settings;
  std::unordered_map<std::string, std::uint64_t> messages;  // per session

  void count(const std::string& result) {
    metrics.add("mailroster_outbound_messages_total", "result=\"" + result + "\"");
  }

  // The company whose mail log shows this transaction: the one of the sender's domain among the
  // client's companies, else the client's first; 0 when the client belongs to none.
  core::Id company_of(const smtp::SessionInfo& session, const smtp::Transaction& tx) {
    const auto companies = lookups.companies_of(session.client_ip);
    if (companies.empty()) return 0;
    const auto sender = core::Address::parse(tx.mail_from);
    const auto domain = sender ? lookups.find_domain(sender->domain()) : std::nullopt;
    for (const auto& c : companies) {
      if (domain && domain->company_id == c.id) return c.id;
    }
    return companies.front().id;
  }

  // A message's outcome, an entry per recipient, when the client belongs to a company.
  void log_message(const smtp::SessionInfo& session, const smtp::Transaction& tx,
                   const Reply& reply, std::string queue_id, std::string result, std::size_t size,
                   const std::optional<core::Endpoint>& server) {
    const auto company = settings.hooks.log ? company_of(session, tx) : 0;
    if (company == 0) return;
    auto entry = message_entry("outbound", session, tx, clock.now(), reply, std::move(queue_id),
                               std::move(result), size, server);
    entry.company_id = company;
    for (const auto& rcpt : tx.recipients) {
      auto one = entry;
      one.recipient = rcpt;
      settings.hooks.log(std::move(one));
    }
  }

  // The entry of a refusal at MAIL or RCPT: the company's, or no company's (0, a client outside
  // every relay network: the operators' view) when the client belongs to none.
  void log_refusal(const smtp::SessionInfo& session, const smtp::Transaction& tx, const char* stage,
                   std::string recipient, const Reply& reply) {
    if (!settings.hooks.log) return;
    auto entry = mail_log_entry("outbound", stage, session, tx, clock.now(), reply);
    entry.company_id = company_of(session, tx);
    entry.recipient = std::move(recipient);
    settings.hooks.log(std::move(entry));
  }
};

OutboundGateway::OutboundGateway(Lookups& lookups, DiscoveryCounts& discovery,
                                 smtp::ClientPool& relay, Scorer& scorer, admin::Metrics& metrics,
                                 const core::Clock& clock, OutboundSettings settings)
    : impl_(new Impl{lookups, discovery, relay, scorer, metrics, clock, std::move(settings), {}}) {
  // Every result from the start, at 0 (as the inbound gateway's).
  metrics.describe("mailroster_outbound_messages_total", "Outbound messages by result", "counter",
                   admin::Metrics::each("result", {"delivered", "deferred", "rejected", "spam",
                                                   "relay_denied", "sender_denied"}));
}

OutboundGateway::~OutboundGateway() = default;

void OutboundGateway::reconfigure(const OutboundSettings& settings) {
  impl_->settings.next_hop = settings.next_hop;
  impl_->settings.mark = settings.mark;
  impl_->settings.recipient_delimiter = settings.recipient_delimiter;
}

Reply OutboundGateway::on_connect(const smtp::SessionInfo&) { return Reply{220, "2.0.0"}; }

awaitable<Reply> OutboundGateway::on_mail(const smtp::SessionInfo& session,
                                          const smtp::Transaction& tx) {
  auto& I = *impl_;
  const auto companies = I.lookups.companies_of(session.client_ip);
  if (companies.empty()) {
    I.count("relay_denied");
    Reply denied{550, "5.7.1 relay access denied: " + session.client_ip +
                          " is not an outbound relay network of any company"};
    I.log_refusal(session, tx, "mail", "", denied);
    co_return denied;
  }
  if (tx.mail_from.empty()) co_return Reply{250, "2.1.0 Ok"};  // the company server's bounces
  auto sender = core::Address::parse(tx.mail_from);
  auto domain = sender ? I.lookups.find_domain(sender->domain()) : std::nullopt;
  for (const auto& c : companies) {
    if (domain && domain->company_id == c.id) co_return Reply{250, "2.1.0 Ok"};
  }
  I.count("sender_denied");
  Reply denied{550, "5.7.1 <" + tx.mail_from +
                        ">: sender address is not in a domain of the company that owns " +
                        session.client_ip};
  I.log_refusal(session, tx, "mail", "", denied);
  co_return denied;
}

awaitable<Reply> OutboundGateway::on_rcpt(const smtp::SessionInfo& session,
                                          const smtp::Transaction& tx, const smtp::Command& rcpt) {
  if (!rcpt.address) {
    Reply refused{550, "5.1.3 <" + rcpt.path + ">: not a deliverable address"};
    impl_->log_refusal(session, tx, "rcpt", rcpt.path, refused);
    co_return refused;
  }
  co_return Reply{250, "2.1.5 Ok"};
}

awaitable<Reply> OutboundGateway::on_message(const smtp::SessionInfo& session,
                                             const smtp::Transaction& tx, std::string message) {
  auto& I = *impl_;
  const auto started = std::chrono::steady_clock::now();
  const auto n = ++I.messages[session.id];
  Reply r;
  std::string result;
  std::optional<core::Endpoint> server;  // the next hop's server that answered the message
  try {
    const Envelope envelope{.client_ip = session.client_ip,
                            .helo = session.helo,
                            .mail_from = tx.mail_from,
                            .recipients = tx.recipients,
                            .queue_id = session.id + "." + std::to_string(n),
                            .outbound = true};
    std::optional<Score> score;
    std::optional<Reply> refused;
    if (count_received(message) > 50) {
      r = Reply{554, "5.4.6 too many Received headers: mail loop"};
    } else if (score = co_await I.scorer.score(envelope, message); (refused = refusal(*score))) {
      r = std::move(*refused);
      if (score->verdict == Verdict::spam) result = "spam";
    } else {
      auto request = request_for(tx);
      request.destination = I.settings.next_hop;
      // Unless marking is off for outbound mail: then the message goes out as a clean one.
      Score shown = *score;
      if (!I.settings.mark && shown.verdict == Verdict::marked) shown = Score{};
      request.received =
          received_header(session, tx, I.settings.hostname, std::nullopt, I.clock.now()) +
          marking_headers(shown);
      request.id = session.id + "." + std::to_string(n);
      // Without the X-Spam fields it came with; with rspamd's Subject, when it rewrote it.
      const auto changed = relayed_form(shown, message);
      const auto relayed = co_await relay(I.relay, request, changed ? *changed : message);
      send_relayed_notice(request, relayed, changed ? *changed : message, I.settings.hostname,
                          I.clock.now(), I.settings.hooks.notify);
      r = relayed.reply;
      server = relayed.server;
      // Only a clean message counts toward discovery; a marked one was delivered all the same.
      if (r.positive() && score->clean() && !tx.mail_from.empty()) {
        if (auto written = core::Address::parse(tx.mail_from)) {
          // alice+news@ sends as alice (sub-addressing).
          auto [owner, sender] = I.lookups.resolve(*written, I.settings.recipient_delimiter);
          if (I.settings.hooks.had_mail && (owner.kind == store::AddressOwner::Kind::user ||
                                            owner.kind == store::AddressOwner::Kind::alias)) {
            I.settings.hooks.had_mail(owner.user_id);
          }
          if (I.discovery.add(
                  {lifecycle::CleanMail::Direction::outbound, std::move(sender), I.clock.now()})) {
            I.settings.hooks.defer([&discovery = I.discovery] { discovery.flush(); });
          }
        }
      }
    }
  } catch (const std::exception& e) {
    spdlog::error("outbound {}: message failed: {}", session.id, e.what());
    r = Reply{451, "4.3.0 temporary local problem; try again later"};
  }
  if (result.empty()) result = r.positive() ? "delivered" : r.transient() ? "deferred" : "rejected";
  I.count(result);
  std::string to;
  for (const auto& rcpt : tx.recipients) to += (to.empty() ? "<" : ",<") + rcpt + ">";
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  spdlog::info(
      "outbound id={}.{} client={} from=<{}> to={} size={} result={} reply=\"{} {}\" ms={}",
      session.id, n, session.client_ip, tx.mail_from, to, message.size(), result, r.code, r.text,
      ms);
  I.log_message(session, tx, r, session.id + "." + std::to_string(n), result, message.size(),
                server);
  co_return r;
}

void OutboundGateway::on_message_refused(const smtp::SessionInfo& session,
                                         const smtp::Transaction& tx, const smtp::Reply& reply) {
  impl_->count("rejected");
  impl_->log_message(session, tx, reply, "", "", 0, std::nullopt);
}

void OutboundGateway::on_rcpt_refused(const smtp::SessionInfo& session, const smtp::Transaction& tx,
                                      const smtp::Command& rcpt, const smtp::Reply& reply) {
  impl_->log_refusal(session, tx, "rcpt", rcpt.path, reply);
}

void OutboundGateway::on_disconnect(const smtp::SessionInfo& session) {
  impl_->messages.erase(session.id);
}

}  // namespace mailroster::gateway
