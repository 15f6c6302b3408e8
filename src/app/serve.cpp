#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "app/serve.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sodium.h>
#include <spdlog/spdlog.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <future>
#include <map>
#include <memory>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <variant>

#include "admin/api.hpp"
#include "admin/auth.hpp"
#include "admin/http_server.hpp"
#include "admin/metrics.hpp"
#include "admin/ui.hpp"
#include "app/database.hpp"
#include "app/domain_check.hpp"
#include "app/lease.hpp"
#include "app/service_manager.hpp"
#include "app/version.hpp"
#include "core/address.hpp"
#include "core/work_queue.hpp"
#include "directory/graph/graph_directory.hpp"
#include "directory/ldap/ldap_directory.hpp"
#include "directory/sync_service.hpp"
#include "gateway/discovery_counts.hpp"
#include "gateway/failing_writes.hpp"
#include "gateway/inbound.hpp"
#include "gateway/mail_activity.hpp"
#include "gateway/mail_log.hpp"
#include "gateway/outbound.hpp"
#include "gateway/recipient_rule.hpp"
#include "gateway/scorer.hpp"
#include "lifecycle/discovery_service.hpp"
#include "net/tls.hpp"
#include "reports/maintenance.hpp"
#include "smtp/client.hpp"
#include "smtp/server.hpp"
#include "store/secret_box.hpp"
#include "verify/verifier.hpp"

