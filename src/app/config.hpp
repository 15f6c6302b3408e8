// mailroster's configuration: one TOML file, every key optional with a default, so `serve`
// starts with no file at all. Unknown keys and bad values are errors that name the key and
// line (`mailroster check-config` prints "configuration OK" otherwise). serve rereads the
// file on SIGHUP and applies the keys reloadable() names; the others wait for a restart.
//
//   [database]
//   path = "mailroster.db"          # SQLite file (WAL); created and migrated at start
//   url = ""                        # or PostgreSQL, shared by several gateway nodes:
//                                   # "postgresql://mailroster@db.example/mailroster"
//                                   # (password in PGPASSWORD or ~/.pgpass, not here)
//
//   [admin]
//   listen = "127.0.0.1:8080"       # admin HTTP (healthz, metrics, API, web UI); 0 = any port
//   tls_cert = ""                   # PEM files; HTTPS (and Secure session cookies) when set
//   tls_key = ""
//   public_url = ""                 # where users reach the web UI, for mailed password links
//                                   # ("https://gw.example.com"); "": the listen address, unless
//                                   # it is a wildcard (then no link can be mailed); an
//                                   # https:// one makes the session cookie Secure
//   trusted_proxies = []            # reverse proxies in front ("127.0.0.1", "10.0.0.0/24"):
//                                   # their X-Forwarded-For names the client (login limit)
//
//   [log]
//   level = "info"                  # trace, debug, info, warn, error, critical, off
//
//   [smtp]                          # the inbound listener (mail for the companies' domains)
//   inbound_listen = "127.0.0.1:2525"
//   hostname = "<this host's name>" # in the greeting and Received headers
//   max_message_size = 26214400     # octets (552 5.3.4 above)
//   max_recipients = 100            # per message (452 4.5.3 above), RFC 5321 minimum
//   max_command_line = 512          # octets incl. CRLF, at least 512 (RFC 5321 4.5.3.1.4)
//   max_text_line = 1000            # octets incl. CRLF, at least 1000 (RFC 5321 4.5.3.1.6)
//   idle_timeout = "5m"             # RFC 5321 4.5.3.2.7
//   max_connections = 20000
//   max_connections_per_client = 50  # per client network (ipv6_prefix)
//   ipv6_prefix = 64                # an IPv6 client counts as its network this wide (32-128)
//                                   # in max_connections_per_client and the harvest guard: a
//                                   # site may send from any address of its /64; 128: each
//   max_errors = 20                 # refused commands and recipients (unknown, relay
//                                   # denied) before the session is dropped (421 4.7.0)
//   strict_envelopes = false        # true: MAIL FROM/RCPT TO only as <address> (501 else);
//                                   # false takes "MAIL FROM:a@b" too, as Postfix does
//   tls_cert = ""                   # PEM files; STARTTLS is offered when both are set
//   tls_key = ""
//   require_tls = false             # MAIL only after STARTTLS (530 5.7.0 before); needs the
//                                   # certificate. Not for a public MX: senders without TLS
//   postmaster = ""                 # where RCPT TO:<postmaster> (no domain) goes, an address
//                                   # in a company domain; unset: 550 5.1.1 saying so
//   recipient_delimiter = "+"       # sub-addressing: alice+news@ is alice's mail, counted as
//                                   # alice (also as a sender); "+-": either; "": none
//   shutdown_grace = "60s"          # on SIGTERM: transactions under way may finish this long
//                                   # (new connections refused, idle sessions told 421 4.3.2)
//   proxy_protocol = false          # behind a TCP load balancer: every connection begins with
//                                   # a PROXY header (v1 or v2), whose client is the session's
//   proxy_from = []                 # the balancers' addresses ("10.0.0.5", "10.1.0.0/24"),
//                                   # needed with proxy_protocol; others are closed at once
//
//   [harvest]                       # directory-harvest guard, per client network
//   slow_after = 10                 # unknown recipients in the window before RCPTs wait
//   refuse_after = 30               # ... before 421 and a block
//   window = "10m"
//   delay = "2s"
//   block = "10m"
//   exempt = []                     # networks never slowed or refused: a partner's or a mail
//                                   # provider's servers, which send to a large company's
//                                   # typos and departed staff all day ("192.0.2.0/24")
//
//   [outbound]                      # mail from the companies' own servers (their relay networks)
//   listen = "127.0.0.1:2587"       # same limits, hostname and TLS as [smtp]
//   next_hop = "127.0.0.1:25"       # smarthost that delivers outbound mail ("a:25, b:25":
//                                   # tried in order)
//   proxy_protocol = false          # as [smtp], for this listener
//   proxy_from = []
//   require_tls = false             # as [smtp]: the companies' servers must use STARTTLS
//
//   [verify]                        # recipient callouts; see src/verify/verifier.hpp
//   sender = ""                     # probe sender, "" = the null sender <>
//   positive_ttl = "7d"
//   positive_refresh = "12h"
//   negative_ttl = "15m"
//   catch_all_ttl = "1d"
//   max_probes_per_destination = 8
//
//   [relay]                         # connections to the delivery destinations
//   connect_timeout = "10s"
//   command_timeout = "60s"
//   data_timeout = "5m"
//   max_idle_per_destination = 8
//   server_retry = "60s"            # a destination's server that failed is tried last this long
//   tls = "may"                     # STARTTLS to destinations and the next hop: none | may
//                                   # (when offered) | encrypt (required) | verify (required,
//                                   # certificate checked against tls_ca_file and the host)
//   tls_ca_file = ""                # verify: CAs to trust (PEM); "": the system's
//
//   [scoring]                       # what happens to a message after DATA (gateway/scorer.hpp)
//   spam_threshold = 5.0            # built-in checks: at or above is spam (550 5.7.1)
//   rspamd = ""                     # "127.0.0.1:11333": ask this rspamd (its normal worker)
//                                   # instead: reject 550, soft reject/greylist 451, add header/
//                                   # rewrite subject relayed with X-Spam headers, not counted
//   rspamd_timeout = "15s"          # per message: connect, scan and answer
//   rspamd_failure = "defer"        # when rspamd cannot be asked: defer (451 4.3.0, the sender
//                                   # retries) | builtin (the built-in checks decide)
//   mark_outbound = true            # outbound mail rspamd marks goes out with X-Spam fields and
//                                   # its Subject; false: as it came (still not counted)
//
//   [reports]                       # weekly SMTP Discovery reports (Thursdays, UTC)
//   relay = "127.0.0.1:25"          # SMTP relay the reports are submitted to (several: in order)
//   from = "mailroster@<hostname>"
//
//   [maintenance]
//   interval = "10m"                # how often serve runs expiry and reports
//
//   [audit]
//   retention = ""                  # "400d": events older are removed by maintenance runs;
//                                   # "" (the default): the audit trail is kept for ever
//
//   [mail_log]                      # what happened to each recipient (`mailroster mail-log`)
//   enabled = true                  # false: nothing more is written (what is kept stays
//                                   # until its retention ends)
//   retention = "7d"                # entries older are removed by maintenance runs (>= 1h)
//   sync_check = "30s"              # how often serve looks for due directory syncs
//
//   [secrets]
//   key_file = "<database path>.key"  # libsodium key sealing LDAP/Azure secrets (0600, created)
//
// Durations are a number with a unit: s, m, h or d.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/network.hpp"
#include "gateway/scorer.hpp"
#include "reports/maintenance.hpp"
#include "smtp/client.hpp"
#include "smtp/server.hpp"
#include "verify/harvest_guard.hpp"
#include "verify/verifier.hpp"

