#include "app/config.hpp"

#include <gtest/gtest.h>

#include "app/database.hpp"

namespace mailroster::app {
namespace {

TEST(Config, EmptyTextGivesDefaults) {
  auto c = parse_config("", "test.toml").value();
  EXPECT_EQ(c.database_path, "mailroster.db");
  EXPECT_EQ(c.admin_listen.str(), "127.0.0.1:8080");
  EXPECT_EQ(c.log_level, "info");
}

TEST(Config, NoFileGivesDefaults) {
  auto c = load_config("").value();
  EXPECT_EQ(c.database_path, "mailroster.db");
}

TEST(Config, ReadsEveryKey) {
  auto c = parse_config(R"(
[database]
path = "/var/lib/mailroster/state.db"
[admin]
listen = "127.0.0.1:0"
[log]
level = "debug"
)",
                        "test.toml")
               .value();
  EXPECT_EQ(c.database_path, "/var/lib/mailroster/state.db");
  EXPECT_EQ(c.admin_listen.port, 0);
  EXPECT_EQ(c.log_level, "debug");
}

struct BadConfig {
  const char* text;
  const char* message;
};

class ConfigRejects : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigRejects, NamingKeyAndLine) {
  auto c = parse_config(GetParam().text, "test.toml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    StrictSchema, ConfigRejects,
    ::testing::Values(
        BadConfig{"[admin]\nlisen = \"x\"\n", "test.toml:2: unknown key 'admin.lisen'"},
        BadConfig{"[smtpd]\nport = 25\n", "test.toml:1: unknown section 'smtpd'"},
        BadConfig{"\n[admin]\nlisten = 8080\n", "test.toml:3: admin.listen must be a string"},
        BadConfig{"[admin]\nlisten = \"127.0.0.1:99999\"\n",
                  "test.toml:2: admin.listen bad port '99999' in '127.0.0.1:99999'"},
        BadConfig{"[log]\nlevel = \"loud\"\n",
                  "test.toml:2: log.level unknown level 'loud' (trace, debug, info, warn, error, "
                  "critical, off)"},
        BadConfig{"[database]\npath = \"\"\n", "test.toml:2: database.path must not be empty"},
        BadConfig{"database = 1\n", "test.toml:1: 'database' must be a table"},
        BadConfig{"[admin\n",
                  "test.toml:1: Error while parsing table header: expected ']', saw '\\n'"}),
    [](const auto& param) { return "case" + std::to_string(param.index); });

TEST(Config, PostgreSQLByUrlNotBesideAPath) {
  auto c = parse_config("[database]\nurl = \"postgresql://mr@127.0.0.1/mail\"\n", "t.toml").value();
  EXPECT_EQ(c.database_url, "postgresql://mr@127.0.0.1/mail");
  EXPECT_EQ(c.key_file(), "mailroster.key");  // no SQLite file to put it beside
  EXPECT_EQ(describe_database(c), "PostgreSQL user=mr dbname=mail host=127.0.0.1");
  auto both = parse_config("[database]\npath = \"x.db\"\nurl = \"postgresql://h/d\"\n", "t.toml");
  ASSERT_FALSE(both);
  EXPECT_NE(both.error().message.find("t.toml:3"), std::string::npos) << both.error().message;
  EXPECT_NE(both.error().message.find("keep one"), std::string::npos);
  auto not_pg = parse_config("[database]\nurl = \"mysql://h/d\"\n", "t.toml");
  ASSERT_FALSE(not_pg);
  EXPECT_NE(not_pg.error().message.find("database.url must be a PostgreSQL URL"), std::string::npos)
      << not_pg.error().message;
  // --db takes either, and the last one given wins.
  c.set_database("/tmp/state.db");
  EXPECT_EQ(describe_database(c), "SQLite /tmp/state.db");
  c.set_database("host=db.example dbname=mail password=s3cret");
  EXPECT_EQ(describe_database(c), "PostgreSQL password=*** dbname=mail host=db.example");
  c.set_database("postgresql://mr:s3cret@db.example:5433/mail?sslmode=require");
  const auto shown = describe_database(c);
  EXPECT_EQ(shown.find("s3cret"), std::string::npos) << shown;
  EXPECT_NE(shown.find("password=***"), std::string::npos) << shown;
  EXPECT_NE(shown.find("port=5433"), std::string::npos) << shown;
}

TEST(Config, ReadsTheGatewaySections) {
  auto c = parse_config(R"(
[smtp]
inbound_listen = "127.0.0.1:0"
hostname = "MX.Example.COM"
postmaster = "Hostmaster@Example.com"
max_message_size = 1048576
idle_timeout = "90s"
max_errors = 5
strict_envelopes = true
shutdown_grace = "2m"
ipv6_prefix = 56
[outbound]
listen = "127.0.0.1:2600"
next_hop = "smarthost.example:2525"
[verify]
sender = "probe@mx.example.com"
negative_ttl = "5m"
positive_ttl = "2d"
[relay]
command_timeout = "30s"
[scoring]
spam_threshold = 7
rspamd = "127.0.0.1"
rspamd_timeout = "3s"
rspamd_failure = "builtin"
mark_outbound = false
[reports]
relay = "127.0.0.1:2526"
[maintenance]
interval = "1h"
)",
                        "test.toml")
               .value();
  EXPECT_EQ(c.inbound.ipv6_prefix, 56);
  EXPECT_EQ(parse_config("", "test.toml").value().inbound.ipv6_prefix, 64);
  EXPECT_FALSE(parse_config("[smtp]\nipv6_prefix = 16\n", "test.toml"));
  EXPECT_FALSE(parse_config("[harvest]\nipv6_prefix = 64\n", "test.toml"));  // [smtp]'s now
  EXPECT_EQ(parse_config("", "test.toml").value().recipient_delimiter, "+");
  EXPECT_EQ(parse_config("[smtp]\nrecipient_delimiter = \"+-\"\n", "t").value().recipient_delimiter,
            "+-");
  EXPECT_EQ(parse_config("[smtp]\nrecipient_delimiter = \"\"\n", "t").value().recipient_delimiter,
            "");
  for (const auto* bad : {"\".\"", "\"x\"", "\"@\"", "\"+-+-+-+-+\""}) {
    EXPECT_FALSE(parse_config(std::string("[smtp]\nrecipient_delimiter = ") + bad + "\n", "t"))
        << bad;
  }
  EXPECT_EQ(c.inbound.hostname, "mx.example.com");
  EXPECT_EQ(c.postmaster, "Hostmaster@example.com");
  EXPECT_EQ(parse_config("", "test.toml").value().postmaster, "");
  EXPECT_EQ(c.inbound.limits.message_size, 1048576u);
  EXPECT_EQ(c.inbound.idle_timeout, std::chrono::seconds(90));
  EXPECT_EQ(c.inbound.max_errors, 5u);
  EXPECT_EQ(parse_config("", "test.toml").value().inbound.max_errors, 20u);
  EXPECT_TRUE(c.inbound.strict_envelopes);
  EXPECT_FALSE(parse_config("", "test.toml").value().inbound.strict_envelopes);
  EXPECT_EQ(c.shutdown_grace, std::chrono::minutes(2));
  EXPECT_EQ(parse_config("", "test.toml").value().shutdown_grace, std::chrono::seconds(60));
  EXPECT_EQ(c.outbound_next_hop.str(), "smarthost.example:2525");
  const auto two = parse_config(
                       "[outbound]\nnext_hop = \"a.example, b.example:2525\"\n"
                       "[reports]\nrelay = \"127.0.0.1:2526 127.0.0.1:2527\"\n"
                       "[relay]\nserver_retry = \"5m\"\n",
                       "test.toml")
                       .value();
  EXPECT_EQ(two.outbound_next_hop.str(), "a.example:25, b.example:2525");
  EXPECT_EQ(two.maintenance.relay.hosts.size(), 2u);
  EXPECT_EQ(two.relay.server_retry, std::chrono::minutes(5));
  EXPECT_EQ(parse_config("", "test.toml").value().relay.server_retry, std::chrono::seconds(60));
  EXPECT_FALSE(parse_config("[outbound]\nnext_hop = \"a.example, a.example\"\n", "test.toml"));
  EXPECT_EQ(c.verify.sender, "probe@mx.example.com");
  EXPECT_EQ(c.verify.negative_ttl, std::chrono::minutes(5));
  EXPECT_EQ(c.verify.positive_ttl, std::chrono::hours(48));
  EXPECT_EQ(c.relay.command_timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.relay.helo_name, "mx.example.com");
  EXPECT_EQ(c.spam_threshold, 7.0);
  EXPECT_TRUE(c.use_rspamd);
  EXPECT_EQ(c.rspamd.server.str(), "127.0.0.1:11333");  // rspamd's normal worker by default
  EXPECT_EQ(c.rspamd.timeout, std::chrono::seconds(3));
  EXPECT_EQ(c.rspamd.on_failure, gateway::RspamdFailure::builtin);
  EXPECT_FALSE(c.mark_outbound);
  EXPECT_TRUE(parse_config("", "test.toml").value().mark_outbound);
  const auto defaults = parse_config("", "test.toml").value();
  EXPECT_FALSE(defaults.use_rspamd);  // the built-in checks unless rspamd is named
  EXPECT_EQ(defaults.admin_public_url, "");
  EXPECT_EQ(parse_config("[admin]\npublic_url = \"https://gw.example.com/\"\n", "test.toml")
                .value()
                .admin_public_url,
            "https://gw.example.com/");
  EXPECT_EQ(defaults.rspamd.on_failure, gateway::RspamdFailure::defer);
  EXPECT_FALSE(parse_config("[scoring]\nrspamd = \"\"\n", "test.toml").value().use_rspamd);
  EXPECT_EQ(c.maintenance.relay.hosts.at(0).port, 2526);
  EXPECT_EQ(c.maintenance.from, "mailroster@mx.example.com");
  EXPECT_EQ(c.maintenance.interval, std::chrono::hours(1));
}

