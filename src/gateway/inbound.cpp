#include "gateway/inbound.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <unordered_map>

#include "gateway/dsn.hpp"
#include "gateway/mail_log.hpp"
#include "gateway/recipient_rule.hpp"
#include "gateway/relay.hpp"

namespace mailroster::gateway {

using boost::asio::awaitable;
using smtp::Reply;
using store::AddressOwner;

namespace {

// What the gateway decided about one accepted recipient.
struct Recipient {
  core::Address address;  // as the client gave it, relayed so
  core::Address counted;  // what a clean delivery counts for: address, or without its extension
  core::Id company_id = 0;
  core::Destination destination;
  core::Id user = 0;       // the user it is, or whose alias it is
  bool countable = false;  // a clean delivery counts toward discovery
  bool unrouted = false;   // refused as no company's (relay denied, or none could be read):
                           // in the operators' log
};

struct SessionState {
  std::vector<Recipient> recipients;  // parallel to the transaction's accepted recipients
  std::uint64_t messages = 0;
};

}  // namespace

struct InboundGateway::Impl {
  Lookups& lookups;
  DiscoveryCounts& discovery;
  verify::Verifier& verifier;
  verify::HarvestGuard& harvest;
  smtp::ClientPool& relay;
  Scorer& scorer;
  admin::Metrics& metrics;
  const core::Clock& clock;
  InboundSettings settings;
  std::unordered_map<std::string, SessionState> sessions;

  void count_rcpt(std::string_view result) {
    metrics.add("mailroster_inbound_rcpt_total", "result=\"" + std::string(result) + "\"");
  }

  awaitable<Reply> decide(const smtp::SessionInfo& session, const smtp::Command& rcpt,
                          Recipient& out) {
    const auto& path = rcpt.path;
    const bool postmaster = !rcpt.address && core::ascii_lower(path) == "postmaster";
    if (postmaster && !settings.postmaster) {
      out.unrouted = true;
      count_rcpt("unknown");
      co_return Reply{550, "5.1.1 <" + path +
                               ">: no postmaster mailbox on this gateway; write to postmaster at "
                               "the domain concerned"};
    }
    if (!rcpt.address && !postmaster) {
      out.unrouted = true;
      count_rcpt("relay_denied");
      co_return rule_reply(RecipientRule::Kind::relay_denied, path);
    }
    // A copy: a reload may change the postmaster while this RCPT waits for its callout.
    const core::Address address = postmaster ? *settings.postmaster : *rcpt.address;
    // alice+news@ is alice's (sub-addressing); relayed as written, the destination files it.
    const auto rule = recipient_rule(lookups, address, settings.recipient_delimiter, postmaster);
    if (!rule.domain) {
      out.unrouted = true;
      count_rcpt("relay_denied");
      co_return rule_reply(rule.kind, path);
    }
    const auto& domain = rule.domain;
    auto& state = sessions[session.id];
    out.address = address;
    out.counted = rule.meant;
    out.company_id = domain->company_id;
    if (!state.recipients.empty() &&
        !(state.recipients.front().destination == domain->destination)) {
      count_rcpt("other_destination");
      co_return Reply{452, "4.5.3 <" + path +
                               ">: one delivery destination per message; send to this "
                               "recipient in another transaction"};
    }
    out.destination = domain->destination;
    switch (rule.kind) {
      case RecipientRule::Kind::accept:
        out.user = rule.owner.user_id;
        count_rcpt("user");
        co_return rule_reply(rule.kind, path);
      case RecipientRule::Kind::invalid:
      case RecipientRule::Kind::unknown:
      case RecipientRule::Kind::relay_denied:
        count_rcpt(to_string(rule.kind));
        co_return rule_reply(rule.kind, path);
      case RecipientRule::Kind::callout:
        break;
    }
    const auto v = co_await verifier.verify(domain->destination, address);
    count_rcpt(std::string("callout_") + std::string(verify::to_string(v.verdict)) +
               (v.cached ? "_cached" : ""));
    switch (v.verdict) {
      case verify::Verdict::accept:
        out.countable = rule.discovering && !v.accept_all;
        co_return Reply{250, "2.1.5 Ok"};
      case verify::Verdict::reject:
        if (v.probe.reply.text.starts_with("5.6.7")) {  // RFC 6531: no SMTPUTF8 there
          co_return Reply{553, "5.6.7 <" + path +
                                   ">: recipient address rejected: the destination takes no "
                                   "non-ASCII address (" +
                                   v.probe.describe() + ")"};
        }
        co_return Reply{550, "5.1.1 <" + path + ">: recipient address rejected: user unknown (" +
                                 v.probe.describe() + ")"};
      case verify::Verdict::try_later:
        break;
    }
    const char* code = v.probe.failure == smtp::ClientFailure::timeout   ? "4.4.2"
                       : v.probe.failure == smtp::ClientFailure::connect ? "4.4.1"
                                                                         : "4.4.3";
    co_return Reply{451, std::string(code) + " <" + path +
                             ">: recipient verification failed temporarily (" + v.probe.describe() +
                             "); try again later"};
  }