namespace mailroster::app {

struct Config {
  std::string database_path = "mailroster.db";
  std::string database_url;  // PostgreSQL; when set, database_path is not used
  core::Endpoint admin_listen{"127.0.0.1", 8080};
  std::string admin_tls_cert;
  std::string admin_tls_key;
  std::string admin_public_url;
  std::vector<core::Cidr> admin_trusted_proxies;  // admin::HttpServerSettings::trusted_proxies
  std::string log_level = "info";
  smtp::ServerSettings inbound = default_inbound();
  std::string postmaster;  // RFC 5321 4.5.1's <postmaster> is relayed there; "": none
  std::string recipient_delimiter = "+";    // gateway::InboundSettings::recipient_delimiter
  std::chrono::seconds shutdown_grace{60};  // serve's drain on SIGTERM (smtp::Server::drain)
  core::Endpoint outbound_listen{"127.0.0.1", 2587};
  core::Destination outbound_next_hop{core::Endpoint{"127.0.0.1", 25}};
  smtp::ProxySettings outbound_proxy;
  bool outbound_require_tls = false;  // [outbound] require_tls ([smtp]'s is inbound.require_tls)
  verify::VerifySettings verify;
  verify::HarvestSettings harvest;
  smtp::ClientSettings relay;
  double spam_threshold = 5.0;
  bool use_rspamd = false;
  bool mark_outbound = true;       // gateway::OutboundSettings::mark
  bool mail_log = true;            // [mail_log] enabled (its retention: maintenance's)
  gateway::RspamdSettings rspamd;  // its builtin_threshold is spam_threshold (serve sets it)
  reports::MaintenanceSettings maintenance{.from = ""};  // from: "mailroster@" + hostname
  std::chrono::seconds sync_check{30};
  std::string secret_key_file;  // empty: database_path + ".key" (PostgreSQL: mailroster.key)
  std::string text;             // the TOML it was read from ("" for the defaults)

  std::string key_file() const {
    if (!secret_key_file.empty()) return secret_key_file;
    return database_url.empty() ? database_path + ".key" : "mailroster.key";
  }
  // Where users reach the web UI, for password links: public_url, else the admin listen
  // address on `port` (the one bound), unless that is a wildcard or port 0; "" then.
  std::string admin_base_url(std::uint16_t port) const;
  // --db: a SQLite file, or a PostgreSQL URL or connection string.
  void set_database(const std::string& database);

  static smtp::ServerSettings default_inbound();
};

using core::parse_duration;  // "30s", "5m", "12h", "7d"

// Parses TOML text; source names the file in error messages.
core::Result<Config> parse_config(std::string_view toml_text, std::string_view source);
// Reads the file at path, or returns the defaults when path is empty.
core::Result<Config> load_config(const std::string& path);

// SIGHUP (serve): the keys whose values differ between two configurations read from files,
// as "section.key" (a key added or removed is a change); and whether serve applies a key
// again (limits, timeouts, the harvest guard, callouts, the log level) or reads it at start
// only (listen addresses, the database, the host name, certificate paths, ...).
std::vector<std::string> changed_keys(const Config& before, const Config& after);
bool reloadable(std::string_view key);

}  // namespace mailroster::app
