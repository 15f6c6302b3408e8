#include "app/config.hpp"

#include <toml++/toml.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

#include "store/postgres/postgres_store.hpp"

namespace mailroster::app {
namespace {

using core::Error;
using core::invalid;

// One row per key: where it lives, how a TOML value sets it (an error message or ""), and
// whether serve applies it again on SIGHUP (serve.cpp's reload_config; kReload rows).
struct Key {
  std::string_view section;
  std::string_view name;
  std::function<std::string(const toml::node&, Config&)> set;
  bool reloadable = false;
};
constexpr bool kReload = true;

std::string set_string(const toml::node& n, std::string& out) {
  const auto* v = n.as_string();
  if (!v) return "must be a string";
  out = v->get();
  return "";
}

template <class T>
std::string set_int(const toml::node& n, T& out, std::int64_t min, std::int64_t max) {
  const auto* v = n.as_integer();
  if (!v) return "must be an integer";
  if (v->get() < min || v->get() > max) {
    return "must be between " + std::to_string(min) + " and " + std::to_string(max);
  }
  out = static_cast<T>(v->get());
  return "";
}

template <class Duration>
std::string set_duration(const toml::node& n, Duration& out) {
  std::string text;
  if (auto err = set_string(n, text); !err.empty()) return err + " such as \"30s\" or \"7d\"";
  auto d = parse_duration(text);
  if (!d || d->count() <= 0) return "'" + text + "' is not a duration such as \"30s\" or \"7d\"";
  out = std::chrono::duration_cast<Duration>(*d);
  return "";
}

// An endpoint to listen on (port 0: any free port) or to connect to.
std::string set_endpoint(const toml::node& n, core::Endpoint& out, std::uint16_t default_port,
                         bool listening) {
  std::string text;
  if (auto err = set_string(n, text); !err.empty()) return err;
  auto ep = listening ? core::Endpoint::parse_listen(text, default_port)
                      : core::Endpoint::parse(text, default_port);
  if (!ep) return ep.error().message;
  out = *ep;
  return "";
}

// One server or several, tried in order: "mx1.example, mx2.example:2525".
std::string set_destination(const toml::node& n, core::Destination& out) {
  std::string text;
  if (auto err = set_string(n, text); !err.empty()) return err;
  auto d = core::Destination::parse(text);
  if (!d) return d.error().message;
  out = *std::move(d);
  return "";
}

std::string set_listen(const toml::node& n, core::Endpoint& out, std::uint16_t default_port) {
  return set_endpoint(n, out, default_port, true);
}

std::string set_bool(const toml::node& n, bool& out) {
  const auto* v = n.as_boolean();
  if (!v) return "must be true or false";
  out = v->get();
  return "";
}

// A list of networks: ["10.0.0.5", "2001:db8::/32"].
std::string set_networks(const toml::node& n, std::vector<core::Cidr>& out) {
  const auto* list = n.as_array();
  if (!list) return "must be a list of addresses or networks, such as [\"10.0.0.5\"]";
  std::vector<core::Cidr> networks;
  for (const auto& item : *list) {
    const auto* text = item.as_string();
    if (!text) return "must be a list of strings";
    auto cidr = core::Cidr::parse_trusted(text->get());
    if (!cidr) return "'" + text->get() + "': " + cidr.error().message;
    networks.push_back(*cidr);
  }
  out = std::move(networks);
  return "";
}

// An address setting ("" allowed when allow_empty).
std::string set_address(const toml::node& n, std::string& out, bool allow_empty) {
  std::string text;
  if (auto err = set_string(n, text); !err.empty()) return err;
  if (text.empty() && allow_empty) {
    out.clear();
    return "";
  }
  auto a = core::Address::parse(text);
  if (!a) return a.error().message;
  out = a->str();
  return "";
}

const std::vector<Key>& schema() {
  static const std::vector<Key> keys = {
      {"smtp", "inbound_listen",
       [](const toml::node& n, Config& c) { return set_listen(n, c.inbound.listen, 25); }},
      {"smtp", "hostname",
       [](const toml::node& n, Config& c) {
         std::string text;
         if (auto err = set_string(n, text); !err.empty()) return err;
         auto name = core::parse_domain(text);
         if (!name) return name.error().message;
         c.inbound.hostname = *name;
         return std::string();
       }},
      {"smtp", "recipient_delimiter",
       [](const toml::node& n, Config& c) {
         if (auto err = set_string(n, c.recipient_delimiter); !err.empty()) return err;
         if (c.recipient_delimiter.size() > 8) return std::string("must be at most 8 characters");
         for (const char ch : c.recipient_delimiter) {
           // The symbols a local part may hold unquoted (RFC 5322 atext), but not its dots.
           if (std::string_view("!#$%&'*+-/=?^_`{|}~").find(ch) == std::string_view::npos) {
             return std::string("must be symbols a local part may hold, such as \"+\" or \"+-\"");
           }
         }
         return std::string();
       },
       kReload},
      {"smtp", "postmaster",
       [](const toml::node& n, Config& c) { return set_address(n, c.postmaster, true); }, kReload},
      {"smtp", "max_message_size",
       [](const toml::node& n, Config& c) {
         return set_int(n, c.inbound.limits.message_size, 1024, std::int64_t{1} << 32);
       },
       kReload},
      {"smtp", "max_recipients",
       [](const toml::node& n, Config& c) {
         return set_int(n, c.inbound.limits.recipients, 100, 100000);
       },
       kReload},
      {"smtp", "max_command_line",
       [](const toml::node& n, Config& c) {
         return set_int(n, c.inbound.limits.command_line, 512, 65536);
       },
       kReload},
      {"smtp", "max_text_line",
       [](const toml::node& n, Config& c) {
         return set_int(n, c.inbound.limits.text_line, 1000, 1 << 20);
       },
       kReload},
      {"smtp", "idle_timeout",
       [](const toml::node& n, Config& c) { return set_duration(n, c.inbound.idle_timeout); },
       kReload},
      {"smtp", "max_connections",
       [](const toml::node& n, Config& c) {
         return set_int(n, c.inbound.max_connections, 1, 1000000);
       },
       kReload},
      {"smtp", "max_connections_per_client",
       [](const toml::node& n, Config& c) {
         return set_int(n, c.inbound.max_connections_per_client, 1, 1000000);
       },
       kReload},
      {"smtp", "ipv6_prefix",
       [](const toml::node& n, Config& c) { return set_int(n, c.inbound.ipv6_prefix, 32, 128); },
       kReload},
      {"smtp", "max_errors",
       [](const toml::node& n, Config& c) { return set_int(n, c.inbound.max_errors, 1, 1000); },
       kReload},
      {"smtp", "strict_envelopes",
       [](const toml::node& n, Config& c) { return set_bool(n, c.inbound.strict_envelopes); },
       kReload},
      // The paths; TLS on or off: at a start (serve).
      {"smtp", "tls_cert",
       [](const toml::node& n, Config& c) { return set_string(n, c.inbound.tls_cert_file); },
       kReload},
      // The paths; TLS on or off: at a start (serve).
      {"smtp", "tls_key",
       [](const toml::node& n, Config& c) { return set_string(n, c.inbound.tls_key_file); },
       kReload},
      {"smtp", "require_tls",
       [](const toml::node& n, Config& c) { return set_bool(n, c.inbound.require_tls); }, kReload},
      {"smtp", "shutdown_grace",
       [](const toml::node& n, Config& c) { return set_duration(n, c.shutdown_grace); }, kReload},
      {"smtp", "proxy_protocol",
       [](const toml::node& n, Config& c) { return set_bool(n, c.inbound.proxy.enabled); },
       kReload},
      {"smtp", "proxy_from",
       [](const toml::node& n, Config& c) { return set_networks(n, c.inbound.proxy.from); },
       kReload},
      {"harvest", "slow_after",
       [](const toml::node& n, Config& c) { return set_int(n, c.harvest.slow_after, 1, 1000000); },
       kReload},
      {"harvest", "refuse_after",
       [](const toml::node& n, Config& c) {
         return set_int(n, c.harvest.refuse_after, 1, 1000000);
       },
       kReload},
      {"harvest", "window",
       [](const toml::node& n, Config& c) { return set_duration(n, c.harvest.window); }, kReload},
      {"harvest", "delay",
       [](const toml::node& n, Config& c) { return set_duration(n, c.harvest.delay); }, kReload},
      {"harvest", "block",
       [](const toml::node& n, Config& c) { return set_duration(n, c.harvest.block); }, kReload},
      {"harvest", "exempt",
       [](const toml::node& n, Config& c) { return set_networks(n, c.harvest.exempt); }, kReload},
      {"outbound", "listen",
       [](const toml::node& n, Config& c) { return set_listen(n, c.outbound_listen, 587); }},
      {"outbound", "next_hop",
       [](const toml::node& n, Config& c) { return set_destination(n, c.outbound_next_hop); },
       kReload},
      {"scoring", "mark_outbound",
       [](const toml::node& n, Config& c) { return set_bool(n, c.mark_outbound); }, kReload},
      {"outbound", "require_tls",
       [](const toml::node& n, Config& c) { return set_bool(n, c.outbound_require_tls); }, kReload},
      {"outbound", "proxy_protocol",
       [](const toml::node& n, Config& c) { return set_bool(n, c.outbound_proxy.enabled); },
       kReload},
      {"outbound", "proxy_from",
       [](const toml::node& n, Config& c) { return set_networks(n, c.outbound_proxy.from); },
       kReload},
      {"verify", "sender",
       [](const toml::node& n, Config& c) { return set_address(n, c.verify.sender, true); },
       kReload},
      {"verify", "positive_ttl",
       [](const toml::node& n, Config& c) { return set_duration(n, c.verify.positive_ttl); },
       kReload},
      {"verify", "positive_refresh",
       [](const toml::node& n, Config& c) { return set_duration(n, c.verify.positive_refresh); },
       kReload},
      {"verify", "negative_ttl",
       [](const toml::node& n, Config& c) { return set_duration(n, c.verify.negative_ttl); },
       kReload},
      {"verify", "catch_all_ttl",
       [](const toml::node& n, Config& c) { return set_duration(n, c.verify.catch_all_ttl); },
       kReload},
      {"verify", "max_probes_per_destination",
       [](const toml::node& n, Config& c) {
         return set_int(n, c.verify.max_probes_per_destination, 1, 10000);
       },
       kReload},
      {"relay", "connect_timeout",
       [](const toml::node& n, Config& c) { return set_duration(n, c.relay.connect_timeout); },
       kReload},
      {"relay", "command_timeout",
       [](const toml::node& n, Config& c) { return set_duration(n, c.relay.command_timeout); },
       kReload},
      {"relay", "data_timeout",
       [](const toml::node& n, Config& c) { return set_duration(n, c.relay.data_timeout); },
       kReload},
      {"relay", "server_retry",
       [](const toml::node& n, Config& c) { return set_duration(n, c.relay.server_retry); },
       kReload},
      {"relay", "tls",
       [](const toml::node& n, Config& c) {
         std::string text;
         if (auto err = set_string(n, text); !err.empty()) return err;
         const auto policy = smtp::parse_tls_policy(text);
         if (!policy) return std::string("must be one of none, may, encrypt, verify");
         c.relay.tls = *policy;
         return std::string();
       },
       kReload},
      {"relay", "tls_ca_file",
       [](const toml::node& n, Config& c) { return set_string(n, c.relay.tls_ca_file); }, kReload},
      {"relay", "max_idle_per_destination",
       [](const toml::node& n, Config& c) {
         return set_int(n, c.relay.max_idle_per_destination, 0, 10000);
       },
       kReload},
      {"reports", "relay",
       [](const toml::node& n, Config& c) { return set_destination(n, c.maintenance.relay); },
       kReload},
      {"reports", "from",
       [](const toml::node& n, Config& c) { return set_address(n, c.maintenance.from, false); }},
      {"maintenance", "interval",
       [](const toml::node& n, Config& c) { return set_duration(n, c.maintenance.interval); }},
      {"audit", "retention",
       [](const toml::node& n, Config& c) {
         std::string text;
         if (auto err = set_string(n, text); !err.empty()) return err;
         if (text.empty()) {
           c.maintenance.audit_retention.reset();
           return std::string();
         }
         std::chrono::seconds d{};
         if (auto err = set_duration(n, d); !err.empty()) return err;
         if (d < reports::kMinAuditRetention) return std::string("must be at least 1d");
         c.maintenance.audit_retention = d;
         return std::string();
       }},
      {"mail_log", "enabled",
       [](const toml::node& n, Config& c) { return set_bool(n, c.mail_log); }, kReload},
      {"mail_log", "retention",
       [](const toml::node& n, Config& c) {
         std::chrono::seconds d{};
         if (auto err = set_duration(n, d); !err.empty()) return err;
         if (d < reports::kMinMailLogRetention) return std::string("must be at least 1h");
         c.maintenance.mail_log_retention = d;
         return std::string();
       },
       kReload},
      {"maintenance", "sync_check",
       [](const toml::node& n, Config& c) { return set_duration(n, c.sync_check); }},
      {"secrets", "key_file",
       [](const toml::node& n, Config& c) { return set_string(n, c.secret_key_file); }},
      {"scoring", "spam_threshold",
       [](const toml::node& n, Config& c) {
         if (const auto* i = n.as_integer()) {
           c.spam_threshold = static_cast<double>(i->get());
         } else if (const auto* f = n.as_floating_point()) {
           c.spam_threshold = f->get();
         } else {
           return std::string("must be a number");
         }
         return c.spam_threshold > 0 ? std::string() : std::string("must be positive");
       },
       kReload},
      {"scoring", "rspamd",
       [](const toml::node& n, Config& c) {
         std::string text;
         if (auto err = set_string(n, text); !err.empty()) return err;
         c.use_rspamd = !text.empty();
         return c.use_rspamd ? set_endpoint(n, c.rspamd.server, 11333, false) : std::string();
       },
       kReload},
      {"scoring", "rspamd_timeout",
       [](const toml::node& n, Config& c) { return set_duration(n, c.rspamd.timeout); }, kReload},
      {"scoring", "rspamd_failure",
       [](const toml::node& n, Config& c) {
         std::string text;
         if (auto err = set_string(n, text); !err.empty()) return err;
         if (text == "defer") {
           c.rspamd.on_failure = gateway::RspamdFailure::defer;
         } else if (text == "builtin") {
           c.rspamd.on_failure = gateway::RspamdFailure::builtin;
         } else {
           return std::string("must be defer or builtin");
         }
         return std::string();
       },
       kReload},
      {"database", "path",
       [](const toml::node& n, Config& c) {
         auto err = set_string(n, c.database_path);
         if (err.empty() && c.database_path.empty()) return std::string("must not be empty");
         return err;
       }},
      {"database", "url",
       [](const toml::node& n, Config& c) {
         auto err = set_string(n, c.database_url);
         if (err.empty() && !store::postgres::is_postgres_url(c.database_url)) {
           return std::string(
               "must be a PostgreSQL URL (postgresql://...) or connection string (host=...)");
         }
         return err;
       }},
      {"admin", "listen",
       [](const toml::node& n, Config& c) { return set_listen(n, c.admin_listen, 8080); }},
      // The paths; TLS on or off: at a start (serve).
      {"admin", "tls_cert",
       [](const toml::node& n, Config& c) { return set_string(n, c.admin_tls_cert); },
       kReload},
      {"admin", "trusted_proxies",
       [](const toml::node& n, Config& c) { return set_networks(n, c.admin_trusted_proxies); }},
      {"admin", "public_url",
       [](const toml::node& n, Config& c) {
         if (auto err = set_string(n, c.admin_public_url); !err.empty()) return err;
         const auto& u = c.admin_public_url;
         if (!u.empty() && u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0) {
           return std::string("must be an http:// or https:// URL");
         }
         return std::string();
       }},
      // The paths; TLS on or off: at a start (serve).
      {"admin", "tls_key",
       [](const toml::node& n, Config& c) { return set_string(n, c.admin_tls_key); },
       kReload},
      {"log", "level",
       [](const toml::node& n, Config& c) {
         if (auto err = set_string(n, c.log_level); !err.empty()) return err;
         for (auto level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
           if (c.log_level == level) return std::string();
         }
         return "unknown level '" + c.log_level +
                "' (trace, debug, info, warn, error, critical, off)";
       },
       kReload},
  };
  return keys;
}

std::string where(std::string_view source, const toml::node& n) {
  std::ostringstream out;
  out << source;
  if (n.source().begin.line > 0) out << ":" << n.source().begin.line;
  return out.str();
}

}  // namespace

std::string Config::admin_base_url(std::uint16_t port) const {
  if (!admin_public_url.empty()) return admin_public_url;
  const auto& host = admin_listen.host;
  if (host.empty() || host == "0.0.0.0" || host == "::" || port == 0) return "";
  return std::string(admin_tls_cert.empty() ? "http://" : "https://") +
         (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

smtp::ServerSettings Config::default_inbound() {
  smtp::ServerSettings s;
  s.name = "inbound";
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) {
    if (auto name = core::parse_domain(host)) s.hostname = *name;
  }
  return s;
}

core::Result<Config> parse_config(std::string_view toml_text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream out;
    out << source << ":" << e.source().begin.line << ": " << e.description();
    return invalid(out.str());
  }

  Config config;
  config.text = std::string(toml_text);
  for (auto&& [section_key, section_node] : root) {
    const auto section = section_key.str();
    const auto* table = section_node.as_table();
    bool known_section = false;
    for (const auto& k : schema()) known_section |= k.section == section;
    if (!known_section) {
      return invalid(where(source, section_node) + ": unknown section '" + std::string(section) +
                     "'");
    }
    if (!table) {
      return invalid(where(source, section_node) + ": '" + std::string(section) +
                     "' must be a table");
    }
    for (auto&& [key, value] : *table) {
      const std::string full = std::string(section) + "." + std::string(key.str());
      const Key* entry = nullptr;
      for (const auto& k : schema()) {
        if (k.section == section && k.name == key.str()) entry = &k;
      }
      if (!entry) return invalid(where(source, value) + ": unknown key '" + full + "'", full);
      if (auto err = entry->set(value, config); !err.empty()) {
        return invalid(where(source, value) + ": " + full + " " + err, full);
      }
    }
  }
  // Relay connections greet with the same name the listener uses.
  config.relay.helo_name = config.inbound.hostname;
  config.maintenance.hostname = config.inbound.hostname;
  if (config.maintenance.from.empty()) {
    config.maintenance.from = "mailroster@" + config.inbound.hostname;
  }
  if (config.inbound.tls_cert_file.empty() != config.inbound.tls_key_file.empty()) {
    return invalid(std::string(source) + ": smtp.tls_cert and smtp.tls_key must be set together");
  }
  for (const auto& [section, required] : {std::pair{"smtp", config.inbound.require_tls},
                                          std::pair{"outbound", config.outbound_require_tls}}) {
    if (required && config.inbound.tls_cert_file.empty()) {
      return invalid(std::string(source) + ": " + section +
                         ".require_tls needs smtp.tls_cert and smtp.tls_key",
                     std::string(section) + ".require_tls");
    }
  }
  if (config.admin_tls_cert.empty() != config.admin_tls_key.empty()) {
    return invalid(std::string(source) + ": admin.tls_cert and admin.tls_key must be set together");
  }
  for (const auto& [section, proxy] :
       {std::pair{"smtp", &config.inbound.proxy}, std::pair{"outbound", &config.outbound_proxy}}) {
    if (proxy->enabled && proxy->from.empty()) {
      const auto key = std::string(section) + ".proxy_from";
      return invalid(std::string(source) + ": " + section +
                         ".proxy_protocol needs proxy_from: the load balancers' addresses",
                     key);
    }
  }
  if (root["database"]["path"] && root["database"]["url"]) {
    return invalid(where(source, *root["database"]["url"].node()) +
                       ": database.path (SQLite) and database.url (PostgreSQL) are both set; "
                       "keep one",
                   "database.url");
  }
  return config;
}

bool reloadable(std::string_view key) {
  const auto dot = key.find('.');
  if (dot == std::string_view::npos) return false;
  for (const auto& k : schema()) {
    if (k.section == key.substr(0, dot) && k.name == key.substr(dot + 1)) return k.reloadable;
  }
  return false;
}

std::vector<std::string> changed_keys(const Config& before, const Config& after) {
  const auto a = toml::parse(std::string_view(before.text), std::string_view("before"));
  const auto b = toml::parse(std::string_view(after.text), std::string_view("after"));
  std::vector<std::string> out;
  for (const auto& k : schema()) {
    const auto was = a[k.section][k.name];
    const auto is = b[k.section][k.name];
    if (static_cast<bool>(was) != static_cast<bool>(is) || (was && was != is)) {
      out.push_back(std::string(k.section) + "." + std::string(k.name));
    }
  }
  return out;
}

void Config::set_database(const std::string& database) {
  if (store::postgres::is_postgres_url(database)) {
    database_url = database;
  } else {
    database_path = database;
    database_url.clear();
  }
}

core::Result<Config> load_config(const std::string& path) {
  if (path.empty()) return parse_config("", "defaults");
  std::ifstream in(path, std::ios::binary);
  if (!in) return invalid("cannot read configuration file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace mailroster::app