  // Counts one clean delivery for every recipient that is not (yet) a user: posted before the
  // reply goes out, run where settings.hooks.defer says.
  void record_clean_delivery(const std::vector<Recipient>& recipients) {
    bool first = false;
    for (const auto& r : recipients) {
      if (r.countable) {
        first |= discovery.add({lifecycle::CleanMail::Direction::inbound, r.counted, clock.now()});
      }
    }
    if (first) settings.hooks.defer([&discovery = discovery] { discovery.flush(); });
  }

  awaitable<RelayOutcome> relay_message(const smtp::SessionInfo& session,
                                        const smtp::Transaction& tx,
                                        const std::vector<Recipient>& recipients,
                                        const std::string& message, const std::string& headers) {
    auto request = request_for(tx);
    request.destination = recipients.front().destination;
    request.recipients.clear();  // in their parsed form, the same order
    for (const auto& r : recipients) request.recipients.push_back(r.address.str());
    request.received =
        received_header(
            session, tx, settings.hostname,
            recipients.size() == 1 ? std::optional(request.recipients.front()) : std::nullopt,
            clock.now()) +
        headers;
    request.id = session.id + "." + std::to_string(sessions[session.id].messages);
    auto outcome = co_await gateway::relay(relay, request, message);
    send_relayed_notice(request, outcome, message, settings.hostname, clock.now(),
                        settings.hooks.notify);
    // Said 2xx at RCPT time, refused now: forget the stale verdict; the client retries and
    // the refused recipient then gets its own answer.
    for (const auto& a : outcome.refused_permanently) {
      if (auto address = core::Address::parse(a)) verifier.flush_address(*address);
    }
    co_return outcome;
  }

  void log_entry(core::MailLogEntry entry) {
    if (settings.hooks.log) settings.hooks.log(std::move(entry));
  }

  // A recipient refused before it was decided (harvest guard, recipient limit): in its
  // domain's company's log, or no company's (0: the operators' view).
  void log_undecided(const smtp::SessionInfo& session, const smtp::Transaction& tx,
                     const smtp::Command& rcpt, const Reply& reply) {
    const auto domain = rcpt.address ? lookups.find_domain(rcpt.address->domain()) : std::nullopt;
    auto entry = mail_log_entry("inbound", "rcpt", session, tx, clock.now(), reply);
    entry.company_id = domain ? domain->company_id : 0;
    entry.recipient = rcpt.path;
    log_entry(std::move(entry));
  }