TEST(Config, RejectsBadGatewayValues) {
  for (const char* bad :
       {"[smtp]\nmax_recipients = 10\n", "[smtp]\nmax_command_line = 100\n",
        "[smtp]\nidle_timeout = \"soon\"\n", "[smtp]\nidle_timeout = 5\n",
        "[smtp]\ntls_cert = \"c.pem\"\n", "[verify]\nsender = \"not mail\"\n",
        "[outbound]\nnext_hop = \"host:0\"\n", "[scoring]\nspam_threshold = -1\n",
        "[reports]\nfrom = \"x\"\n", "[maintenance]\nevery = \"1h\"\n",
        "[smtp]\npostmaster = \"postmaster\"\n", "[scoring]\nrspamd = \"host:x\"\n",
        "[scoring]\nrspamd = 11333\n", "[scoring]\nrspamd_failure = \"accept\"\n",
        "[scoring]\nrspamd_timeout = \"0s\"\n", "[smtp]\nshutdown_grace = 60\n",
        "[admin]\ntls_cert = \"c.pem\"\n", "[admin]\ntls_key = \"k.pem\"\n",
        "[smtp]\nmax_errors = 0\n"}) {
    EXPECT_FALSE(parse_config(bad, "test.toml")) << bad;
  }
}

TEST(Config, ProxyProtocolPerListenerNeedsTheBalancers) {
  auto c = parse_config(R"(
[smtp]
proxy_protocol = true
proxy_from = ["10.0.0.5", "2001:db8::/32"]
[outbound]
proxy_protocol = true
proxy_from = ["192.0.2.0/24"]
)",
                        "test.toml")
               .value();
  EXPECT_TRUE(c.inbound.proxy.enabled);
  ASSERT_EQ(c.inbound.proxy.from.size(), 2u);
  EXPECT_EQ(c.inbound.proxy.from[1].str(), "2001:db8::/32");
  EXPECT_TRUE(c.outbound_proxy.enabled);
  EXPECT_EQ(c.outbound_proxy.from.at(0).str(), "192.0.2.0/24");
  const auto defaults = parse_config("", "test.toml").value();
  EXPECT_FALSE(defaults.inbound.proxy.enabled);
  EXPECT_FALSE(defaults.outbound_proxy.enabled);

  const auto none = parse_config("[outbound]\nproxy_protocol = true\n", "test.toml");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message,
            "test.toml: outbound.proxy_protocol needs proxy_from: the load balancers' addresses");
  EXPECT_EQ(none.error().field, "outbound.proxy_from");
  for (const char* bad :
       {"[smtp]\nproxy_protocol = 1\n", "[smtp]\nproxy_from = \"10.0.0.5\"\n",
        "[smtp]\nproxy_from = [5]\n", "[smtp]\nproxy_from = [\"10.0.0.5/8\"]\n",
        "[outbound]\nproxy_from = [\"::/0\"]\n", "[admin]\ntrusted_proxies = [\"0.0.0.0/0\"]\n"}) {
    EXPECT_FALSE(parse_config(bad, "test.toml")) << bad;
  }
}