namespace mailroster::app {

namespace {

admin::HttpResponse json_response(const nlohmann::json& j) {
  return admin::HttpResponse{200, "application/json", j.dump()};
}

// What POST /api/v1/verify/flush asks to forget: {"address": "..."} | {"domain": "..."} | {},
// as the key the other nodes are told ("address:a@b", "domain:b", "all"); or why it is bad.
struct FlushRequest {
  std::string key;
  std::string domain;  // the domain it is within; "" for all
};
std::variant<FlushRequest, admin::HttpResponse> flush_request(const admin::HttpRequest& req) {
  const auto body =
      req.body.empty() ? nlohmann::json::object() : nlohmann::json::parse(req.body, nullptr, false);
  if (!body.is_object())
    return admin::json_error(400, "invalid_argument", "body must be a JSON object");
  for (const auto& [key, value] : body.items()) {
    if ((key != "address" && key != "domain") || !value.is_string()) {
      return admin::json_error(400, "invalid_argument", "unknown or non-string field '" + key + "'",
                               key);
    }
  }
  if (body.contains("address")) {
    auto address = core::Address::parse(body["address"].get<std::string>());
    if (!address) {
      return admin::json_error(400, "invalid_argument", address.error().message, "address");
    }
    return FlushRequest{"address:" + address->str(), address->domain()};
  }
  if (body.contains("domain")) {
    auto domain = core::parse_domain(body["domain"].get<std::string>());
    if (!domain)
      return admin::json_error(400, "invalid_argument", domain.error().message, "domain");
    return FlushRequest{"domain:" + *domain, *domain};
  }
  return FlushRequest{"all", ""};
}

// Forgets what the key names; how many answers were forgotten.
std::size_t flush_verify_cache(verify::Verifier& verifier, const std::string& key) {
  if (key.starts_with("address:")) {
    const auto address = core::Address::parse(key.substr(8));
    return address ? verifier.flush_address(*address) : 0;
  }
  if (key.starts_with("domain:")) return verifier.flush_domain(key.substr(7));
  return key == "all" ? verifier.flush_all() : 0;
}

// Runs `round` at once, then again `interval` after each round ends, on the timer's executor,
// until the timer is cancelled (serve stopping). A round catches its own failures.
boost::asio::awaitable<void> rounds(boost::asio::steady_timer& timer,
                                    std::chrono::steady_clock::duration interval,
                                    std::function<boost::asio::awaitable<void>()> round) {
  for (;;) {
    co_await round();
    timer.expires_after(interval);
    boost::system::error_code ec;
    co_await timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

// A listener whose TLS certificate serve can reload (SIGHUP), by name for logs and metrics.
struct TlsListener {
  std::string name;
  net::ServerTls* tls;
};

// The certificate in use, said at start and after each reload; loudly when it is about to
// expire or has (the expiry is also a metric to alert on).
void log_certificate(const TlsListener& l, core::TimePoint now) {
  const auto c = l.tls->certificate();
  const auto expires = fmt::format("{:%Y-%m-%d %H:%M} UTC",
                                   fmt::gmtime(std::chrono::system_clock::to_time_t(c.not_after)));
  if (c.not_after <= now) {
    spdlog::error("{} TLS certificate {} expired on {}", l.name, c.subject, expires);
  } else if (c.not_after - now < std::chrono::hours(24 * 14)) {
    spdlog::warn("{} TLS certificate {} expires in {} day(s), on {}", l.name, c.subject,
                 std::chrono::duration_cast<std::chrono::hours>(c.not_after - now).count() / 24,
                 expires);
  } else {
    spdlog::info("{} TLS certificate {}, expires {}", l.name, c.subject, expires);
  }
}

}  // namespace

// The scheduler lease (Store::hold_lease): directory syncs, expiry and reports run on the
// node that holds it, so that nodes sharing a database do that work once. Renewed at every
// tick of the syncs and of the maintenance; given up when serve stops, so that another node
// takes over at its next tick. The term outlasts three ticks: a live holder keeps it, one that
// died is replaced once it has run out, or at once by a process of its own machine.
class SchedulerLease {
 public:
  SchedulerLease(store::Store& store, const core::Clock& clock, std::chrono::seconds term)
      : store_(store), clock_(clock), term_(term), holder_(lease_holder_id()) {}
  ~SchedulerLease() {
    try {
      if (state_ == 1) store_.release_lease(kName, holder_);
      if (node_ttl_.count() > 0) store_.node_gone(holder_);
    } catch (const std::exception& e) {
      spdlog::warn("scheduler lease not given up (it runs out): {}", e.what());
    }
  }
  // From now on each tick also says this node is alive (Store::node_seen, `node list`): its
  // version and listeners, seen until now + ttl.
  void describe(store::Node node, std::chrono::seconds ttl) {
    std::lock_guard lock(node_mutex_);
    node.id = holder_;
    node.host = holder_.substr(0, holder_.find(':'));  // lease_holder_id(): the host first
    node_ = std::move(node);
    node_ttl_ = ttl;
  }
  SchedulerLease(const SchedulerLease&) = delete;
  SchedulerLease& operator=(const SchedulerLease&) = delete;

  // Takes or renews the lease; whether this node holds it. Says so when that changes. When
  // the store cannot tell (busy past its timeout), this tick is skipped and nothing said. One
  // tick at a time: the sync and maintenance threads each took over a dead holder's lease at
  // start, and each said so.
  bool held() {
    std::lock_guard tick(tick_mutex_);
    bool now_held = false;
    try {
      say_alive();
      now_held = take_lease(store_, kName, holder_, clock_.now(), term_).held;
    } catch (const std::exception& e) {
      spdlog::warn("scheduler lease not renewed, this tick skipped: {}", e.what());
      return false;
    }
    if (state_.exchange(now_held ? 1 : 0) != (now_held ? 1 : 0)) {
      if (now_held) {
        spdlog::info("this node ({}) runs directory syncs, expiry and reports", holder_);
      } else {
        spdlog::info(
            "another node runs directory syncs, expiry and reports; this one ({}) "
            "takes over if that one stops",
            holder_);
      }
    }
    return now_held;
  }
  // What the last tick found, without asking the store.
  bool held_now() const { return state_ == 1; }

 private:
  void say_alive() {
    std::lock_guard lock(node_mutex_);
    if (node_ttl_.count() == 0) return;
    node_.seen_at = clock_.now();
    node_.expires_at = node_.seen_at + node_ttl_;
    store_.node_seen(node_);
  }
  static constexpr const char* kName = kSchedulerLease;
  store::Store& store_;
  const core::Clock& clock_;
  std::chrono::seconds term_;
  std::string holder_;
  std::atomic<int> state_{-1};  // -1 not asked yet, 0 another node's, 1 this node's
  std::mutex tick_mutex_;       // held()
  std::mutex node_mutex_;       // node_ and node_ttl_: the sync and maintenance threads tick
  store::Node node_;
  std::chrono::seconds node_ttl_{0};  // 0: not described yet
};

// Runs due directory syncs every `interval` on its own thread: LDAP and Graph calls block,
// and SMTP must not wait for them. Stopping waits for a sync under way to finish (its
// transaction is all or nothing anyway).
class SyncScheduler {
 public:
  // gauges: refreshes the syncs' metrics from the database, each round, on every node.
  SyncScheduler(directory::SyncService& syncs, const core::Clock& clock, admin::Metrics& metrics,
                SchedulerLease& lease, std::chrono::seconds interval, std::function<void()> gauges)
      : thread_([this, &syncs, &clock, &metrics, &lease, interval, gauges = std::move(gauges)] {
          std::unique_lock lock(mutex_);
          while (!stopping_) {
            lock.unlock();
            try {
              if (!lease.held()) {
              } else if (const auto ran = syncs.run_due(clock.now())) {
                metrics.add("mailroster_directory_syncs_total", "", ran);
              }
              gauges();
            } catch (const std::exception& e) {
              spdlog::error("sync scheduler: {}", e.what());
            }
            lock.lock();
            wake_.wait_for(lock, interval, [this] { return stopping_; });
          }
        }) {}
  ~SyncScheduler() { stop(); }
  SyncScheduler(const SyncScheduler&) = delete;
  SyncScheduler& operator=(const SyncScheduler&) = delete;

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

// Hands a mail of serve's own (a password link; a delivery notification, from the null
// sender) to the [reports] relay (the coroutine owns its arguments).
boost::asio::awaitable<void> hand_to_relay(smtp::ClientPool& pool, core::Destination relay,
                                           std::string from, std::string to, std::string message,
                                           std::string what) {
  const std::vector<std::string> recipients{to};  // not braced in the co_await: g++ 12 fails
  const auto error = co_await reports::submit(pool, relay, from, recipients, message);
  if (error.empty()) {
    spdlog::info("{} mailed to {}", what, to);
  } else {
    spdlog::warn("{} to {} not mailed: {}", what, to, error);
  }
}

namespace {

// The outbound listener: [smtp]'s limits, host name and TLS, with [outbound]'s own address,
// PROXY and require_tls settings.
smtp::ServerSettings outbound_settings(const Config& config) {
  auto s = config.inbound;
  s.name = "outbound";
  s.listen = config.outbound_listen;
  s.proxy = config.outbound_proxy;
  s.require_tls = config.outbound_require_tls;
  return s;
}

// Where RCPT TO:<postmaster> goes ([smtp] postmaster, checked when the file was read).
std::optional<core::Address> postmaster_of(const Config& config) {
  if (config.postmaster.empty()) return std::nullopt;
  return core::Address::parse(config.postmaster).value();
}

// The built-in checks, or rspamd when [scoring] rspamd names it.
std::shared_ptr<gateway::Scorer> make_scorer(const Config& config, admin::Metrics& metrics) {
  if (!config.use_rspamd) {
    spdlog::info("scoring: built-in checks, spam at {}", config.spam_threshold);
    return std::make_shared<gateway::BuiltinScorer>(config.spam_threshold);
  }
  auto settings = config.rspamd;
  settings.builtin_threshold = config.spam_threshold;
  spdlog::info("scoring: rspamd at {} (when it cannot be asked: {})", settings.server.str(),
               settings.on_failure == gateway::RspamdFailure::defer ? "defer" : "built-in checks");
  return std::make_shared<gateway::RspamdScorer>(settings, metrics);
}

// "a, b, c", or `none` for an empty list.
std::string listed(const std::vector<std::string>& keys, std::string_view none) {
  return keys.empty() ? std::string(none) : fmt::format("{}", fmt::join(keys, ", "));
}

}  // namespace

int serve(const Config& config, store::Store& store,
          const std::function<core::Result<Config>()>& reread) {
  boost::asio::io_context io;
  core::SystemClock clock;
  admin::Metrics metrics;

  smtp::ClientPool pool(io, config.relay);
  verify::Verifier verifier(pool, config.verify, clock);
  gateway::SwappableScorer scorer(make_scorer(config, metrics));
  // What the last reload applied (SIGHUP); read and written on the I/O thread only.
  Config live = config;
  lifecycle::DiscoveryService discovery(store, clock);
  verify::HarvestGuard harvest(config.harvest);
  // The SMTP path's lookups (domain, address owner, settings) use a connection of their own:
  // it reads the last committed state (SQLite's WAL; PostgreSQL's MVCC) while an import or a
  // directory sync holds the main connection's write transaction, so RCPT answers do not wait.
  // What it reads is kept in memory (gateway::Lookups) until the store hears of a change.
  const auto lookups_store = open_store(config, clock);
  gateway::Lookups lookups(*lookups_store);
  // The mail log's entries wait in memory and are written every second as a batch (never on
  // the SMTP path), and once more at the end, on a connection and a queue of their own: an
  // import or a directory sync may hold the main connection's write for a minute, and with it
  // every discovery count queued behind; the mail log's one INSERT takes no write lock on
  // PostgreSQL, so it goes on meanwhile (on the discovery writes' queue, a forced import
  // deleting a million users dropped 15,000 entries, over the 100,000 kept in memory).
  const auto log_store = open_store(config, clock);
  gateway::MailLog mail_log;
  gateway::FailingWrites mail_log_writes("mail log", "entries wait");
  auto flush_mail_log = [&mail_log, &mail_log_writes, &log_store] {
    try {
      mail_log.flush([&log_store](const auto& batch) { log_store->add_mail_log(batch); });
      mail_log_writes.written();
    } catch (const std::exception& e) {
      mail_log_writes.failed(e);
    }
  };
  core::WorkQueue log_writes("mail log");  // after what its tasks use
  // Which users had mail ("last mail"), written every second on the discovery writes' queue
  // (an upsert for a user that an import is deleting waits for the import's end on
  // PostgreSQL: not on the mail log's queue).
  gateway::MailActivity activity(clock);
  gateway::FailingWrites activity_writes("last mail of users", "they wait");
  auto flush_activity = [&activity, &activity_writes, &store] {
    try {
      activity.flush(
          [&store](const auto& users, core::TimePoint at) { store.record_mail(users, at); });
      activity_writes.written();
    } catch (const std::exception& e) {
      activity_writes.failed(e);
    }
  };
  // The gateways' discovery counts are writes (through the main connection): they wait in
  // discovery_counts and are written in batches on a queue of their own, off the I/O thread.
  // Declared after what its tasks use (discovery, metrics, discovery_counts) and before the
  // gateways that post to it: it is drained after the gateways are gone and before what the
  // tasks use is.
  gateway::DiscoveryCounts discovery_counts(
      [&discovery](const auto& mails) { return discovery.record_clean(mails); }, metrics);
  core::WorkQueue discovery_writes("discovery");
  // "Relayed" delivery notifications (gateway/dsn.hpp) go out from the null sender through the
  // reports' relay.
  auto notify = [&io, &pool, &live](const std::string& to, std::string message) {
    boost::asio::co_spawn(
        io,
        [&pool, &live, to, message = std::move(message)]() -> boost::asio::awaitable<void> {
          co_await hand_to_relay(pool, live.maintenance.relay, "", to, message, "relayed notice");
        },
        boost::asio::detached);
  };
  auto defer = [&discovery_writes](std::function<void()> task) {
    discovery_writes.post(std::move(task));
  };
  metrics.describe("mailroster_database_writes_failing",
                   "1 while the mail log, the users' last mail or the discovery counts cannot be "
                   "written (a full disk, the database gone): they wait in memory",
                   "gauge");
  metrics.gauge("mailroster_database_writes_failing", [&] {
    return mail_log_writes.failing() || activity_writes.failing() ||
                   discovery_counts.writes().failing()
               ? 1.0
               : 0.0;
  });
  metrics.describe("mailroster_discovery_writes_pending",
                   "Discovery counts of delivered mail not yet written (waiting while the "
                   "database cannot take them)",
                   "gauge");
  metrics.gauge("mailroster_discovery_writes_pending",
                [&] { return double(discovery_counts.pending()); });
  mail_log.set_enabled(config.mail_log);
  const gateway::DeliveryHooks hooks{
      .defer = defer,
      .notify = notify,
      .log = [&mail_log](core::MailLogEntry entry) { mail_log.record(std::move(entry)); },
      .had_mail = [&activity](core::Id user) { activity.seen(user); }};
  metrics.describe("mailroster_mail_log_written_total", "Mail log entries written", "counter");
  metrics.gauge("mailroster_mail_log_written_total", [&] { return double(mail_log.written()); });
  metrics.describe("mailroster_mail_log_dropped_total",
                   "Mail log entries dropped: the database could not take them in time", "counter");
  metrics.gauge("mailroster_mail_log_dropped_total", [&] { return double(mail_log.dropped()); });
  metrics.describe("mailroster_mail_log_unrouted_dropped_total",
                   "Mail log entries of no company (relay denied) not kept: over 1,000 a minute",
                   "counter");
  metrics.gauge("mailroster_mail_log_unrouted_dropped_total",
                [&] { return double(mail_log.unrouted_dropped()); });
  metrics.describe("mailroster_mail_log_pending", "Mail log entries not yet written", "gauge");
  metrics.gauge("mailroster_mail_log_pending", [&] { return double(mail_log.pending()); });
  gateway::InboundGateway inbound_gateway(lookups, discovery_counts, verifier, harvest, pool,
                                          scorer, metrics, clock,
                                          {.hostname = config.inbound.hostname,
                                           .postmaster = postmaster_of(config),
                                           .recipient_delimiter = config.recipient_delimiter,
                                           .hooks = hooks});
  smtp::Server inbound(io, config.inbound, inbound_gateway);
  gateway::OutboundGateway outbound_gateway(lookups, discovery_counts, pool, scorer, metrics, clock,
                                            {.hostname = config.inbound.hostname,
                                             .next_hop = config.outbound_next_hop,
                                             .mark = config.mark_outbound,
                                             .recipient_delimiter = config.recipient_delimiter,
                                             .hooks = hooks});
  smtp::Server outbound(io, outbound_settings(config), outbound_gateway);
  boost::asio::steady_timer mail_log_timer(io);
  boost::asio::co_spawn(io,
                        rounds(mail_log_timer, std::chrono::seconds(1),
                               [&]() -> boost::asio::awaitable<void> {
                                 if (mail_log.pending() != 0) log_writes.post(flush_mail_log);
                                 if (activity.pending() != 0) discovery_writes.post(flush_activity);
                                 if (discovery_counts.retry_due()) {
                                   discovery_writes.post([&] { discovery_counts.flush(); });
                                 }
                                 co_return;
                               }),
                        boost::asio::detached);

  metrics.describe("mailroster_build_info", "The version and commit this node runs", "gauge");
  metrics.gauge("mailroster_build_info",
                fmt::format("version=\"{}\",commit=\"{}\"", version(), commit()),
                [] { return 1.0; });
  // Counters (…_total) read from their owners at each scrape, from 0 at the process' start.
  metrics.describe("mailroster_inbound_sessions", "Inbound SMTP sessions open now", "gauge");
  metrics.gauge("mailroster_inbound_sessions", [&] { return double(inbound.active_sessions()); });
  metrics.describe("mailroster_verify_cache_entries",
                   "Recipient callout results held in memory (positive, negative, catch-all)",
                   "gauge");
  metrics.gauge("mailroster_verify_cache_entries",
                [&] { return double(verifier.stats().cache_entries); });
  metrics.describe("mailroster_verify_probes_total",
                   "Recipient callouts sent to destinations (concurrent ones for one address: one)",
                   "counter");
  metrics.gauge("mailroster_verify_probes_total", [&] { return double(verifier.stats().probes); });
  metrics.describe("mailroster_verify_cache_hits_total",
                   "Recipients decided from a cached callout result, without a probe", "counter");
  metrics.gauge("mailroster_verify_cache_hits_total",
                [&] { return double(verifier.stats().cache_hits); });
  metrics.describe("mailroster_relay_connects_total",
                   "New connections to destinations and the next hop (reused ones not counted)",
                   "counter");
  metrics.gauge("mailroster_relay_connects_total", [&] { return double(pool.connects()); });
  metrics.describe("mailroster_relay_tls_connects_total",
                   "Connections to destinations and the next hop that went on in TLS", "counter");
  metrics.gauge("mailroster_relay_tls_connects_total", [&] { return double(pool.tls_connects()); });
  metrics.describe("mailroster_relay_failovers_total",
                   "Sessions with a server other than a destination's first (it had failed)",
                   "counter");
  metrics.gauge("mailroster_relay_failovers_total", [&] { return double(pool.failovers()); });
  metrics.describe("mailroster_relay_servers_passed_over",
                   "Servers that failed lately, tried after the others ([relay] server_retry)",
                   "gauge");
  metrics.gauge("mailroster_relay_servers_passed_over", [&] { return double(pool.passed_over()); });
  metrics.describe("mailroster_lookup_cache_hits_total",
                   "SMTP lookups (domains, owners, settings) answered from memory", "counter");
  metrics.gauge("mailroster_lookup_cache_hits_total", [&] { return double(lookups.stats().hits); });
  metrics.describe("mailroster_lookup_cache_misses_total", "SMTP lookups read from the database",
                   "counter");
  metrics.gauge("mailroster_lookup_cache_misses_total",
                [&] { return double(lookups.stats().misses); });
  metrics.describe("mailroster_lookup_cache_clears_total",
                   "Times the SMTP lookups in memory were dropped: the database changed",
                   "counter");
  metrics.gauge("mailroster_lookup_cache_clears_total",
                [&] { return double(lookups.stats().clears); });

  admin::HttpServer http(
      io, admin::HttpServerSettings{.listen = config.admin_listen,
                                    .tls_cert_file = config.admin_tls_cert,
                                    .tls_key_file = config.admin_tls_key,
                                    .trusted_proxies = config.admin_trusted_proxies});
  // On a worker thread: the store may be busy with an import or a sync for seconds.
  http.route("GET", "/healthz",
             [&store](const admin::HttpRequest&) {
               try {
                 store.ping();
               } catch (const core::Failure& f) {
                 return admin::HttpResponse{
                     503, "application/json",
                     nlohmann::json{{"status", "unavailable"}, {"reason", f.what()}}.dump()};
               }
               return admin::HttpResponse{200, "application/json", R"({"status":"ok"})"};
             },
             {.blocking = true});
  http.route("GET", "/metrics", [&metrics](const admin::HttpRequest&) {
    return admin::HttpResponse{200, "text/plain; version=0.0.4", metrics.render()};
  });

  // Expiry and the Thursday reports, every maintenance interval; their store calls on a
  // thread of their own (an import or a sync may hold the store for a long time).
  boost::asio::thread_pool maintenance_store(1);
  reports::Maintenance maintenance(store, discovery, pool, config.maintenance,
                                   maintenance_store.get_executor());
  SchedulerLease lease(store, clock, 3 * std::max(config.maintenance.interval, config.sync_check));
  maintenance.only_while([&lease] { return lease.held(); });
  metrics.describe("mailroster_maintenance_runs_total",
                   "Maintenance runs (expiry, the day's licensed users, Thursday reports)",
                   "counter", {""});
  metrics.describe("mailroster_reports_sent_total", "Weekly SMTP Discovery reports sent", "counter",
                   {""});
  metrics.describe("mailroster_directory_syncs_total", "Scheduled directory syncs run", "counter",
                   {""});
  metrics.describe("mailroster_licensed_users",
                   "Each company's user accounts at the last maintenance run (on the node "
                   "running the scheduler)",
                   "gauge");
  // Across the nodes sharing a database, exactly one should say 1: something to alert on.
  metrics.describe("mailroster_scheduler_lease_held",
                   "1 on the node that runs directory syncs, expiry and reports", "gauge");
  metrics.gauge("mailroster_scheduler_lease_held",
                [&lease] { return lease.held_now() ? 1.0 : 0.0; });
  boost::asio::steady_timer maintenance_timer(io);
  boost::asio::co_spawn(
      io,
      rounds(maintenance_timer, config.maintenance.interval,
             [&]() -> boost::asio::awaitable<void> {
               try {
                 const auto r = co_await maintenance.run(clock.now());
                 if (!r.skipped) {
                   metrics.add("mailroster_maintenance_runs_total");
                 }
                 // Said by the node that counted them, the scheduler's.
                 std::map<std::string, double> users;
                 for (const auto& u : r.usage) {
                   users["company=\"" + u.company + "\""] = static_cast<double>(u.users);
                 }
                 metrics.set_gauges("mailroster_licensed_users", users);
                 metrics.add("mailroster_reports_sent_total", "", r.reports_sent.size());
               } catch (const std::exception& e) {
                 spdlog::error("maintenance failed: {}", e.what());
               }
             }),
      boost::asio::detached);

  // An idle SMTP path still reads what the database has told it, every few seconds: on
  // PostgreSQL notifications would otherwise pile up unread on the connection.
  boost::asio::steady_timer lookups_timer(io);
  boost::asio::co_spawn(io,
                        rounds(lookups_timer, std::chrono::seconds(5),
                               [&]() -> boost::asio::awaitable<void> {
                                 try {
                                   lookups.poll();
                                 } catch (const std::exception& e) {
                                   spdlog::warn("SMTP lookups: {}", e.what());
                                 }
                                 co_return;
                               }),
                        boost::asio::detached);

  // Directory syncs due at the top or bottom of the hour, on their own thread: LDAP and Graph
  // calls block, and SMTP must not wait for them.
  const auto secrets = store::SecretBox::open_key_file(config.key_file());
  directory::ldap::LdapDirectory ldap_source;
  directory::SyncService syncs(store, secrets, clock);
  syncs.add_source(ldap_source);
  directory::graph::GraphDirectory graph_source(clock);
  syncs.add_source(graph_source);
  // Each company's syncs, for alerts on one that fails or has not succeeded for too long: read
  // from the database (the runs of every node and of the CLI) after each run here and at each
  // round of the sync scheduler.
  metrics.describe("mailroster_directory_sync_last_success_timestamp_seconds",
                   "When each company's directory sync last succeeded (0: never)", "gauge");
  metrics.describe("mailroster_directory_sync_failing",
                   "1 when the last attempt of a company's directory sync failed", "gauge");
  std::mutex sync_gauges_mutex;
  const auto sync_gauges = [&] {
    std::lock_guard lock(sync_gauges_mutex);
    std::map<std::string, double> last_success, failing;
    for (const auto& s : syncs.overview()) {
      const auto labels =
          fmt::format("company=\"{}\",kind=\"{}\"", s.company, core::to_string(s.kind));
      last_success[labels] =
          s.last_success ? std::chrono::duration<double>(s.last_success->time_since_epoch()).count()
                         : 0.0;
      failing[labels] = s.failing() ? 1.0 : 0.0;
    }
    metrics.set_gauges("mailroster_directory_sync_last_success_timestamp_seconds", last_success);
    metrics.set_gauges("mailroster_directory_sync_failing", failing);
  };
  syncs.on_outcome(sync_gauges);

  // The admin API (login, roles, tenant isolation) and its OpenAPI document.
  // The session cookie is Secure with HTTPS here, or at a proxy in front (an https:// public_url).
  admin::Auth auth(store, clock,
                   {.secure_cookie = !config.admin_tls_cert.empty() ||
                                     config.admin_public_url.starts_with("https://"),
                    .ipv6_prefix = config.inbound.ipv6_prefix});
  admin::Api api(store, auth, discovery, syncs, clock);

  // The rate limits' counts (the harvest guard's unknown recipients, failed logins and
  // password mails) go to the other nodes of the database and theirs come in, every second
  // (PostgreSQL's notifications, on the lookups' connection; nothing on SQLite), so a client
  // spread over the nodes by a balancer meets one limit. Keys whose window emptied are
  // forgotten on the way.
  metrics.describe("mailroster_rate_limit_shared_total",
                   "Rate-limit events told to the other nodes (sent) and heard from them (heard)",
                   "counter",
                   {R"(limit="harvest",direction="sent")", R"(limit="harvest",direction="heard")",
                    R"(limit="logins",direction="sent")", R"(limit="logins",direction="heard")"});
  metrics.describe("mailroster_harvest_clients",
                   "Client networks with unknown recipients in the harvest guard's window",
                   "gauge");
  metrics.gauge("mailroster_harvest_clients",
                [&harvest] { return double(harvest.counts().keys()); });
  metrics.describe("mailroster_harvest_blocked_clients",
                   "Client networks the harvest guard refuses now (421)", "gauge");
  metrics.gauge("mailroster_harvest_blocked_clients",
                [&harvest] { return double(harvest.blocked()); });
  boost::asio::steady_timer tally_timer(io);
  bool tally_failing = false;
  std::vector<core::TallyCount> flushes_told;  // `verify flush` asked here (the I/O thread's)
  auto share = [&](store::Tally tally, const std::string& name,
                   const std::vector<core::TallyCount>& told) {
    lookups_store->tell_nodes(tally, told);
    auto heard = lookups_store->heard_from_nodes(tally);
    auto count = [&](const char* direction, const std::vector<core::TallyCount>& counts) {
      std::uint64_t n = 0;
      for (const auto& c : counts) n += c.count;
      metrics.add("mailroster_rate_limit_shared_total",
                  fmt::format("limit=\"{}\",direction=\"{}\"", name, direction), n);
    };
    count("sent", told);
    count("heard", heard);
    return heard;
  };
  boost::asio::co_spawn(
      io,
      rounds(
          tally_timer, std::chrono::seconds(1),
          [&]() -> boost::asio::awaitable<void> {
            const auto now = clock.now();
            auto harvest_told = harvest.counts().take_outgoing();
            auto logins_told = auth.take_failures();
            try {
              for (const auto& c : share(store::Tally::harvest, "harvest", harvest_told)) {
                harvest.counts().add_remote(c.key, c.count, now);
              }
              auth.heard_failures(share(store::Tally::logins, "logins", logins_told), now);
              lookups_store->tell_nodes(store::Tally::verify_flushes,
                                        std::exchange(flushes_told, {}));
              for (const auto& f : lookups_store->heard_from_nodes(store::Tally::verify_flushes)) {
                spdlog::info("verify: {} answer(s) forgotten ({}), as another node was asked",
                             flush_verify_cache(verifier, f.key), f.key);
              }
              if (std::exchange(tally_failing, false)) {
                spdlog::info("rate limits: sharing counts with the other nodes again");
              }
            } catch (const std::exception& e) {
              // Counted here all the same; the other nodes miss these.
              if (!std::exchange(tally_failing, true)) {
                spdlog::warn("rate limits: cannot share counts with the other nodes: {}", e.what());
              }
            }
            harvest.sweep(now);
            auth.sweep(now);
            co_return;
          }),
      boost::asio::detached);
  // The callout verifier's routes. Its state lives on the I/O thread: the caller is checked on
  // a worker thread (a session is read from the store, which a sync may hold), then the work
  // runs there. Allowed: an operator's session, or the CLI on this machine (a token derived
  // from the secrets key file, which only local administrators can read).
  const auto local_token = "Bearer " + secrets.derive("verify-flush");
  // Who asks: the local CLI (its token), or a session's caller (none: neither).
  struct Asker {
    bool local = false;
    std::optional<admin::Caller> caller;
    bool anyone() const { return local || caller; }
    bool operator_or_local() const { return local || (caller && caller->is_operator()); }
  };
  auto asker = [&local_token, &auth](const admin::HttpRequest& req) {
    const auto it = req.headers.find("authorization");
    if (it != req.headers.end() && it->second.size() == local_token.size() &&
        sodium_memcmp(it->second.data(), local_token.data(), local_token.size()) == 0) {
      return Asker{true, std::nullopt};
    }
    return Asker{false, auth.caller(req)};
  };
  // A change asked with a session needs the session's CSRF token, as the API's own routes do
  // (the local token is no cookie a browser could send).
  auto csrf_refused = [](const admin::HttpRequest& req,
                         const Asker& who) -> std::optional<admin::HttpResponse> {
    if (who.local || !who.caller || admin::Auth::csrf_ok(req, *who.caller)) return std::nullopt;
    return admin::json_error(403, "csrf", "missing or wrong X-CSRF-Token");
  };
  // An administrator asking (an operator, a company administrator, or the local CLI), or the
  // answer for anyone else: 401 without a session, 403 for an end user.
  auto administrator =
      [&asker](const admin::HttpRequest& req) -> std::variant<Asker, admin::HttpResponse> {
    auto who = asker(req);
    if (!who.anyone()) return admin::json_error(401, "unauthenticated", "log in first");
    if (!who.operator_or_local() && who.caller->login.role != store::LoginRole::company_admin) {
      return admin::json_error(403, "forbidden", "administrators only");
    }
    return who;
  };
  auto on_io = [&io](auto work) -> std::optional<decltype(work())> {
    auto task = std::make_shared<std::packaged_task<decltype(work())()>>(std::move(work));
    auto done = task->get_future();
    boost::asio::post(io, [task] { (*task)(); });
    if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return std::nullopt;
    return done.get();
  };
  const auto stopping = admin::json_error(503, "unavailable", "the server is stopping");
  // The {company} of a route, as every route on a company has it: for its administrators (and
  // operators and the local CLI), absent to anyone else.
  auto company_of = [&store, &api](const admin::HttpRequest& req,
                                   const Asker& who) -> std::optional<core::Company> {
    const auto& name = req.params.at("company");
    return who.local ? store.find_company(name) : api.company_for(name, *who.caller);
  };
  api.add_route(
      "POST", "/api/v1/verify/flush",
      "Flush the callout cache ({address} or {domain}, or all), on every node: an operator or "
      "the local CLI's token; a company administrator, for the company's domains",
      [&](const admin::HttpRequest& req) {
        const auto asking = administrator(req);
        if (const auto* refused = std::get_if<admin::HttpResponse>(&asking)) return *refused;
        const auto& who = std::get<Asker>(asking);
        if (auto refused = csrf_refused(req, who)) return *refused;
        const auto parsed = flush_request(req);
        if (const auto* bad = std::get_if<admin::HttpResponse>(&parsed)) return *bad;
        const auto flush = std::get<FlushRequest>(parsed);
        if (!who.operator_or_local()) {  // a company administrator: its own domains only
          const auto domain = flush.domain.empty() ? std::nullopt : store.find_domain(flush.domain);
          if (flush.domain.empty() || !domain ||
              domain->company_id != who.caller->login.company_id) {
            return admin::json_error(403, "forbidden",
                                     "an administrator flushes the company's own domains");
          }
        }
        return on_io([&verifier, &flushes_told, key = flush.key] {
                 flushes_told.push_back({key, 1});  // the other nodes forget it too
                 return json_response({{"removed", flush_verify_cache(verifier, key)}});
               })
            .value_or(stopping);
      },
      {{{"address", nlohmann::json::value_t::string},
        {"domain", nlohmann::json::value_t::string}}});
  // The destinations' servers that failed lately and are tried after the others now: the
  // relay pool's (the I/O thread's), for the operators' Gateway page.
  api.add_route(
      "GET", "/api/v1/relay/failing",
      "Mail servers of the destinations (and the next hop) that failed lately, on this node: "
      "an operator or the local CLI's token",
      [&](const admin::HttpRequest& req) {
        const auto who = asker(req);
        if (!who.anyone()) return admin::json_error(401, "unauthenticated", "log in first");
        if (!who.operator_or_local()) return admin::json_error(403, "forbidden", "operators only");
        const auto found = on_io([&pool] { return pool.failing(); });
        if (!found) return stopping;
        const auto iso = [](std::chrono::system_clock::time_point t) {
          return core::format_iso8601(std::chrono::time_point_cast<std::chrono::seconds>(t));
        };
        nlohmann::json items = nlohmann::json::array();
        for (const auto& f : *found) {
          items.push_back({{"server", f.server},
                           {"failed_at", iso(f.failed_at)},
                           {"retry_at", iso(f.retry_at)},
                           {"why", f.why}});
        }
        return json_response({{"items", items}});
      });
  // Which domains accept any address (their mail is relayed, never counted for discovery):
  // this node's findings, so that an administrator sees why an address is never discovered.
  api.add_route(
      "GET", "/api/v1/verify/catch-all",
      "Domains whose mail server accepts any address, as this node found: an operator's or "
      "the local CLI's are all, a company administrator's are the company's",
      [&](const admin::HttpRequest& req) {
        const auto asking = administrator(req);
        if (const auto* refused = std::get_if<admin::HttpResponse>(&asking)) return *refused;
        const auto& who = std::get<Asker>(asking);
        const bool all = who.operator_or_local();
        const auto& caller = who.caller;
        const auto found = on_io([&verifier] { return verifier.catch_all_domains(); });
        if (!found) return stopping;
        nlohmann::json items = nlohmann::json::array();
        for (const auto& d : *found) {
          const auto domain = store.find_domain(d.domain);
          if (!domain || (!all && domain->company_id != caller->login.company_id)) continue;
          // Found at a server the domain's mail no longer goes to: says nothing now.
          if (domain->destination.str() != d.destination) continue;
          const auto company = store.company_by_id(domain->company_id);
          items.push_back({{"domain", d.domain},
                           {"company", company ? company->name : ""},
                           {"destination", d.destination},
                           {"checked_at", core::format_iso8601(d.checked_at)}});
        }
        return json_response({{"items", items}});
      });
  // `domain check` for the company's administrators: the CLI's session with the destination,
  // run on the I/O thread with a pool of its own (a new session, not one the relay keeps
  // open), answered with the CLI's JSON. A destination that cannot take mail is still a 200:
  // the check ran, and says so.
  api.add_route(
      "POST", "/api/v1/companies/{company}/domains/{domain}/check",
      "Try a domain's delivery destination as the gateway does: session, extensions, TLS, the "
      "probe sender, a random recipient (operators, the company's administrators, the local CLI)",
      [&](const admin::HttpRequest& req) {
        const auto who = asker(req);
        if (!who.anyone()) return admin::json_error(401, "unauthenticated", "log in first");
        if (auto refused = csrf_refused(req, who)) return *refused;
        const auto company = company_of(req, who);
        if (!company) return admin::json_error(404, "not_found", "no such company");
        const auto domain = store.find_domain(core::ascii_lower(req.params.at("domain")));
        if (!domain || domain->company_id != company->id) {
          return admin::json_error(404, "not_found", "no such domain");
        }
        // The relay settings in use (a reload may have changed them), read on the I/O thread.
        const auto in_use = on_io([&live] { return std::pair{live.relay, live.verify.sender}; });
        if (!in_use) return stopping;
        const auto& [relay, sender] = *in_use;
        using Found = std::vector<verify::DestinationCheck>;
        auto done = std::make_shared<std::promise<Found>>();
        auto found = done->get_future();
        boost::asio::co_spawn(
            io,
            [&io, relay, sender, d = *domain, done]() -> boost::asio::awaitable<void> {
              try {
                smtp::ClientPool own(io, relay);
                done->set_value(
                    co_await verify::check_destination(own, d.destination, d.name, sender));
              } catch (...) {
                done->set_exception(std::current_exception());
              }
            },
            boost::asio::detached);
        // Every step of each server's session is bounded by the relay's timeouts; serve
        // stopping ends the wait at once.
        const auto until = std::chrono::steady_clock::now() +
                           static_cast<int>(domain->destination.hosts.size()) *
                               (relay.connect_timeout + 6 * relay.command_timeout);
        while (found.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
          if (io.stopped()) return stopping;
          if (std::chrono::steady_clock::now() > until) {
            return admin::json_error(504, "timeout",
                                     "the check of " + domain->name + " did not end");
          }
        }
        const auto checks = found.get();
        const auto& c = serving_server(checks);
        spdlog::info("domain check of {} ({}): {}", domain->name, domain->destination.str(),
                     c.connected() ? c.destination.str() + ": " + domain_check_verdict(c)
                                   : c.hello.describe());
        return json_response(domain_check_json(*domain, checks, relay.tls));
      });
  // `verify explain` for the company's administrators: what the gateway answers for mail to
  // an address of the company's domains, from the database (gateway::recipient_rule), with
  // the sub-address delimiters in use.
  api.add_route(
      "GET", "/api/v1/companies/{company}/recipients/{address}",
      "What the gateway answers for mail to an address of the company's domains, and why "
      "(the destination is not asked); for a callout, cached: this node's remembered answer "
      "{verdict, reply, refresh_at, expires_at, accept_all}, or null",
      [&](const admin::HttpRequest& req) {
        const auto who = asker(req);
        if (!who.anyone()) return admin::json_error(401, "unauthenticated", "log in first");
        const auto company = company_of(req, who);
        if (!company) return admin::json_error(404, "not_found", "no such company");
        const auto address = core::Address::parse(req.params.at("address"));
        if (!address)
          return admin::json_error(400, "invalid_argument", address.error().message, "address");
        const auto delimiters = on_io([&live] { return live.recipient_delimiter; });
        if (!delimiters) return stopping;
        const auto rule = gateway::recipient_rule(lookups, *address, *delimiters);
        if (rule.domain && rule.domain->company_id != company->id) {
          return admin::json_error(404, "not_found",
                                   address->domain() + " is not a domain of " + company->name);
        }
        auto j = gateway::explain(rule, *address);
        j["company"] = rule.domain ? nlohmann::json(company->name) : nlohmann::json();
        // A callout: what this node's cache holds for the address as written (it is what
        // is asked), so that "why was it taken?" has the destination's remembered answer.
        if (rule.kind == gateway::RecipientRule::Kind::callout && rule.domain) {
          const auto cached = on_io([&verifier, &rule, &address] {
            return verifier.cached(rule.domain->destination, *address);
          });
          if (!cached) return stopping;
          j["cached"] = nullptr;
          if (const auto& c = *cached) {
            j["cached"] = {{"verdict", verify::to_string(c->verdict)},
                           {"reply", c->probe.describe()},
                           {"refresh_at", core::format_iso8601(c->refresh_at)},
                           {"expires_at", core::format_iso8601(c->expire_at)},
                           {"accept_all", c->accept_all}};
          }
        }
        return json_response(j);
      });
  // Password links (forgot password, invitations) go out through the reports' relay.
  api.set_password_mail(
      {.base_url = [&config, &http] { return config.admin_base_url(http.port()); },
       .send =
           [&io, &pool, &live](const std::string& to, const std::string& message) {
             boost::asio::co_spawn(
                 io,
                 [&pool, &live, to, message]() -> boost::asio::awaitable<void> {
                   co_await hand_to_relay(pool, live.maintenance.relay, live.maintenance.from, to,
                                          message, "password link");
                 },
                 boost::asio::detached);
           },
       .from = config.maintenance.from,
       .hostname = config.inbound.hostname});
  api.install(http);
  admin::install_ui(http);

  // Signals are caught before anything announces it is listening: a SIGINT or SIGTERM sent
  // as soon as the "listening" lines appear (as a supervisor or a test does) stops the
  // service cleanly instead of killing it.
  //
  // The first signal drains: no new connection is taken, a session between transactions is
  // told 421 4.3.2 at once, and one in a transaction finishes it (the client gets the
  // destination's answer) for up to [smtp] shutdown_grace; then the service stops. A second
  // signal stops it at once. So a restart (or a node taken out of a balancer) loses nothing
  // and makes no client send a message twice.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  boost::asio::steady_timer drain_timer(io);
  boost::asio::steady_timer watchdog_timer(io);
  const auto stop_now = [&] {
    drain_timer.cancel();
    watchdog_timer.cancel();
    http.stop();  // waits for a request under way on a worker (an import's apply) to finish
    pool.clear();
    io.stop();
  };
  std::chrono::steady_clock::time_point deadline{};  // set by the first signal
  auto shutdown_grace = config.shutdown_grace;       // SIGHUP may change it
  // What is still under way: "2 SMTP session(s)", "2 SMTP session(s) and 1 admin request(s)".
  const auto under_way = [&] {
    const auto sessions = inbound.active_sessions() + outbound.active_sessions();
    const auto requests = http.active_requests();
    return requests == 0
               ? fmt::format("{} SMTP session(s)", sessions)
               : fmt::format("{} SMTP session(s) and {} admin request(s)", sessions, requests);
  };
  std::string told;  // what the service manager was last told is under way
  std::function<void()> check_drained = [&] {
    if (inbound.active_sessions() + outbound.active_sessions() + http.active_requests() == 0) {
      spdlog::info("every SMTP session has ended; stopping");
      return stop_now();
    }
    const auto left = under_way();
    if (std::chrono::steady_clock::now() >= deadline) {
      spdlog::warn("shutdown grace over; cutting {}", left);
      return stop_now();
    }
    if (left != told) {
      told = left;
      service_manager::status("draining " + told);
    }
    drain_timer.expires_after(std::chrono::milliseconds(50));
    drain_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) check_drained();
    });
  };
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        const auto name = signal == SIGINT ? "SIGINT" : "SIGTERM";
        if (deadline != std::chrono::steady_clock::time_point{}) {
          spdlog::info("received {} again, stopping now", name);
          return stop_now();
        }
        deadline = std::chrono::steady_clock::now() + shutdown_grace;
        http.drain();
        inbound.drain();
        outbound.drain();
        maintenance_timer.cancel();
        lookups_timer.cancel();
        tally_timer.cancel();
        mail_log_timer.cancel();
        told = under_way();
        spdlog::info("received {}, draining {} for up to {} s", name, told, shutdown_grace.count());
        service_manager::stopping("draining " + told);
        signals.async_wait(on_signal);
        check_drained();
      };
  signals.async_wait(on_signal);