  // A message's outcome, an entry per recipient, each in its company's log.
  void log_message(const smtp::SessionInfo& session, const smtp::Transaction& tx,
                   const std::vector<Recipient>& recipients, const Reply& reply,
                   std::string queue_id, std::string result, std::size_t size,
                   const std::optional<core::Endpoint>& server) {
    if (!settings.hooks.log) return;
    const auto entry = message_entry("inbound", session, tx, clock.now(), reply,
                                     std::move(queue_id), std::move(result), size, server);
    for (const auto& rcpt : recipients) {
      auto one = entry;
      one.company_id = rcpt.company_id;
      one.recipient = rcpt.address.str();
      settings.hooks.log(std::move(one));
    }
  }
};

InboundGateway::InboundGateway(Lookups& lookups, DiscoveryCounts& discovery,
                               verify::Verifier& verifier, verify::HarvestGuard& harvest,
                               smtp::ClientPool& relay, Scorer& scorer, admin::Metrics& metrics,
                               const core::Clock& clock, InboundSettings settings)
    : impl_(new Impl{lookups, discovery, verifier, harvest, relay, scorer, metrics, clock,
                     std::move(settings)}) {
  // Every series from the start, at 0 (Metrics::describe): an alert on deferrals has its
  // series before the first one.
  metrics.describe("mailroster_inbound_connections_total", "Inbound SMTP connections taken",
                   "counter", {""});
  metrics.describe("mailroster_inbound_rcpt_total", "RCPT decisions by result", "counter",
                   admin::Metrics::each(
                       "result", {"user", "invalid", "unknown", "relay_denied", "other_destination",
                                  "callout_accept", "callout_accept_cached", "callout_reject",
                                  "callout_reject_cached", "callout_try_later", "harvest_slowed",
                                  "harvest_refused", "too_many"}));
  metrics.describe("mailroster_inbound_messages_total", "Inbound messages by result", "counter",
                   admin::Metrics::each("result", {"delivered", "deferred", "rejected", "spam"}));
}

InboundGateway::~InboundGateway() = default;

void InboundGateway::set_postmaster(std::optional<core::Address> postmaster) {
  impl_->settings.postmaster = std::move(postmaster);
}

void InboundGateway::set_recipient_delimiter(std::string delimiters) {
  impl_->settings.recipient_delimiter = std::move(delimiters);
}

Reply InboundGateway::on_connect(const smtp::SessionInfo& session) {
  impl_->sessions[session.id];
  impl_->metrics.add("mailroster_inbound_connections_total");
  return Reply{220, "2.0.0"};
}

awaitable<Reply> InboundGateway::on_mail(const smtp::SessionInfo& session,
                                         const smtp::Transaction&) {
  impl_->sessions[session.id].recipients.clear();
  co_return Reply{250, "2.1.0 Ok"};
}

awaitable<Reply> InboundGateway::on_rcpt(const smtp::SessionInfo& session,
                                         const smtp::Transaction& tx, const smtp::Command& rcpt) {
  auto& state = impl_->sessions[session.id];
  // The server keeps only accepted recipients; so do we (a new MAIL starts over).
  if (state.recipients.size() > tx.recipients.size()) state.recipients.resize(tx.recipients.size());
  auto& I = *impl_;
  const bool exempt = I.harvest.exempt(session.client_ip);
  switch (exempt ? verify::HarvestGuard::Verdict::ok
                 : I.harvest.check(session.client_network, I.clock.now())) {
    case verify::HarvestGuard::Verdict::refuse: {
      I.count_rcpt("harvest_refused");
      spdlog::warn("inbound {}: {} refused: too many unknown recipients from {}", session.id,
                   session.client_ip, session.client_network);
      Reply refused{421, "4.7.0 too many unknown recipients from " + session.client_network +
                             "; closing, try again later"};
      I.log_undecided(session, tx, rcpt, refused);
      co_return refused;
    }
    case verify::HarvestGuard::Verdict::slow: {
      I.count_rcpt("harvest_slowed");
      boost::asio::steady_timer wait(co_await boost::asio::this_coro::executor,
                                     I.harvest.settings().delay);
      co_await wait.async_wait(boost::asio::use_awaitable);
      break;
    }
    case verify::HarvestGuard::Verdict::ok:
      break;
  }
  Recipient decided;
  Reply r;
  try {
    r = co_await impl_->decide(session, rcpt, decided);
  } catch (const std::exception& e) {
    spdlog::error("inbound {}: RCPT {} failed: {}", session.id, rcpt.path, e.what());
    r = Reply{451, "4.3.0 temporary local problem; try again later"};
    // Its company not known (the database could not be read): in the operators' view.
    if (decided.company_id == 0) decided.unrouted = true;
  }
  if (!exempt && r.code == 550 && r.text.rfind("5.1.1", 0) == 0) {
    I.harvest.record_unknown(session.client_network, I.clock.now());
  }
  if (r.positive()) {
    impl_->sessions[session.id].recipients.push_back(std::move(decided));
  } else if (decided.company_id != 0 || decided.unrouted) {
    // A registered domain's: its administrators see why. No company's (relay denied, company
    // 0): the operators see it, in the log of every company at once (a domain whose MX came before
    // its registration here, a client that takes the gateway for an open relay, a recipient
    // deferred while the database was down).
    auto entry = mail_log_entry("inbound", "rcpt", session, tx, I.clock.now(), r);
    entry.company_id = decided.company_id;
    entry.recipient = decided.unrouted ? rcpt.path : decided.address.str();
    I.log_entry(std::move(entry));
  }
  co_return r;
}

awaitable<Reply> InboundGateway::on_message(const smtp::SessionInfo& session,
                                            const smtp::Transaction& tx, std::string message) {
  auto& I = *impl_;
  const auto started = std::chrono::steady_clock::now();
  auto& state = I.sessions[session.id];
  ++state.messages;
  const auto recipients = state.recipients;
  state.recipients.clear();

  Reply r;
  std::string result;
  std::optional<core::Endpoint> server;  // the destination's server that answered the message
  try {
    if (recipients.empty() || recipients.size() != tx.recipients.size()) {
      r = Reply{451, "4.3.0 recipient state lost; try again later"};
    } else if (count_received(message) > I.settings.max_received_headers) {
      r = Reply{554, "5.4.6 too many Received headers: mail loop"};
    } else {
      Envelope envelope{.client_ip = session.client_ip,
                        .helo = session.helo,
                        .mail_from = tx.mail_from,
                        .queue_id = session.id + "." + std::to_string(state.messages)};
      for (const auto& rcpt : recipients) envelope.recipients.push_back(rcpt.address.str());
      const auto score = co_await I.scorer.score(envelope, message);
      if (auto refused = refusal(score)) {
        r = std::move(*refused);
        if (score.verdict == Verdict::spam) result = "spam";
      } else {
        // Without the X-Spam fields it came with; with rspamd's Subject, when it rewrote it.
        const auto changed = relayed_form(score, message);
        auto outcome = co_await I.relay_message(
            session, tx, recipients, changed ? *changed : message, marking_headers(score));
        r = std::move(outcome.reply);
        server = outcome.server;
        // Only a clean message counts toward discovery; a marked one was delivered all the same.
        if (r.positive() && score.clean()) {
          I.record_clean_delivery(recipients);
          if (I.settings.hooks.had_mail) {
            for (const auto& rcpt : recipients) {
              if (rcpt.user != 0) I.settings.hooks.had_mail(rcpt.user);
            }
          }
        }
      }
    }
  } catch (const std::exception& e) {
    spdlog::error("inbound {}: message failed: {}", session.id, e.what());
    r = Reply{451, "4.3.0 temporary local problem; try again later"};
  }
  if (result.empty()) result = r.positive() ? "delivered" : r.transient() ? "deferred" : "rejected";
  I.metrics.add("mailroster_inbound_messages_total", "result=\"" + result + "\"");

  std::string to;
  for (const auto& rcpt : recipients) to += (to.empty() ? "<" : ",<") + rcpt.address.str() + ">";
  auto reply_text = r.text;
  std::replace(reply_text.begin(), reply_text.end(), '\n', ' ');
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  spdlog::info("inbound id={}.{} client={} from=<{}> to={} size={} result={} reply=\"{} {}\" ms={}",
               session.id, state.messages, session.client_ip, tx.mail_from, to, message.size(),
               result, r.code, reply_text, ms);
  I.log_message(session, tx, recipients, r, session.id + "." + std::to_string(state.messages),
                result, message.size(), server);
  co_return r;
}

void InboundGateway::on_message_refused(const smtp::SessionInfo& session,
                                        const smtp::Transaction& tx, const smtp::Reply& reply) {
  auto& state = impl_->sessions[session.id];
  const auto recipients = std::exchange(state.recipients, {});
  impl_->metrics.add("mailroster_inbound_messages_total", "result=\"rejected\"");
  impl_->log_message(session, tx, recipients, reply, "", "", 0, std::nullopt);
}

void InboundGateway::on_rcpt_refused(const smtp::SessionInfo& session, const smtp::Transaction& tx,
                                     const smtp::Command& rcpt, const smtp::Reply& reply) {
  impl_->count_rcpt("too_many");
  impl_->log_undecided(session, tx, rcpt, reply);
}

void InboundGateway::on_disconnect(const smtp::SessionInfo& session) {
  impl_->sessions.erase(session.id);
}

}  // namespace mailroster::gateway