// Senders the harvest guard leaves alone: networks, reloadable; not the whole Internet.
TEST(Config, HarvestExemptNetworks) {
  const auto c =
      parse_config("[harvest]\nexempt = [\"192.0.2.0/24\", \"2001:db8::1\"]\n", "test.toml")
          .value();
  ASSERT_EQ(c.harvest.exempt.size(), 2u);
  EXPECT_EQ(c.harvest.exempt[1].str(), "2001:db8::1/128");
  EXPECT_TRUE(parse_config("", "test.toml").value().harvest.exempt.empty());
  for (const char* bad :
       {"[harvest]\nexempt = [\"0.0.0.0/0\"]\n", "[harvest]\nexempt = \"10.0.0.5\"\n",
        "[harvest]\nexempt = [\"192.0.2.1/24\"]\n"}) {
    EXPECT_FALSE(parse_config(bad, "test.toml")) << bad;
  }
}

TEST(Config, RequiredTlsPerListenerNeedsTheCertificate) {
  const auto c = parse_config(
                     "[smtp]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n"
                     "[outbound]\nrequire_tls = true\n",
                     "test.toml")
                     .value();
  EXPECT_FALSE(c.inbound.require_tls);
  EXPECT_TRUE(c.outbound_require_tls);
  EXPECT_TRUE(
      parse_config("[smtp]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\nrequire_tls = true\n",
                   "test.toml")
          .value()
          .inbound.require_tls);
  for (const char* section : {"smtp", "outbound"}) {
    const auto none =
        parse_config("[" + std::string(section) + "]\nrequire_tls = true\n", "test.toml");
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().message, "test.toml: " + std::string(section) +
                                        ".require_tls needs smtp.tls_cert and smtp.tls_key");
    EXPECT_EQ(none.error().field, std::string(section) + ".require_tls");
  }
  EXPECT_FALSE(parse_config("[outbound]\nrequire_tls = \"yes\"\n", "test.toml"));
}