  // SIGHUP (systemctl reload, a certificate renewal's hook) reads the configuration file again
  // and applies what can change while serving (app::reloadable: limits, timeouts, the harvest
  // guard, callouts, the smarthost, the reports' relay, scoring, the log level) to new
  // connections and the next command of those under way; a file that does not parse changes
  // nothing. Then it reads the TLS certificates again: new connections get the new one; a
  // certificate that cannot be used is refused and the one in use stays.
  metrics.describe("mailroster_config_reloads_total", "Configuration reloads (SIGHUP), per result",
                   "counter", admin::Metrics::each("result", {"ok", "failed"}));
  // What a reload applied, said once the certificates are read too (its last line).
  struct Reloaded {
    std::string error;                  // why nothing was applied; "": it was
    std::vector<std::string> applied;   // keys
    std::vector<std::string> at_start;  // changed keys that wait for a restart
    bool file = true;                   // false: serve runs without a configuration file
  };
  auto reload_config = [&]() -> Reloaded {
    if (!reread) return {.file = false};
    auto reread_config = reread();
    if (!reread_config) {
      metrics.add("mailroster_config_reloads_total", "result=\"failed\"");
      return {reread_config.error().message};
    }
    auto fresh = std::move(reread_config).value();
    const Config written = fresh;  // as in the file
    // New certificate paths are read below, with the certificates; TLS is turned on or off
    // only at a start: the paths in use then stay.
    const bool smtp_tls_switched =
        config.inbound.tls_cert_file.empty() != fresh.inbound.tls_cert_file.empty();
    const bool admin_tls_switched = config.admin_tls_cert.empty() != fresh.admin_tls_cert.empty();
    if (smtp_tls_switched) {  // the paths in use stay
      fresh.inbound.tls_cert_file = live.inbound.tls_cert_file;
      fresh.inbound.tls_key_file = live.inbound.tls_key_file;
    }
    if (admin_tls_switched) {
      fresh.admin_tls_cert = live.admin_tls_cert;
      fresh.admin_tls_key = live.admin_tls_key;
    }
    const auto applies = [&](const std::string& key) {
      if (key.starts_with("smtp.tls_")) return !smtp_tls_switched;
      if (key.starts_with("admin.tls_")) return !admin_tls_switched;
      return reloadable(key);
    };
    std::vector<std::string> applied;
    bool scoring = false;
    for (auto& key : changed_keys(live, fresh)) {
      scoring |= key.starts_with("scoring.");
      if (applies(key)) applied.push_back(std::move(key));
    }
    std::vector<std::string> at_start;  // against what serve started with: said every time
    for (auto& key : changed_keys(config, written)) {
      if (!applies(key)) at_start.push_back(std::move(key));
    }
    try {
      pool.reconfigure(fresh.relay);  // first: a TLS context it cannot make changes nothing
    } catch (const std::exception& e) {
      metrics.add("mailroster_config_reloads_total", "result=\"failed\"");
      return {e.what()};
    }
    spdlog::set_level(spdlog::level::from_str(fresh.log_level));
    inbound.reconfigure(fresh.inbound);
    outbound.reconfigure(outbound_settings(fresh));
    harvest.reconfigure(fresh.harvest);
    auth.reconfigure_ipv6_prefix(fresh.inbound.ipv6_prefix);
    verifier.reconfigure(fresh.verify);
    outbound_gateway.reconfigure({.next_hop = fresh.outbound_next_hop,
                                  .mark = fresh.mark_outbound,
                                  .recipient_delimiter = fresh.recipient_delimiter});
    maintenance.set_relay(fresh.maintenance.relay);
    maintenance.set_mail_log_retention(fresh.maintenance.mail_log_retention);
    mail_log.set_enabled(fresh.mail_log);
    inbound_gateway.set_postmaster(postmaster_of(fresh));
    inbound_gateway.set_recipient_delimiter(fresh.recipient_delimiter);
    if (scoring) scorer.set(make_scorer(fresh, metrics));  // messages being scored keep theirs
    shutdown_grace = fresh.shutdown_grace;
    live = std::move(fresh);
    metrics.add("mailroster_config_reloads_total", "result=\"ok\"");
    return {"", std::move(applied), std::move(at_start)};
  };
  std::vector<TlsListener> tls_listeners;
  for (const auto& l :
       {TlsListener{"inbound", &inbound.tls()}, TlsListener{"outbound", &outbound.tls()},
        TlsListener{"admin", &http.tls()}}) {
    if (l.tls->enabled()) tls_listeners.push_back(l);
  }
  metrics.describe("mailroster_tls_certificate_expiry_timestamp_seconds",
                   "When the TLS certificate in use expires (Unix time), per listener", "gauge");
  std::vector<std::string> reload_series;
  for (const auto& l : tls_listeners) {
    for (const char* result : {"ok", "failed"}) {
      reload_series.push_back(fmt::format("listener=\"{}\",result=\"{}\"", l.name, result));
    }
  }
  metrics.describe("mailroster_tls_reloads_total",
                   "TLS certificate reloads (SIGHUP), per listener and result", "counter",
                   reload_series);
  metrics.describe("mailroster_smtp_starttls_total",
                   "STARTTLS handshakes, per SMTP listener and result", "counter");
  for (const auto& [name, server] :
       {std::pair{"inbound", &inbound}, std::pair{"outbound", &outbound}}) {
    if (!server->tls().enabled()) continue;
    for (const bool ok : {true, false}) {
      metrics.gauge("mailroster_smtp_starttls_total",
                    fmt::format("listener=\"{}\",result=\"{}\"", name, ok ? "ok" : "failed"),
                    [server, ok] {
                      const auto c = server->tls_counts();
                      return double(ok ? c.established : c.failed);
                    });
    }
  }
  for (const auto& l : tls_listeners) {
    metrics.gauge(
        "mailroster_tls_certificate_expiry_timestamp_seconds",
        fmt::format("listener=\"{}\"", l.name), [tls = l.tls] {
          return double(std::chrono::system_clock::to_time_t(tls->certificate().not_after));
        });
  }
  std::string serving;  // the status line while serving
  boost::asio::signal_set hangups(io, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_hangup =
      [&](const boost::system::error_code& ec, int) {
        if (ec) return;
        hangups.async_wait(on_hangup);
        if (deadline != std::chrono::steady_clock::time_point{}) {
          spdlog::info("received SIGHUP while stopping: nothing reloaded");
          return;
        }
        spdlog::info("received SIGHUP: reading the configuration{} again",
                     tls_listeners.empty() ? "" : " and the TLS certificates");
        service_manager::reloading();
        const auto reloaded = reload_config();
        std::size_t failed = 0;
        for (const auto& l : tls_listeners) {
          try {
            if (l.name == "admin") {
              l.tls->load(live.admin_tls_cert, live.admin_tls_key);
            } else {
              l.tls->load(live.inbound.tls_cert_file, live.inbound.tls_key_file);
            }
            metrics.add("mailroster_tls_reloads_total",
                        fmt::format("listener=\"{}\",result=\"ok\"", l.name));
            log_certificate(l, clock.now());
          } catch (const core::Failure& f) {
            ++failed;
            metrics.add("mailroster_tls_reloads_total",
                        fmt::format("listener=\"{}\",result=\"failed\"", l.name));
            spdlog::error("{}; the certificate loaded before stays in use", f.what());
          }
        }
        // "configuration (not) reloaded" is the reload's last line, after the certificates.
        std::string config_note;
        if (!reloaded.file) {
          // nothing to say: the defaults stay
        } else if (!reloaded.error.empty()) {
          spdlog::error("configuration not reloaded: {}; the settings in use stay", reloaded.error);
          config_note = "; configuration not reloaded (see the log)";
        } else {
          if (!reloaded.at_start.empty()) {
            spdlog::warn(
                "changed in the configuration but read at start only (restart to apply): {}",
                listed(reloaded.at_start, ""));
            config_note =
                fmt::format("; {} setting(s) wait for a restart", reloaded.at_start.size());
          }
          spdlog::info("configuration reloaded: {}", listed(reloaded.applied, "no change"));
        }
        service_manager::ready(
            failed == 0 ? serving + config_note
                        : fmt::format("{}{}; {} TLS certificate(s) not reloaded (see the log)",
                                      serving, config_note, failed));
      };
  hangups.async_wait(on_hangup);

  http.start();
  inbound.start();
  outbound.start();
  spdlog::info("mailroster {}", version_and_commit());
  spdlog::info("database {}", describe_database(config));
  // Where each listener is bound ("[::1]:2525" for an IPv6 address).
  const auto bound = [](const core::Endpoint& listen, std::uint16_t port) {
    return core::Endpoint{listen.host, port}.str();
  };
  const auto admin_at = bound(config.admin_listen, http.port());
  const auto inbound_at = bound(config.inbound.listen, inbound.port());
  const auto outbound_at = bound(config.outbound_listen, outbound.port());
  const auto admin_name = config.admin_tls_cert.empty() ? "admin HTTP" : "admin HTTPS";
  spdlog::info("{} listening on {}", admin_name, admin_at);
  const auto starttls = [&config](bool required) -> std::string {
    if (config.inbound.tls_cert_file.empty()) return "";
    return required ? " (STARTTLS required)" : " (STARTTLS offered)";
  };
  spdlog::info("inbound SMTP listening on {} as {}{}", inbound_at, config.inbound.hostname,
               starttls(config.inbound.require_tls));
  spdlog::info("outbound SMTP listening on {}, relaying to {}{}", outbound_at,
               config.outbound_next_hop.str(), starttls(config.outbound_require_tls));
  for (const auto& l : tls_listeners) log_certificate(l, clock.now());
  // The listeners, as the status line and `node list` say them.
  const auto listeners = fmt::format("inbound SMTP {}, outbound SMTP {}, {} {}", inbound_at,
                                     outbound_at, admin_name, admin_at);
  lease.describe({.version = version_and_commit(), .serving = listeners, .started_at = clock.now()},
                 3 * config.sync_check);
  SyncScheduler scheduler(syncs, clock, metrics, lease, config.sync_check, sync_gauges);

  // Every listener is bound: systemd (Type=notify) may start what comes after us.
  serving = "serving: " + listeners;
  service_manager::ready(serving);
  // With WatchdogSec=, systemd restarts a service that stops saying it is alive: said from the
  // I/O thread, so a stuck event loop (no SMTP served) is restarted.
  if (const auto every = service_manager::watchdog_interval()) {
    boost::asio::co_spawn(io,
                          rounds(watchdog_timer, *every / 2,
                                 []() -> boost::asio::awaitable<void> {
                                   service_manager::watchdog();
                                   co_return;
                                 }),
                          boost::asio::detached);
  }

  io.run();
  // What the last messages left, and what waits for the database: once more. What still cannot
  // be written is lost with the process: said, not silently.
  log_writes.post([&] {
    flush_mail_log();
    mail_log_writes.lost(mail_log.pending());
  });
  discovery_writes.post([&] {
    flush_activity();
    activity_writes.lost(activity.pending());
    discovery_counts.flush();
    discovery_counts.writes().lost(discovery_counts.pending());
  });
  maintenance_store.stop();  // a store call under way finishes; its run does not resume
  maintenance_store.join();
  scheduler.stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace mailroster::app