TEST(Config, AuditRetentionIsOffUnlessSetAndADayAtLeast) {
  EXPECT_FALSE(parse_config("", "t.toml").value().maintenance.audit_retention);
  EXPECT_FALSE(
      parse_config("[audit]\nretention = \"\"\n", "t.toml").value().maintenance.audit_retention);
  EXPECT_EQ(
      parse_config("[audit]\nretention = \"400d\"\n", "t.toml").value().maintenance.audit_retention,
      std::chrono::hours(24 * 400));
  const auto short_one = parse_config("[audit]\nretention = \"23h\"\n", "t.toml");
  ASSERT_FALSE(short_one);
  EXPECT_EQ(short_one.error().message, "t.toml:2: audit.retention must be at least 1d");
  EXPECT_FALSE(parse_config("[audit]\nretention = 400\n", "t.toml"));
}

TEST(Config, MissingFileIsAnError) {
  auto c = load_config("/nonexistent/mailroster.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("/nonexistent/mailroster.toml"), std::string::npos);
}

}  // namespace
// SIGHUP: which keys changed between two files (added, removed, new value; the same value
// written otherwise is no change), and which of them serve applies again.
TEST(Config, ChangedKeysAndWhatAReloadApplies) {
  const auto before = parse_config(
                          "[smtp]\nmax_recipients = 100\nhostname = \"mx.example\"\n"
                          "[harvest]\nwindow = \"10m\"\n[log]\nlevel = \"info\"\n",
                          "before")
                          .value();
  const auto after = parse_config(
                         "[log]\nlevel = \"info\"  # the same\n[smtp]\nmax_recipients = 500\n"
                         "hostname = \"mx.example\"\ninbound_listen = \"127.0.0.1:25\"\n"
                         "[verify]\nnegative_ttl = \"5m\"\n",
                         "after")
                         .value();
  EXPECT_EQ(changed_keys(before, after),
            (std::vector<std::string>{"smtp.inbound_listen", "smtp.max_recipients",
                                      "harvest.window", "verify.negative_ttl"}));
  EXPECT_TRUE(changed_keys(before, before).empty());
  EXPECT_TRUE(changed_keys(Config{}, parse_config("", "defaults").value()).empty());
  for (const auto* key :
       {"smtp.max_recipients", "harvest.window", "verify.negative_ttl", "log.level",
        "relay.command_timeout", "relay.server_retry", "relay.tls", "relay.tls_ca_file",
        "smtp.shutdown_grace", "smtp.tls_cert", "admin.tls_key", "smtp.postmaster",
        "outbound.next_hop", "reports.relay", "scoring.spam_threshold", "scoring.rspamd",
        "scoring.mark_outbound", "smtp.ipv6_prefix"}) {
    EXPECT_TRUE(reloadable(key)) << key;
  }
  for (const auto* key : {"smtp.inbound_listen", "smtp.hostname", "database.path", "admin.listen",
                          "reports.from", "maintenance.interval"}) {
    EXPECT_FALSE(reloadable(key)) << key;
  }
}

}  // namespace mailroster::app
