#include "app/cli.hpp"

#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <unordered_map>

#include "admin/api.hpp"
#include "admin/auth.hpp"
#include "admin/http_client.hpp"
#include "app/config.hpp"
#include "app/domain_check.hpp"
#include "app/lease.hpp"
#include "app/plan_output.hpp"
#include "app/serve.hpp"
#include "app/service_manager.hpp"
#include "app/version.hpp"
#include "directory/csv/csv_export.hpp"
#include "directory/csv/csv_import.hpp"
#include "directory/graph/graph_directory.hpp"
#include "directory/ldap/ldap_directory.hpp"
#include "directory/sync_apply.hpp"
#include "directory/sync_service.hpp"
#include "gateway/lookups.hpp"
#include "gateway/recipient_rule.hpp"
#include "lifecycle/discovery_service.hpp"
#include "lifecycle/user_actions.hpp"
#include "reports/maintenance.hpp"
#include "reports/weekly_report.hpp"
#include "smtp/client.hpp"
#include "store/sqlite/sqlite_db.hpp"
#include "verify/verifier.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include "app/database.hpp"
#include "core/discovery.hpp"
#include "core/json.hpp"
#include "core/text_table.hpp"

namespace mailroster::app {
namespace {

using core::ErrorCode;
using core::Failure;
using nlohmann::json;

// Rows of text printed as aligned columns.
void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  out << core::format_table(header, rows);
}

std::string who_am_i() {
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_name != nullptr) {
    return pw->pw_name;
  }
  return std::to_string(getuid());
}

core::Address parse_address(const std::string& text) { return core::Address::parse(text).value(); }

// The first line of a stream, without its line ending (LF or CRLF): how passwords and secrets
// are read (never arguments: they would show in `ps`).
std::string first_line(std::istream& in) {
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Option values of each verb group, filled by CLI11.
struct CompanyArgs {
  std::string name;
  std::string tech;
  std::string admin;
  std::vector<std::string> networks;
  bool force = false;
  std::optional<std::string> new_tech;
  std::optional<std::string> new_admin;
  std::optional<std::vector<std::string>> new_networks;
};

struct DomainArgs {
  std::string name;
  std::string company;
  std::string destination;
  bool force = false;
  bool all = false;
};

struct UserArgs {
  std::string address;
  std::string company;
  std::string first_name;
  std::string surname;
  std::string role = "end_user";
  std::string search;
  std::optional<std::string> new_first;
  std::optional<std::string> new_surname;
  std::optional<std::string> new_role;
  std::optional<std::string> new_address;
  std::optional<std::string> role_filter;
  std::optional<std::string> source_filter;
  std::optional<int> no_mail_days;
  std::size_t limit = 0;
  std::string output;  // export: the file ("" or "-": standard output)
  bool bom = false;
  std::vector<std::string> addresses;  // remove
  bool force = false;                  // remove: past the deletion guard
};

struct AliasArgs {
  std::string address;
  std::string user;
  std::string company;
};

struct DiscoveryArgs {
  std::string company;
  std::vector<std::string> assignments;
  std::vector<std::string> addresses;
  std::string first_name;
  std::string surname;
  std::optional<std::string> role;
  std::string user;
  std::string search;
};

struct ImportArgs {
  std::string file;
  std::string company;
  bool dry_run = false;
  bool delete_missing = false;
  bool skip_invalid = false;
  bool force = false;
};

struct SyncArgs {
  std::string company;
  std::vector<std::string> assignments;  // key=value
  bool secret_stdin = false;
  std::string secret_file;
  bool force = false;
  bool full = false;
};

struct LoginArgs {
  std::string email;
  std::string role = "company_admin";
  std::string company;
  bool invite = false;
};

struct MaintainArgs {
  std::string at;
  std::string company;
  bool force = false;  // run without the scheduler lease
};

struct InvalidArgs {
  std::string address;
  std::string company;
  std::string reason = "marked by an administrator";
  std::string search;
  std::string first_name;
  std::string surname;
  std::optional<std::string> role;
};

struct VerifyArgs {
  std::string address;
  std::string domain;
};

struct AuditArgs {
  std::string older_than;  // prune
  std::string company;
  std::size_t limit = 50;
  std::size_t offset = 0;
  std::string object;
  std::string action;
};

struct MailLogArgs {
  std::string company;
  std::string address;
  std::string id;
  std::string result;
  std::string direction;
  std::string since;
  std::string before;
  std::size_t limit = 50;
  std::size_t offset = 0;
};

struct UsageArgs {
  std::string company;
  std::string month;
  std::string from;
  std::string to;
  bool daily = false;
  bool csv = false;
};

// What every verb needs: options shared by all, and the store opened on first use.
struct Context {
  std::string config_path;
  std::string backup_file;  // backup FILE
  std::string db_override;
  bool json_output = false;
  bool serving = false;  // serve, not a command: the store waits as serve's does (open_store)
  std::ostream& out;
  std::ostream& err;

  Config config;
  core::SystemClock system_clock;
  std::optional<core::ManualClock> fixed_clock;  // `maintain --at`, `report preview --at`
  const core::Clock& clock() const {
    return fixed_clock ? static_cast<const core::Clock&>(*fixed_clock) : system_clock;
  }
  std::unique_ptr<store::Store> store_ptr;
  core::Actor actor{"cli:" + who_am_i()};
  CompanyArgs company_args;
  DomainArgs domain_args;
  UserArgs user_args;
  AliasArgs alias_args;
  AuditArgs audit_args;
  MailLogArgs mail_log_args;
  UsageArgs usage_args;
  VerifyArgs verify_args;
  DiscoveryArgs discovery_args;
  InvalidArgs invalid_args;
  MaintainArgs maintain_args;
  ImportArgs import_args;
  SyncArgs sync_args;
  LoginArgs login_args;
  std::unique_ptr<store::SecretBox> secret_box;
  std::unique_ptr<directory::ldap::LdapDirectory> ldap_source;
  std::unique_ptr<directory::graph::GraphDirectory> graph_source;
  std::unique_ptr<directory::SyncService> sync_service;

  // Pins "now" to an ISO-8601 instant, before the store is opened.
  void fix_time(const std::string& at) {
    if (at.empty()) return;
    auto t = core::parse_iso8601(at);
    if (!t) throw Failure(ErrorCode::invalid_argument, "'" + at + "' is not an ISO-8601 time");
    fixed_clock.emplace(*t);
  }

  Context(std::ostream& o, std::ostream& e) : out(o), err(e) {}

  void load() {
    config = load_config(config_path).value();
    if (!db_override.empty()) config.set_database(db_override);
  }

  store::Store& store() {
    if (!store_ptr) {
      store_ptr = open_store(config, clock(), !serving);
    }
    return *store_ptr;
  }

  directory::SyncService& syncs() {
    if (!sync_service) {
      secret_box =
          std::make_unique<store::SecretBox>(store::SecretBox::open_key_file(config.key_file()));
      sync_service = std::make_unique<directory::SyncService>(store(), *secret_box, clock());
      ldap_source = std::make_unique<directory::ldap::LdapDirectory>();
      sync_service->add_source(*ldap_source);
      graph_source = std::make_unique<directory::graph::GraphDirectory>(clock());
      sync_service->add_source(*graph_source);
    }
    return *sync_service;
  }

  core::Company company(const std::string& name) {
    auto c = store().find_company(name);
    if (!c) throw Failure(ErrorCode::not_found, "no company named '" + name + "'", "company");
    return *c;
  }

  // Remembered: a listing of a million users names their few companies a million times.
  const std::string& company_name(core::Id id) {
    auto it = company_names.find(id);
    if (it == company_names.end()) {
      auto c = store().company_by_id(id);
      it = company_names.emplace(id, c ? c->name : std::to_string(id)).first;
    }
    return it->second;
  }
  std::unordered_map<core::Id, std::string> company_names;

  core::Domain domain(const std::string& name) {
    auto d = store().find_domain(name);
    if (!d) throw Failure(ErrorCode::not_found, "no domain named '" + name + "'", "domain");
    return *d;
  }

  // The user of that primary address. An alias's address names its user in the error (never
  // the user itself: `user remove` of an alias must not remove its user).
  core::User user(const std::string& address) {
    const auto a = parse_address(address);
    auto u = store().find_user(a);
    if (!u) {
      throw Failure(ErrorCode::not_found, "no user " + address + lifecycle::alias_note(store(), a),
                    "user");
    }
    return *u;
  }

  void print_json(const json& j) { out << j.dump(2) << "\n"; }
  // A listing as json(items).dump(2) prints it, one item at a time: the whole listing as one
  // json value took 2 GB for a million users.
  template <class T>
  void print_json(const std::vector<T>& items) {
    for (std::size_t i = 0; i < items.size(); ++i) print_json_item(json(items[i]), i == 0);
    print_json_end(!items.empty());
  }
  // The same, an item at a time, for listings read a page at a time: each item (first: the
  // listing's first), then the end (any: whether there was an item).
  void print_json_item(const json& item, bool first) {
    std::string text = item.dump(2);
    for (std::size_t at = text.find('\n'); at != std::string::npos; at = text.find('\n', at + 3)) {
      text.replace(at, 1, "\n  ");
    }
    out << (first ? "[\n  " : ",\n  ") << text;
  }
  void print_json_end(bool any) { out << (any ? "\n]\n" : "[]\n"); }
};

// A subcommand whose action runs after parsing; --json when it prints a listing.
CLI::App* verb(CLI::App& parent, const std::string& name, const std::string& description,
               std::function<void()>& action, std::function<void()> body) {
  auto* cmd = parent.add_subcommand(name, description);
  cmd->callback([&action, body = std::move(body)] { action = body; });
  return cmd;
}

void add_json_flag(CLI::App* cmd, Context& ctx) {
  cmd->add_flag("--json", ctx.json_output, "Machine-readable JSON output");
}

std::vector<core::Cidr> parse_networks(const std::vector<std::string>& texts) {
  std::vector<core::Cidr> out;
  for (const auto& t : texts) out.push_back(core::Cidr::parse_trusted(t).value());
  return out;
}

void company_commands(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto& opt = ctx.company_args;
  auto* company = app.add_subcommand("company", "Manage companies (tenants)");
  company->require_subcommand(1);

  auto* add = verb(*company, "add", "Add a company", action, [&ctx, &opt = ctx.company_args] {
    auto c = ctx.store().add_company(
        store::NewCompany{opt.name, opt.tech, opt.admin, parse_networks(opt.networks)}, ctx.actor);
    if (ctx.json_output) return ctx.print_json(c);
    ctx.out << "company " << c.name << " added\n";
  });
  add->add_option("name", opt.name, "Company name (letters, digits, '.', '-', '_')")->required();
  add->add_option("--tech-contact", opt.tech, "Technical contact address (receives reports)");
  add->add_option("--admin-contact", opt.admin, "Administrative contact address");
  add->add_option("--relay-network", opt.networks,
                  "CIDR the company's own mail server sends from (repeatable)");
  add_json_flag(add, ctx);

  auto* list = verb(*company, "list", "List companies", action, [&ctx, &opt = ctx.company_args] {
    const auto all = ctx.store().list_companies();
    if (ctx.json_output) {  // the table's columns too: users, as `company show --json` has it
      auto j = json::array();
      for (const auto& c : all) {
        json item = c;
        item["users"] = ctx.store().count_users(c.id);
        j.push_back(std::move(item));
      }
      return ctx.print_json(j);
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : all) {
      rows.push_back(
          {c.name, c.tech_contact, c.admin_contact, std::to_string(ctx.store().count_users(c.id))});
    }
    print_table(ctx.out, {"NAME", "TECH CONTACT", "ADMIN CONTACT", "USERS"}, rows);
  });
  add_json_flag(list, ctx);

  auto* show = verb(*company, "show", "Show a company with its domains and settings", action,
                    [&ctx, &opt = ctx.company_args] {
                      const auto c = ctx.company(opt.name);
                      const auto domains = ctx.store().list_domains(c.id);
                      const auto settings = ctx.store().discovery_settings(c.id);
                      const auto users = ctx.store().count_users(c.id);
                      if (ctx.json_output) {
                        json j = c;
                        j["domains"] = domains;
                        j["users"] = users;
                        j["discovery"] = settings;
                        return ctx.print_json(j);
                      }
                      std::string nets;
                      for (const auto& n : c.relay_networks)
                        nets += (nets.empty() ? "" : ", ") + n.str();
                      ctx.out << "name:           " << c.name << "\n"
                              << "tech contact:   " << c.tech_contact << "\n"
                              << "admin contact:  " << c.admin_contact << "\n"
                              << "relay networks: " << nets << "\n"
                              << "users:          " << users << "\n"
                              << "discovery:      " << (settings.enabled ? "on" : "off") << "\n"
                              << "domains:\n";
                      for (const auto& d : domains) {
                        ctx.out << "  " << d.name << " -> " << d.destination.str() << "\n";
                      }
                    });
  show->add_option("name", opt.name, "Company name")->required();
  add_json_flag(show, ctx);

  auto* update = verb(*company, "update", "Change a company's contacts or relay networks", action,
                      [&ctx, &opt = ctx.company_args] {
                        const auto c = ctx.company(opt.name);
                        store::CompanyChange change;
                        change.tech_contact = opt.new_tech;
                        change.admin_contact = opt.new_admin;
                        if (opt.new_networks)
                          change.relay_networks = parse_networks(*opt.new_networks);
                        auto after = ctx.store().update_company(c.id, change, ctx.actor);
                        if (ctx.json_output) return ctx.print_json(after);
                        ctx.out << "company " << after.name << " updated\n";
                      });
  update->add_option("name", opt.name, "Company name")->required();
  update->add_option("--tech-contact", opt.new_tech, "Technical contact address ('' to clear)");
  update->add_option("--admin-contact", opt.new_admin,
                     "Administrative contact address ('' to clear)");
  update->add_option("--relay-network", opt.new_networks,
                     "CIDR the company's mail server sends from (repeatable; replaces the list)");
  add_json_flag(update, ctx);

  auto* remove =
      verb(*company, "remove", "Remove a company", action, [&ctx, &opt = ctx.company_args] {
        const auto c = ctx.company(opt.name);
        ctx.store().remove_company(c.id, opt.force, ctx.actor);
        ctx.out << "company " << c.name << " removed\n";
      });
  remove->add_option("name", opt.name, "Company name")->required();
  remove->add_flag("--force", opt.force,
                   "Also remove its domains and every user, alias and address in them");
}

// `domain check`: one session with each server of the destination under the relay's
// settings, reported. Exit status 1 when the destination cannot take mail (no server gave a
// session, or the one mail would go to refused the sender).
void check_domain(Context& ctx, const core::Domain& d) {
  boost::asio::io_context io;
  smtp::ClientPool pool(io, ctx.config.relay);
  std::vector<verify::DestinationCheck> checks;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        checks = co_await verify::check_destination(pool, d.destination, d.name,
                                                    ctx.config.verify.sender);
      },
      boost::asio::detached);
  io.run();
  const auto& serving = serving_server(checks);
  const std::string policy(smtp::to_string(ctx.config.relay.tls));
  if (ctx.json_output) {
    ctx.print_json(domain_check_json(d, checks, ctx.config.relay.tls));
  } else {
    auto& o = ctx.out;
    o << "domain " << d.name << " delivers to " << d.destination.str() << "\n";
    const bool several = checks.size() > 1;
    const std::string in = several ? "    " : "  ";
    for (const auto& c : checks) {
      if (several) {
        o << "  server " << c.destination.str()
          << (&c == &serving && c.connected() ? " (mail goes here now)" : "") << "\n";
      }
      o << in << "session     " << (c.connected() ? "ready" : "failed") << " in " << c.took.count()
        << " ms: " << c.hello.describe() << "\n";
      if (!c.connected()) continue;
      std::string ext;
      for (const auto& e : c.extensions) ext += (ext.empty() ? "" : " ") + e;
      o << in << "extensions  " << (ext.empty() ? "(none: HELO only)" : ext) << "\n";
      o << in << "TLS         ";
      if (!c.tls.active) {
        o << "not used ([relay] tls = \"" << policy << "\"";
        o << (policy == "none" ? ")" : "; the destination offers no STARTTLS)") << "\n";
      } else {
        o << c.tls.version << " " << c.tls.cipher << "; certificate " << c.tls.peer_subject
          << (c.tls.chain_trusted ? ", trusted" : ", not trusted (" + c.tls.chain_error + ")")
          << (c.tls.names_host ? ", names the host" : ", does not name the host") << "\n";
      }
      if (c.mail) o << in << "MAIL FROM   " << c.mail->describe() << "\n";
      if (c.random_rcpt) {
        o << in << "random RCPT " << c.random_rcpt->describe() << "\n";
        o << in << "=> " << domain_check_verdict(c) << "\n";
      }
    }
  }
  if (!serving.connected()) {
    std::string why;
    for (const auto& c : checks) {
      why += (why.empty() ? "" : "; ") + (checks.size() > 1 ? c.destination.str() + ": " : "") +
             c.hello.describe();
    }
    throw Failure(ErrorCode::unavailable,
                  "the destination of " + d.name + " cannot take mail: " + why);
  }
  if (serving.mail && !serving.mail->positive()) {
    throw Failure(
        ErrorCode::unavailable,
        "the destination of " + d.name + " refuses the probe sender: " + serving.mail->describe());
  }
}

// `domain check --all` (or --company): every domain's servers, a few domains at a time, one line
// each; exit status 1 when any domain's mail cannot be delivered now.
void check_domains(Context& ctx, const std::vector<core::Domain>& domains) {
  boost::asio::io_context io;
  smtp::ClientPool pool(io, ctx.config.relay);
  std::vector<std::vector<verify::DestinationCheck>> found(domains.size());
  std::size_t next = 0;
  for (int worker = 0; worker < 8; ++worker) {
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          while (next < domains.size()) {
            const auto i = next++;
            found[i] = co_await verify::check_destination(
                pool, domains[i].destination, domains[i].name, ctx.config.verify.sender);
          }
        },
        boost::asio::detached);
  }
  io.run();
  std::vector<std::string> failing;
  nlohmann::json items = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  for (std::size_t i = 0; i < domains.size(); ++i) {
    const auto& c = serving_server(found[i]);
    const bool ok = c.connected() && (!c.mail || c.mail->positive());
    if (!ok) failing.push_back(domains[i].name);
    std::size_t down = 0;
    for (const auto& s : found[i]) down += s.connected() ? 0 : 1;
    items.push_back(domain_check_json(domains[i], found[i], ctx.config.relay.tls));
    rows.push_back(
        {domains[i].name, c.destination.str(),
         ok ? "ready" : "FAILED: " + (c.connected() ? c.mail->describe() : c.hello.describe()),
         c.tls.active ? c.tls.version : "-",
         ok ? (domain_check_verdict(c).empty() ? "-" : domain_check_verdict(c)) : "-",
         down == 0 ? ""
                   : std::to_string(down) + " of " + std::to_string(found[i].size()) + " down"});
  }
  if (ctx.json_output) {
    ctx.print_json(items);
  } else {
    print_table(ctx.out, {"DOMAIN", "SERVER", "SESSION", "TLS", "CALLOUTS", "SERVERS"}, rows);
  }
  if (!failing.empty()) {
    std::string names;
    for (const auto& n : failing) names += (names.empty() ? "" : ", ") + n;
    throw Failure(ErrorCode::unavailable, std::to_string(failing.size()) + " of " +
                                              std::to_string(domains.size()) +
                                              " domains cannot take mail now: " + names);
  }
}

void domain_commands(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto& opt = ctx.domain_args;
  auto* domain = app.add_subcommand("domain", "Manage a company's mail domains");
  domain->require_subcommand(1);

  auto* add = verb(*domain, "add", "Register a domain to a company", action,
                   [&ctx, &opt = ctx.domain_args] {
                     const auto c = ctx.company(opt.company);
                     const auto dest = core::Destination::parse(opt.destination).value();
                     auto d = ctx.store().add_domain(c.id, opt.name, dest, ctx.actor);
                     if (ctx.json_output) return ctx.print_json(d);
                     ctx.out << "domain " << d.name << " added to " << c.name << ", delivering to "
                             << d.destination.str() << "\n";
                   });
  add->add_option("name", opt.name, "Domain name, e.g. acme.example")->required();
  add->add_option("--company", opt.company, "Owning company")->required();
  add->add_option("--destination", opt.destination,
                  "The company's mail server for this domain: host[:port] (port 25 by default); "
                  "several, comma-separated, are tried in that order")
      ->required();
  add_json_flag(add, ctx);

  auto* list = verb(*domain, "list", "List domains", action, [&ctx, &opt = ctx.domain_args] {
    std::optional<core::Id> company_id;
    if (!opt.company.empty()) company_id = ctx.company(opt.company).id;
    const auto all = ctx.store().list_domains(company_id);
    if (ctx.json_output) return ctx.print_json(all);
    std::vector<std::vector<std::string>> rows;
    for (const auto& d : all) {
      rows.push_back({d.name, ctx.company_name(d.company_id), d.destination.str()});
    }
    print_table(ctx.out, {"DOMAIN", "COMPANY", "DESTINATION"}, rows);
  });
  list->add_option("--company", opt.company, "Only this company's domains");
  add_json_flag(list, ctx);

  auto* update = verb(*domain, "update", "Change a domain's delivery destination", action,
                      [&ctx, &opt = ctx.domain_args] {
                        const auto d = ctx.domain(opt.name);
                        auto after = ctx.store().set_domain_destination(
                            d.id, core::Destination::parse(opt.destination).value(), ctx.actor);
                        if (ctx.json_output) return ctx.print_json(after);
                        ctx.out << "domain " << after.name << " now delivers to "
                                << after.destination.str() << "\n";
                      });
  update->add_option("name", opt.name, "Domain name")->required();
  update
      ->add_option("--destination", opt.destination,
                   "host[:port], or several comma-separated, tried in that order")
      ->required();
  add_json_flag(update, ctx);

  auto* remove = verb(*domain, "remove", "Remove a domain", action, [&ctx, &opt = ctx.domain_args] {
    const auto d = ctx.domain(opt.name);
    ctx.store().remove_domain(d.id, opt.force, ctx.actor);
    ctx.out << "domain " << d.name << " removed\n";
  });
  remove->add_option("name", opt.name, "Domain name")->required();
  remove->add_flag("--force", opt.force, "Also remove every user, alias and address in the domain");

  auto* check = verb(
      *domain, "check",
      "Try the domain's destination as the gateway does: connect, TLS, extensions, and whether "
      "it verifies recipients",
      action, [&ctx, &opt = ctx.domain_args] {
        if (!opt.name.empty()) {
          if (opt.all || !opt.company.empty()) {
            throw Failure(ErrorCode::invalid_argument,
                          "give a domain, or --all / --company, not both");
          }
          return check_domain(ctx, ctx.domain(opt.name));
        }
        if (!opt.all && opt.company.empty()) {
          throw Failure(ErrorCode::invalid_argument, "give a domain, --company or --all");
        }
        std::optional<core::Id> company_id;
        if (!opt.company.empty()) company_id = ctx.company(opt.company).id;
        check_domains(ctx, ctx.store().list_domains(company_id));
      });
  check->add_option("name", opt.name, "Domain name");
  check->add_flag("--all", opt.all, "Every domain: one line each (exit status 1 if any fails)");
  check->add_option("--company", opt.company, "Every domain of this company");
  add_json_flag(check, ctx);
}

void user_commands(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto& opt = ctx.user_args;
  auto* user = app.add_subcommand("user", "Manage licensed user accounts");
  user->require_subcommand(1);

  auto* add = verb(*user, "add", "Add a user account", action, [&ctx, &opt = ctx.user_args] {
    store::NewUser u;
    u.address = parse_address(opt.address);
    u.first_name = opt.first_name;
    u.surname = opt.surname;
    u.role = core::parse_role(opt.role).value();
    if (!opt.company.empty()) {
      const auto c = ctx.company(opt.company);
      const auto d = ctx.store().find_domain(u.address.domain());
      if (d && d->company_id != c.id) {
        throw Failure(ErrorCode::invalid_argument,
                      "domain '" + u.address.domain() + "' belongs to company '" +
                          ctx.company_name(d->company_id) + "', not '" + c.name + "'",
                      "address");
      }
    }
    auto created = ctx.store().add_user(u, ctx.actor);
    if (ctx.json_output) return ctx.print_json(created);
    ctx.out << "user " << created.address.str() << " added to "
            << ctx.company_name(created.company_id) << " as " << core::to_string(created.role)
            << "\n";
  });
  add->add_option("address", opt.address, "Primary address")->required();
  add->add_option("--company", opt.company,
                  "Company (optional: the address's domain decides; checked when given)");
  add->add_option("--first-name", opt.first_name, "First name");
  add->add_option("--surname", opt.surname, "Surname");
  add->add_option("--role", opt.role, "end_user (default), silent_user or functional");
  add_json_flag(add, ctx);

  auto* list = verb(*user, "list", "List user accounts", action, [&ctx, &opt = ctx.user_args] {
    store::UserFilter f;
    if (!opt.company.empty()) f.company_id = ctx.company(opt.company).id;
    if (opt.role_filter) f.role = core::parse_role(*opt.role_filter).value();
    if (opt.source_filter) f.source = core::parse_source(*opt.source_filter).value();
    f.search = opt.search;
    f.limit = opt.limit;
    if (opt.no_mail_days)
      f.no_mail_since = ctx.clock().now() - std::chrono::days{*opt.no_mail_days};
    if (ctx.json_output) {  // a page at a time: a million users need not be in memory at once
      bool any = false;
      store::for_each_user_page(ctx.store(), f, 10'000, [&](const std::vector<core::User>& page) {
        const auto last = ctx.store().last_mail(page);
        for (const auto& u : page) {
          ctx.print_json_item(admin::user_json(u, last), !std::exchange(any, true));
        }
      });
      return ctx.print_json_end(any);
    }
    const auto users = ctx.store().list_users(f);
    const auto last = ctx.store().last_mail(users);
    core::write_table(
        ctx.out, {"ADDRESS", "FIRST NAME", "SURNAME", "ROLE", "SOURCE", "LAST MAIL", "COMPANY"},
        users.size(), [&](std::size_t i) -> std::vector<std::string> {
          const auto& u = users[i];
          const auto mail = last.find(u.id);
          return {u.address.str(),
                  u.first_name,
                  u.surname,
                  std::string(core::to_string(u.role)),
                  std::string(core::to_string(u.source)),
                  mail == last.end() ? "-" : core::format_iso8601(mail->second).substr(0, 10),
                  ctx.company_name(u.company_id)};
        });
  });
  list->add_option("--company", opt.company, "Only this company's users");
  list->add_option("--role", opt.role_filter, "Only this role");
  list->add_option("--source", opt.source_filter,
                   "Only users from this source: manual, csv, ldap, azure or discovery");
  list->add_option("--search", opt.search,
                   "Substring of the address, an alias or a name (any case)");
  list->add_option("--no-mail-days", opt.no_mail_days,
                   "Only users with no clean mail in or out for this many days (their LAST MAIL, "
                   "or their creation when they have had none)")
      ->check(CLI::Range(1, 3650));
  list->add_option("--limit", opt.limit, "At most this many (0 = all)");
  add_json_flag(list, ctx);

  auto* exp = verb(
      *user, "export", "Write a company's users and aliases as a CSV file that `import csv` reads",
      action, [&ctx, &opt = ctx.user_args] {
        const auto c = ctx.company(opt.company);
        if (opt.output.empty() || opt.output == "-") {
          directory::csv::export_users(ctx.store(), c.id, ctx.out, opt.bom);
          return;
        }
        // Written beside the file and renamed over it: a failed export leaves no half file.
        const auto part = opt.output + ".part";
        std::size_t n = 0;
        {
          std::ofstream file(part, std::ios::binary | std::ios::trunc);
          if (!file) throw Failure(ErrorCode::invalid_argument, "cannot write '" + part + "'");
          n = directory::csv::export_users(ctx.store(), c.id, file, opt.bom);
          file.close();
          if (!file) {
            std::filesystem::remove(part);
            throw Failure(ErrorCode::internal, "cannot write '" + part + "' (disk full?)");
          }
        }
        std::filesystem::rename(part, opt.output);
        ctx.out << n << " users of " << c.name << " written to " << opt.output << "\n";
      });
  exp->add_option("--company", opt.company, "Company")->required();
  exp->add_option("--output,-o", opt.output, "File to write (default: standard output)");
  exp->add_flag("--bom", opt.bom, "Begin with a UTF-8 byte order mark (for spreadsheets)");

  auto* show =
      verb(*user, "show", "Show a user and its aliases", action, [&ctx, &opt = ctx.user_args] {
        const auto u = ctx.user(opt.address);
        const auto aliases = ctx.store().list_aliases(std::nullopt, u.id);
        json j = admin::users_json(ctx.store(), {u}).at(0);
        if (ctx.json_output) {
          j["company"] = ctx.company_name(u.company_id);
          j["aliases"] = json::array();
          for (const auto& al : aliases) j["aliases"].push_back(al.address.str());
          return ctx.print_json(j);
        }
        ctx.out << "address:    " << u.address.str() << "\n"
                << "company:    " << ctx.company_name(u.company_id) << "\n"
                << "first name: " << u.first_name << "\n"
                << "surname:    " << u.surname << "\n"
                << "role:       " << core::to_string(u.role) << "\n"
                << "source:     " << core::to_string(u.source) << "\n"
                << "created:    " << core::format_iso8601(u.created_at) << "\n"
                << "last mail:  "
                << (j["last_mail_at"].is_null() ? "none yet" : j["last_mail_at"].get<std::string>())
                << "\n"
                << "aliases:   ";
        for (const auto& al : aliases) ctx.out << " " << al.address.str();
        ctx.out << "\n";
      });
  show->add_option("address", opt.address, "Primary address")->required();
  add_json_flag(show, ctx);

  // Several users at once, all or none (as the Users page's selection): the first names the
  // company, and every other must be one of its users.
  const auto at_once = [&ctx](const std::vector<std::string>& addresses,
                              lifecycle::UserAction::Kind kind, std::optional<core::Role> role,
                              bool force) {
    const auto company = ctx.store().company_by_id(ctx.user(addresses.front()).company_id).value();
    std::vector<lifecycle::UserAction> actions;
    for (const auto& a : addresses) actions.push_back({kind, parse_address(a), role});
    lifecycle::apply_user_actions(ctx.store(), company, actions, force, ctx.actor);
    return actions;
  };

  auto* update =
      verb(*user, "update", "Change a user account (several at once: --role only, all or none)",
           action, [&ctx, &opt = ctx.user_args, at_once] {
             if (opt.addresses.size() > 1) {
               if (opt.new_first || opt.new_surname || opt.new_address || !opt.new_role) {
                 throw Failure(ErrorCode::invalid_argument,
                               "several users at once take --role, and only --role", "role");
               }
               const auto done = at_once(opt.addresses, lifecycle::UserAction::Kind::set_role,
                                         core::parse_role(*opt.new_role).value(), false);
               std::vector<core::User> after;
               for (const auto& a : done) after.push_back(ctx.store().find_user(a.address).value());
               if (ctx.json_output) return ctx.print_json(after);
               for (const auto& u : after) ctx.out << "user " << u.address.str() << " updated\n";
               return;
             }
             const auto u = ctx.user(opt.addresses.front());
             store::UserChange change;
             change.first_name = opt.new_first;
             change.surname = opt.new_surname;
             if (opt.new_role) change.role = core::parse_role(*opt.new_role).value();
             if (opt.new_address) change.address = parse_address(*opt.new_address);
             auto after = ctx.store().update_user(u.id, change, ctx.actor);
             if (ctx.json_output) return ctx.print_json(after);
             ctx.out << "user " << after.address.str() << " updated\n";
           });
  update->add_option("address", opt.addresses, "Primary address (several: with --role only)")
      ->required();
  update->add_option("--first-name", opt.new_first, "New first name");
  update->add_option("--surname", opt.new_surname, "New surname");
  update->add_option("--role", opt.new_role, "New role");
  update->add_option("--address", opt.new_address, "New primary address (same company)");
  add_json_flag(update, ctx);

  auto* remove =
      verb(*user, "remove", "Remove users and their aliases (several: all or none)", action,
           [&ctx, &opt = ctx.user_args, at_once] {
             for (const auto& a : at_once(opt.addresses, lifecycle::UserAction::Kind::remove,
                                          std::nullopt, opt.force)) {
               ctx.out << "user " << a.address.str() << " removed\n";
             }
           });
  remove->add_option("address", opt.addresses, "Primary addresses of one company's users")
      ->required();
  remove->add_flag("--force", opt.force,
                   "Remove them even when the deletion guard refuses (500 users or 10 %)");
}

void alias_commands(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto& opt = ctx.alias_args;
  auto* alias = app.add_subcommand("alias", "Manage aliases of user accounts");
  alias->require_subcommand(1);

  auto* add = verb(*alias, "add", "Add an alias to a user", action, [&ctx, &opt = ctx.alias_args] {
    const auto u = ctx.user(opt.user);
    auto created = ctx.store().add_alias(u.id, parse_address(opt.address), ctx.actor);
    if (ctx.json_output) return ctx.print_json(created);
    ctx.out << "alias " << created.address.str() << " added to " << u.address.str() << "\n";
  });
  add->add_option("address", opt.address, "Alias address")->required();
  add->add_option("--user", opt.user, "Primary address of the user")->required();
  add_json_flag(add, ctx);

  auto* list = verb(*alias, "list", "List aliases", action, [&ctx, &opt = ctx.alias_args] {
    std::optional<core::Id> company_id, user_id;
    if (!opt.company.empty()) company_id = ctx.company(opt.company).id;
    if (!opt.user.empty()) user_id = ctx.user(opt.user).id;
    const auto all = ctx.store().list_aliases(company_id, user_id);
    if (ctx.json_output) {
      json j = json::array();
      for (const auto& al : all) {
        json item = al;
        item["user"] = ctx.store().user_by_id(al.user_id)->address.str();
        j.push_back(item);
      }
      return ctx.print_json(j);
    }
    std::vector<std::vector<std::string>> rows;
    for (const auto& al : all) {
      rows.push_back({al.address.str(), ctx.store().user_by_id(al.user_id)->address.str(),
                      ctx.company_name(al.company_id)});
    }
    print_table(ctx.out, {"ALIAS", "USER", "COMPANY"}, rows);
  });
  list->add_option("--company", opt.company, "Only this company's aliases");
  list->add_option("--user", opt.user, "Only this user's aliases");
  add_json_flag(list, ctx);

  auto* remove = verb(*alias, "remove", "Remove an alias", action, [&ctx, &opt = ctx.alias_args] {
    auto found = ctx.store().find_alias(parse_address(opt.address));
    if (!found) throw Failure(ErrorCode::not_found, "no alias " + opt.address, "alias");
    ctx.store().remove_alias(found->id, ctx.actor);
    ctx.out << "alias " << found->address.str() << " removed\n";
  });
  remove->add_option("address", opt.address, "Alias address")->required();
}

void audit_commands(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto& opt = ctx.audit_args;
  auto* audit = app.add_subcommand("audit", "Read the audit trail");
  audit->require_subcommand(1);
  auto* list = verb(
      *audit, "list", "List audit events, newest first", action, [&ctx, &opt = ctx.audit_args] {
        store::AuditFilter f;
        if (!opt.company.empty()) f.company_id = ctx.company(opt.company).id;
        f.limit = opt.limit;
        f.offset = opt.offset;
        f.object = opt.object;
        if (!opt.action.empty()) f.action = core::parse_audit_action(opt.action).value();
        const auto events = ctx.store().list_audit(f);
        if (ctx.json_output) return ctx.print_json(events);
        std::vector<std::vector<std::string>> rows;
        for (const auto& e : events) {
          rows.push_back(
              {core::format_iso8601(e.at), e.actor, e.action, e.object, core::describe_change(e)});
        }
        print_table(ctx.out, {"TIME", "ACTOR", "ACTION", "OBJECT", "CHANGE"}, rows);
      });
  list->add_option("--company", opt.company, "Only this company's events");
  list->add_option("--limit", opt.limit, "At most this many (default 50, 0 = all)");
  list->add_option("--offset", opt.offset, "Pass over this many of the newest first");
  list->add_option("--object", opt.object,
                   "Only events about this address or name (any case): who did what to it");
  list->add_option("--action", opt.action, "Only this action: " + core::audit_action_list());
  add_json_flag(list, ctx);

  auto* prune = verb(
      *audit, "prune", "Remove the events older than a time (as [audit] retention does)", action,
      [&ctx, &opt = ctx.audit_args] {
        const auto age = parse_duration(opt.older_than);
        if (!age || *age < reports::kMinAuditRetention) {
          throw Failure(ErrorCode::invalid_argument,
                        "--older-than '" + opt.older_than + "' is not a duration of 1d or more",
                        "older-than");
        }
        const auto before = ctx.clock().now() - *age;
        const auto removed = ctx.store().prune_audit(before);
        if (ctx.json_output) {
          return ctx.print_json({{"removed", removed}, {"before", core::format_iso8601(before)}});
        }
        ctx.out << removed << " audit event(s) from before " << core::format_iso8601(before)
                << " removed\n";
      });
  prune->add_option("--older-than", opt.older_than, "Age, such as 400d")->required();
  add_json_flag(prune, ctx);
}

void mail_log_command(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto& opt = ctx.mail_log_args;
  auto* log =
      verb(app, "mail-log",
           "What happened to a company's mail (or every company's): each recipient refused, each "
           "message's outcome, newest first",
           action, [&ctx, &opt = ctx.mail_log_args] {
             auto f = store::mail_log_filter({{"address", opt.address},
                                              {"id", opt.id},
                                              {"result", opt.result},
                                              {"direction", opt.direction},
                                              {"since", opt.since},
                                              {"before", opt.before}},
                                             ctx.clock().now());
             if (!opt.company.empty()) f.company_id = ctx.company(opt.company).id;
             f.limit = opt.limit;
             f.offset = opt.offset;
             const auto entries = ctx.store().list_mail_log(f);
             if (ctx.json_output) {
               auto j = json::array();
               for (const auto& e : entries) {
                 json item = e;
                 item["company"] = e.company_id ? ctx.company_name(e.company_id) : "";
                 j.push_back(std::move(item));
               }
               return ctx.print_json(j);
             }
             std::vector<std::vector<std::string>> rows;
             for (const auto& e : entries) {
               rows.push_back({core::format_iso8601(e.at),
                               e.company_id ? ctx.company_name(e.company_id) : "-", e.direction,
                               e.sender.empty() ? "<>" : e.sender, e.recipient, e.result,
                               std::to_string(e.code) + " " + e.reply});
             }
             print_table(ctx.out, {"TIME", "COMPANY", "DIRECTION", "FROM", "TO", "RESULT", "REPLY"},
                         rows);
           });
  log->add_option("--company", opt.company, "Only this company's mail (default: every company's)");
  log->add_option("--address", opt.address,
                  "Only mail from or to addresses holding this text (any case)");
  log->add_option("--id", opt.id,
                  "Only the message with this id (a part of it): the gateway's (its Received "
                  "header, its 250 reply) or the destination's, as its reply gave it");
  log->add_option("--result", opt.result, "Only this result")
      ->check(CLI::IsMember(store::kMailLogResults));
  log->add_option("--direction", opt.direction, "Only this direction")
      ->check(CLI::IsMember(store::kMailLogDirections));
  log->add_option("--since", opt.since, "From this time on (ISO-8601, or a duration ago: 2h)");
  log->add_option("--before", opt.before, "Before this time (ISO-8601, or a duration ago)");
  log->add_option("--limit", opt.limit, "At most this many (default 50, 0 = all)");
  log->add_option("--offset", opt.offset, "Pass over this many of the newest first");
  add_json_flag(log, ctx);
}

void usage_command(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto& opt = ctx.usage_args;
  auto* usage = verb(
      app, "usage",
      "Licensed users per company (what to bill): each day's count by the maintenance job, with "
      "the peak and the average over a month or days",
      action, [&ctx, &opt = ctx.usage_args] {
        auto f = store::usage_filter({{"month", opt.month}, {"from", opt.from}, {"to", opt.to}},
                                     ctx.clock().now());
        if (!opt.company.empty()) f.company_id = ctx.company(opt.company).id;
        if (ctx.json_output) return ctx.print_json(admin::usage_json(ctx.store(), f));
        if (opt.csv) {
          ctx.out << admin::usage_csv(ctx.store(), f);
          return;
        }
        const auto companies = store::summarize_usage(ctx.store().license_usage(f));
        ctx.out << "licensed users, " << f.from << " to " << f.to
                << " (UTC days, as maintenance counted them)\n";
        std::vector<std::vector<std::string>> rows;
        const auto counts = [](const core::LicenseUsage& d) {
          return std::vector<std::string>{
              std::to_string(d.users), std::to_string(d.end_users), std::to_string(d.silent_users),
              std::to_string(d.functional), std::to_string(d.from_discovery)};
        };
        const std::vector<std::string> kinds = {"END USERS", "SILENT", "FUNCTIONAL",
                                                "FROM DISCOVERY"};
        if (opt.daily) {
          for (const auto& c : companies) {
            for (const auto& d : c.days) {
              auto row = std::vector<std::string>{d.day, c.company, std::to_string(d.peak_users)};
              for (auto& n : counts(d)) row.push_back(std::move(n));
              rows.push_back(std::move(row));
            }
          }
          std::vector<std::string> header = {"DAY", "COMPANY", "PEAK", "USERS"};
          header.insert(header.end(), kinds.begin(), kinds.end());
          return print_table(ctx.out, header, rows);
        }
        for (const auto& c : companies) {
          auto row = std::vector<std::string>{c.company, std::to_string(c.peak_users),
                                              fmt::format("{:.1f}", c.average_users), c.last.day};
          for (auto& n : counts(c.last)) row.push_back(std::move(n));
          row.push_back(std::to_string(c.days.size()));
          rows.push_back(std::move(row));
        }
        std::vector<std::string> header = {"COMPANY", "PEAK", "AVERAGE", "LAST DAY", "USERS"};
        header.insert(header.end(), kinds.begin(), kinds.end());
        header.push_back("DAYS");
        print_table(ctx.out, header, rows);
      });
  usage->add_option("--company", opt.company, "Only this company (default: every company)");
  usage->add_option("--month", opt.month, "This month, YYYY-MM (default: the current month)");
  usage->add_option("--from", opt.from, "From this day on, YYYY-MM-DD");
  usage->add_option("--to", opt.to, "Up to this day, YYYY-MM-DD (default: today)");
  usage->add_flag("--daily", opt.daily, "One line per company and day");
  auto* csv =
      usage->add_flag("--csv", opt.csv, "CSV: one line per company and day (for a billing system)");
  add_json_flag(usage, ctx);
  csv->excludes("--json");
}

// A request to the running service's admin API on this machine, with the local token (derived
// from the secrets key file, which only local administrators can read); its JSON answer, or a
// Failure with the service's reason.
json ask_service(Context& ctx, const std::string& method, const std::string& path,
                 const std::string& body) {
  auto endpoint = ctx.config.admin_listen;
  if (endpoint.host == "0.0.0.0") endpoint.host = "127.0.0.1";
  if (endpoint.host == "::") endpoint.host = "::1";
  const auto token = store::SecretBox::open_key_file(ctx.config.key_file()).derive("verify-flush");
  // HTTPS when the admin port has a certificate: it is the one trusted.
  const auto r =
      admin::http_request(endpoint, method, path, body, {{"Authorization", "Bearer " + token}},
                          ctx.config.admin_tls_cert);
  auto answer = json::parse(r.body, nullptr, false);
  if (r.status != 200) {
    throw Failure(ErrorCode::invalid_argument, answer.is_object() && answer.contains("error")
                                                   ? answer["error"]["message"].get<std::string>()
                                                   : "HTTP " + std::to_string(r.status));
  }
  return answer;
}

void verify_commands(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto& opt = ctx.verify_args;
  auto* verify = app.add_subcommand(
      "verify", "Recipient verification: what the gateway answers, the callout cache");
  verify->require_subcommand(1);
  auto* explain = verb(
      *verify, "explain",
      "What the gateway answers for mail to an address, and why, from the database (the "
      "destination is not asked); for a callout, also the running service's cached answer",
      action, [&ctx, &opt = ctx.verify_args] {
        const auto address = parse_address(opt.address);
        gateway::Lookups lookups(ctx.store());
        const auto rule = gateway::recipient_rule(lookups, address, ctx.config.recipient_delimiter);
        auto j = gateway::explain(rule, address);
        j["company"] = rule.domain ? json(ctx.company_name(rule.domain->company_id)) : json();
        // A callout: the running service's remembered answer, when it can be asked.
        std::string unasked;
        if (rule.kind == gateway::RecipientRule::Kind::callout && rule.domain) {
          try {
            j["cached"] = ask_service(ctx, "GET",
                                      "/api/v1/companies/" +
                                          admin::percent_encode(j["company"].get<std::string>()) +
                                          "/recipients/" + admin::percent_encode(address.str()),
                                      "")["cached"];
          } catch (const Failure& f) {
            unasked = f.what();
          }
        }
        if (ctx.json_output) return ctx.print_json(j);
        const auto reply = j["reply"].is_null()
                               ? std::string("the destination's answer (a callout)")
                               : std::to_string(j["reply"]["code"].get<int>()) + " " +
                                     j["reply"]["text"].get<std::string>();
        ctx.out << address.str() << ": " << reply << "\n";
        if (rule.domain) {
          ctx.out << "  domain:      " << rule.domain->name << " (company "
                  << j["company"].get<std::string>() << "), delivered to "
                  << rule.domain->destination.str() << "\n";
        }
        ctx.out << "  why:         " << j["why"].get<std::string>() << "\n";
        if (!unasked.empty()) {
          ctx.out << "  cached:      not known (" << unasked << ")\n";
        } else if (j.contains("cached") && j["cached"].is_null()) {
          ctx.out << "  cached:      nothing: the next mail to it is a callout\n";
        } else if (j.contains("cached")) {
          const auto& c = j["cached"];
          ctx.out << "  cached:      " << c["verdict"].get<std::string>() << " ("
                  << c["reply"].get<std::string>() << "), asked again after "
                  << c["refresh_at"].get<std::string>() << ", forgotten at "
                  << c["expires_at"].get<std::string>()
                  << (c["accept_all"].get<bool>() ? "; the server takes any address" : "") << "\n";
        }
      });
  explain->add_option("address", opt.address, "Recipient address")->required();
  add_json_flag(explain, ctx);
  auto* flush =
      verb(*verify, "flush",
           "Clear cached callout results of the running service: one address, a "
           "domain, or everything",
           action, [&ctx, &opt = ctx.verify_args] {
             json body = json::object();
             if (!opt.address.empty() && !opt.domain.empty()) {
               throw Failure(ErrorCode::invalid_argument, "give an address or --domain, not both");
             }
             if (!opt.address.empty()) body["address"] = parse_address(opt.address).str();
             if (!opt.domain.empty()) body["domain"] = opt.domain;
             const auto answer = ask_service(ctx, "POST", "/api/v1/verify/flush", body.dump());
             if (ctx.json_output) return ctx.print_json(answer);
             ctx.out << "removed " << answer["removed"].get<std::size_t>() << " cached result(s)\n";
           });
  flush->add_option("address", opt.address, "Address whose cached result to clear");
  flush->add_option("--domain", opt.domain, "Clear every cached result of this domain");
  add_json_flag(flush, ctx);

  auto* catch_all = verb(
      *verify, "catch-all",
      "Domains whose mail server accepts any address, as the running service found: their "
      "mail is relayed but never counted for discovery",
      action, [&ctx] {
        const auto answer = ask_service(ctx, "GET", "/api/v1/verify/catch-all", "");
        if (ctx.json_output) return ctx.print_json(answer["items"]);
        std::vector<std::vector<std::string>> rows;
        for (const auto& d : answer["items"]) {
          rows.push_back({d["domain"].get<std::string>(), d["company"].get<std::string>(),
                          d["destination"].get<std::string>(), d["checked_at"].get<std::string>()});
        }
        print_table(ctx.out, {"DOMAIN", "COMPANY", "SERVER", "CHECKED"}, rows);
      });
  add_json_flag(catch_all, ctx);
}

void discovery_commands(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto& opt = ctx.discovery_args;
  auto* discovery =
      app.add_subcommand("discovery", "SMTP Discovery: settings and the discovered list");
  discovery->require_subcommand(1);

  auto* settings =
      verb(*discovery, "settings", "Show a company's discovery settings", action,
           [&ctx, &opt = ctx.discovery_args] {
             const auto c = ctx.company(opt.company);
             const auto current = ctx.store().discovery_settings(c.id);
             const json j = current;
             if (ctx.json_output) return ctx.print_json(j);
             for (const auto& [k, v] : j.items()) {
               ctx.out << k << " = " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
             }
             const auto why =
                 core::discovery_off_reason(current, ctx.store().directory_sync_hours(c.id));
             if (!why.empty()) ctx.out << "note: " << why << "\n";
           });
  settings->add_option("--company", opt.company, "Company")->required();
  add_json_flag(settings, ctx);

  auto* set =
      verb(*discovery, "set", "Change discovery settings: NAME=VALUE ...", action,
           [&ctx, &opt = ctx.discovery_args] {
             const auto c = ctx.company(opt.company);
             auto s = ctx.store().discovery_settings(c.id);
             for (const auto& a : opt.assignments) {
               const auto eq = a.find('=');
               if (eq == std::string::npos) {
                 throw Failure(ErrorCode::invalid_argument, "expected NAME=VALUE, got '" + a + "'");
               }
               if (auto e = core::set_setting(s, a.substr(0, eq), a.substr(eq + 1))) {
                 throw Failure(*e);
               }
             }
             ctx.store().set_discovery_settings(c.id, s, ctx.actor);
             if (ctx.json_output) return ctx.print_json(s);
             ctx.out << "discovery settings of " << c.name << " updated\n";
           });
  set->add_option("--company", opt.company, "Company")->required();
  set->add_option("settings", opt.assignments,
                  "enabled, default_role, inbound_threshold, window_days, notification_weeks, "
                  "expired_to_new_user, auto_add_aliases, auto_add_outbound, report_new_users, "
                  "report_new_aliases, report_include_admin")
      ->required();
  add_json_flag(set, ctx);

  auto action_verb = [&](const std::string& name, const std::string& help,
                         lifecycle::DiscoveredAction::Kind kind) {
    auto* cmd = verb(*discovery, name, help, action, [&ctx, &opt = ctx.discovery_args, kind] {
      const auto c = ctx.company(opt.company);
      if (opt.addresses.size() > 1 && (!opt.first_name.empty() || !opt.surname.empty())) {
        throw Failure(ErrorCode::invalid_argument,
                      "--first-name and --surname apply to one address at a time");
      }
      std::vector<lifecycle::DiscoveredAction> actions;
      for (const auto& a : opt.addresses) {
        lifecycle::DiscoveredAction act;
        act.kind = kind;
        act.address = parse_address(a);
        act.first_name = opt.first_name;
        act.surname = opt.surname;
        if (opt.role) act.role = core::parse_role(*opt.role).value();
        if (kind == lifecycle::DiscoveredAction::Kind::add_alias) {
          act.alias_of = parse_address(opt.user);
        }
        actions.push_back(std::move(act));
      }
      lifecycle::DiscoveryService service(ctx.store(), ctx.clock());
      service.apply(c.id, actions, ctx.actor);
      ctx.out << actions.size() << " address(es) handled\n";
    });
    cmd->add_option("addresses", opt.addresses, "Discovered addresses (all or none are handled)")
        ->required();
    cmd->add_option("--company", opt.company, "Company")->required();
    return cmd;
  };
  auto* create_user = action_verb("create-user", "Create user accounts from discovered addresses",
                                  lifecycle::DiscoveredAction::Kind::create_user);
  create_user->add_option("--first-name", opt.first_name, "First name (one address)");
  create_user->add_option("--surname", opt.surname, "Surname (one address)");
  create_user->add_option("--role", opt.role, "end_user or silent_user (default: the setting)");
  action_verb("create-functional", "Create functional accounts from discovered addresses",
              lifecycle::DiscoveredAction::Kind::create_functional);
  action_verb("mark-invalid", "Mark discovered addresses invalid",
              lifecycle::DiscoveredAction::Kind::mark_invalid);
  auto* add_alias = action_verb("add-alias", "Add discovered addresses as aliases of a user",
                                lifecycle::DiscoveredAction::Kind::add_alias);
  add_alias->add_option("--user", opt.user, "Primary address of the user")->required();

  auto* list = verb(
      *discovery, "list", "List discovered addresses (and those being counted)", action,
      [&ctx, &opt = ctx.discovery_args] {
        const auto c = ctx.company(opt.company);
        const auto all = ctx.store().list_discovered(c.id, {}, opt.search);
        const auto company_settings = ctx.store().discovery_settings(c.id);
        // The suggested alias target by address, as the seed's list shows it.
        auto suggestion = [&](const core::DiscoveredAddress& d) -> std::string {
          if (!d.suggested_alias_of) return {};
          const auto u = ctx.store().user_by_id(*d.suggested_alias_of);
          return u ? u->address.str() : std::string();
        };
        if (ctx.json_output) {
          json j = json::array();
          for (const auto& d : all) {
            json item = d;
            const auto expires = core::expires_at(d, company_settings);
            item["expires_at"] = expires ? json(core::format_iso8601(*expires)) : json(nullptr);
            item["suggested_alias_target"] = suggestion(d);
            j.push_back(item);
          }
          return ctx.print_json(j);
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& d : all) {
          const auto expires = core::expires_at(d, company_settings);
          rows.push_back({d.address.str(), core::format_iso8601(d.first_seen),
                          std::to_string(d.clean_inbound.size()),
                          std::to_string(d.outbound_messages),
                          d.discovered_at ? core::format_iso8601(*d.discovered_at) : "(counting)",
                          expires ? core::format_iso8601(*expires) : "", suggestion(d)});
        }
        print_table(
            ctx.out,
            {"ADDRESS", "FIRST SEEN", "INBOUND", "OUTBOUND", "DISCOVERED", "EXPIRES", "ALIAS OF?"},
            rows);
      });
  list->add_option("--company", opt.company, "Company")->required();
  list->add_option("--search", opt.search, "Only addresses with this in them (\"@old.example\")");
  add_json_flag(list, ctx);
}

void invalid_commands(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto& opt = ctx.invalid_args;
  auto* invalid =
      app.add_subcommand("invalid", "Addresses marked invalid (mail to them is rejected)");
  invalid->require_subcommand(1);

  auto* add =
      verb(*invalid, "add", "Mark an address invalid", action, [&ctx, &opt = ctx.invalid_args] {
        auto i = ctx.store().add_invalid(parse_address(opt.address), opt.reason, ctx.actor);
        if (ctx.json_output) return ctx.print_json(i);
        ctx.out << i.address.str() << " marked invalid\n";
      });
  add->add_option("address", opt.address, "Address")->required();
  add->add_option("--reason", opt.reason, "Why (shown in the list)");
  add_json_flag(add, ctx);

  auto* list =
      verb(*invalid, "list", "List invalid addresses", action, [&ctx, &opt = ctx.invalid_args] {
        const auto all = ctx.store().list_invalid(ctx.company(opt.company).id, {}, opt.search);
        if (ctx.json_output) return ctx.print_json(all);
        std::vector<std::vector<std::string>> rows;
        for (const auto& i : all)
          rows.push_back({i.address.str(), core::format_iso8601(i.created_at), i.reason});
        print_table(ctx.out, {"ADDRESS", "SINCE", "REASON"}, rows);
      });
  list->add_option("--company", opt.company, "Company")->required();
  list->add_option("--search", opt.search, "Only those with this in the address or the reason");
  add_json_flag(list, ctx);

  auto* create =
      verb(*invalid, "create-user", "Create a user for an invalid address (fixes it)", action,
           [&ctx, &opt = ctx.invalid_args] {
             lifecycle::DiscoveryService service(ctx.store(), ctx.clock());
             std::optional<core::Role> role;
             if (opt.role) role = core::parse_role(*opt.role).value();
             auto u = service.create_user_from_invalid(parse_address(opt.address), opt.first_name,
                                                       opt.surname, role, ctx.actor);
             if (ctx.json_output) return ctx.print_json(u);
             ctx.out << "user " << u.address.str() << " created\n";
           });
  create->add_option("address", opt.address, "Invalid address")->required();
  create->add_option("--first-name", opt.first_name, "First name");
  create->add_option("--surname", opt.surname, "Surname");
  create->add_option("--role", opt.role, "Role (default: the discovery default role)");
  add_json_flag(create, ctx);

  auto* remove =
      verb(*invalid, "remove", "Remove an address from the invalid list", action,
           [&ctx, &opt = ctx.invalid_args] {
             auto i = ctx.store().find_invalid(parse_address(opt.address));
             if (!i) throw Failure(ErrorCode::not_found, opt.address + " is not marked invalid");
             ctx.store().remove_invalid(i->id, ctx.actor);
             ctx.out << i->address.str() << " is no longer invalid\n";
           });
  remove->add_option("address", opt.address, "Address")->required();
}

// The scheduler lease for a run by hand: taken for a term, given up at the end. Without it
// (held elsewhere), a clear refusal naming the holder, unless forced.
class ManualLease {
 public:
  ManualLease(store::Store& store, bool force) : store_(store), holder_(lease_holder_id()) {
    const auto now = core::SystemClock().now();
    if (take_lease(store_, kSchedulerLease, holder_, now, kTerm).held) {
      held_ = true;
    } else if (!force) {
      throw Failure(ErrorCode::conflict,
                    "the scheduler lease is held by " +
                        store_.lease_holder(kSchedulerLease, now).value_or("another process") +
                        " (a running serve does this work on schedule); --force runs it here "
                        "as well");
    }
  }
  ~ManualLease() {
    try {
      if (held_) store_.release_lease(kSchedulerLease, holder_);
    } catch (const std::exception&) {  // it runs out after its term
    }
  }
  ManualLease(const ManualLease&) = delete;
  ManualLease& operator=(const ManualLease&) = delete;

 private:
  static constexpr std::chrono::minutes kTerm{15};
  store::Store& store_;
  std::string holder_;
  bool held_ = false;
};

void maintenance_commands(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto& opt = ctx.maintain_args;
  auto* maintain = verb(
      app, "maintain",
      "Run the maintenance job once (expiry, the day's licensed users; on Thursdays the weekly "
      "reports)",
      action, [&ctx, &opt = ctx.maintain_args] {
        ctx.fix_time(opt.at);
        const auto now = ctx.clock().now();
        // The work serve does under the scheduler lease, so two runs never send one report
        // twice; taken on the real clock whatever --at says, and given up at the end.
        ManualLease lease(ctx.store(), opt.force);
        boost::asio::io_context io;
        smtp::ClientPool pool(io, ctx.config.relay);
        lifecycle::DiscoveryService discovery(ctx.store(), ctx.clock());
        reports::Maintenance m(ctx.store(), discovery, pool, ctx.config.maintenance,
                               io.get_executor());
        reports::MaintenanceResult result;
        boost::asio::co_spawn(
            io, [&]() -> boost::asio::awaitable<void> { result = co_await m.run(now); },
            boost::asio::detached);
        io.run();
        if (ctx.json_output) {
          json j = {{"at", core::format_iso8601(now)},
                    {"reports_sent", result.reports_sent},
                    {"reports_failed", result.reports_failed},
                    {"audit_pruned", result.audit_pruned},
                    {"mail_log_pruned", result.mail_log_pruned},
                    {"usage_counted", result.usage.size()},
                    {"expired", json::array()}};
          for (const auto& [a, o] : result.expiry.changed) {
            j["expired"].push_back({{"address", a}, {"outcome", lifecycle::to_string(o)}});
          }
          return ctx.print_json(j);
        }
        ctx.out << "maintenance at " << core::format_iso8601(now) << "\n";
        for (const auto& [a, o] : result.expiry.changed) {
          ctx.out << "  expired " << a << " -> " << lifecycle::to_string(o) << "\n";
        }
        for (const auto& c : result.reports_sent) ctx.out << "  report sent: " << c << "\n";
        for (const auto& c : result.reports_failed) ctx.out << "  report failed: " << c << "\n";
        if (result.audit_pruned) {
          ctx.out << "  audit events removed (retention): " << result.audit_pruned << "\n";
        }
        if (result.mail_log_pruned) {
          ctx.out << "  mail log entries removed (retention): " << result.mail_log_pruned << "\n";
        }
        ctx.out << "  licensed users counted: " << result.usage.size() << " compan"
                << (result.usage.size() == 1 ? "y" : "ies") << "\n";
        if (!result.reports_failed.empty()) {
          throw Failure(ErrorCode::unavailable,
                        std::to_string(result.reports_failed.size()) +
                            " report(s) not sent; they are retried on the next run");
        }
      });
  maintain->add_option("--at", opt.at, "The instant to run for (ISO-8601; default: now)");
  maintain->add_flag("--force", opt.force,
                     "Run even while another process (a running serve) holds the scheduler "
                     "lease");
  add_json_flag(maintain, ctx);

  auto* report = app.add_subcommand("report", "Weekly SMTP Discovery reports");
  report->require_subcommand(1);
  auto* preview = verb(*report, "preview", "Print the next weekly report of a company", action,
                       [&ctx, &opt = ctx.maintain_args] {
                         ctx.fix_time(opt.at);
                         const auto c = ctx.company(opt.company);
                         const auto r = reports::build_report(
                             ctx.store(), c, reports::next_report_day(ctx.clock().now()));
                         if (ctx.json_output) return ctx.print_json(reports::preview_json(r));
                         std::string to;
                         for (const auto& x : r.recipients) to += (to.empty() ? "" : ", ") + x;
                         ctx.out << "To: " << (to.empty() ? "(no tech contact)" : to) << "\n\n"
                                 << reports::render_text(r);
                       });
  preview->add_option("--company", opt.company, "Company")->required();
  preview->add_option("--at", opt.at, "Pretend it is this instant (ISO-8601)");
  add_json_flag(preview, ctx);
}

// A progress bar on stderr for long imports, only when stderr is a terminal.
class Progress {
 public:
  Progress(std::ostream& err, const std::string& file) : err_(err), file_(file) {
    terminal_ = isatty(STDERR_FILENO) != 0;
    std::error_code ec;
    size_ = std::filesystem::file_size(file, ec);
    if (ec) size_ = 0;
  }
  void update(std::size_t rows, std::streamoff pos) {
    if (!terminal_) return;
    const double done =
        size_ && pos >= 0 ? static_cast<double>(pos) / static_cast<double>(size_) : 0.0;
    const int width = 30, filled = static_cast<int>(done * width);
    err_ << "\r" << file_ << " [" << std::string(static_cast<std::size_t>(filled), '#')
         << std::string(static_cast<std::size_t>(width - filled), '.') << "] "
         << static_cast<int>(done * 100) << "% " << rows << " rows" << std::flush;
  }
  void done() {
    if (terminal_) err_ << "\r\033[K" << std::flush;
  }

 private:
  std::ostream& err_;
  std::string file_;
  bool terminal_ = false;
  std::uintmax_t size_ = 0;
};

void import_commands(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto& opt = ctx.import_args;
  auto* import = app.add_subcommand("import", "Import users");
  import->require_subcommand(1);
  auto* csv = verb(
      *import, "csv", "Import users from a CSV file (preview with --dry-run)", action,
      [&ctx, &opt = ctx.import_args] {
        const auto c = ctx.company(opt.company);
        std::ifstream in(opt.file, std::ios::binary);
        if (!in) throw Failure(ErrorCode::invalid_argument, "cannot read '" + opt.file + "'");
        PlanOutput output(ctx.json_output);
        Progress progress(ctx.err, opt.file);
        directory::csv::ImportMode mode;
        mode.apply = !opt.dry_run;
        mode.delete_missing = opt.delete_missing;
        mode.force = opt.force;
        mode.skip_invalid = opt.skip_invalid;
        auto run = directory::csv::import_users(
            ctx.store(), c.id, in, mode,
            {[&](const core::PlanItem& i) { output.item(i); },
             [&](const directory::csv::RowError& e) { output.row_error(e.line, e.message); },
             [&](std::size_t rows, std::streamoff pos) { progress.update(rows, pos); }});
        if (!run) throw Failure(run.error());
        const auto& [result, rows, bad_rows, unknown_columns, applied, separator] = *run;
        progress.done();

        std::vector<std::string> notes;
        if (separator != ',') {
          notes.push_back(std::string("columns separated by ") +
                          (separator == ';' ? "semicolons" : "tabs"));
        }
        for (const auto& col : unknown_columns)
          notes.push_back("unknown column '" + col + "' ignored");
        output.print(ctx.out, core::Source::csv, result,
                     std::string(applied ? "applied" : "plan") + " for " + c.name + " from " +
                         opt.file + " (" + std::to_string(rows) + " rows read)",
                     notes,
                     {{"rows", rows}, {"unknown_columns", unknown_columns}, {"applied", applied}});
        // A preview fails as the import would (a script may check a file so): after the plan.
        if (bad_rows > 0 && !opt.skip_invalid) {
          throw Failure(ErrorCode::invalid_argument, std::to_string(bad_rows) +
                                                         " bad row(s); nothing " +
                                                         (opt.dry_run ? "would be" : "was") +
                                                         " imported (fix them, or --skip-invalid)");
        }
        if (opt.dry_run && result.guard && !opt.force) {
          throw Failure(ErrorCode::invalid_argument,
                        "the deletion guard would refuse this import: " + *result.guard +
                            " (--force to apply it anyway)");
        }
      });
  csv->add_option("file", opt.file, "CSV file: email, first_name, surname, role, type, aliases")
      ->required();
  csv->add_option("--company", opt.company, "Company")->required();
  csv->add_flag("--dry-run", opt.dry_run, "Print the plan; change nothing");
  csv->add_flag("--delete-missing", opt.delete_missing,
                "Delete CSV-imported users that are not in the file");
  csv->add_flag("--skip-invalid", opt.skip_invalid, "Import the good rows even when some are bad");
  csv->add_flag("--force", opt.force, "Apply even when the deletion guard refuses");
  add_json_flag(csv, ctx);
}

// `sync ldap|azure ...`: a company's directory sync (directory/sync_service.hpp).
void sync_commands(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto* sync = app.add_subcommand("sync", "Directory sync: Active Directory (LDAP), Azure AD");
  sync->require_subcommand(1);
  auto& opt = ctx.sync_args;
  for (const auto kind : {core::Source::ldap, core::Source::azure}) {
    const std::string name(core::to_string(kind));
    auto* group = sync->add_subcommand(
        name, kind == core::Source::ldap ? "Active Directory / LDAP sync" : "Azure AD sync");
    group->require_subcommand(1);
    auto company = [&ctx, &opt] { return ctx.company(opt.company); };

    auto* configure = verb(
        *group, "configure", "Create or change the sync settings", action,
        [&ctx, &opt, kind, company] {
          json settings = json::object(), options = json::object();
          const std::set<std::string> option_keys = {"default_role",
                                                     "include_active",
                                                     "include_disabled",
                                                     "include_functional",
                                                     "include_security_groups",
                                                     "include_hidden",
                                                     "create",
                                                     "update",
                                                     "delete_removed",
                                                     "max_delete_count",
                                                     "max_delete_share",
                                                     "frequency_hours"};
          for (const auto& a : opt.assignments) {
            const auto eq = a.find('=');
            if (eq == std::string::npos || eq == 0) {
              throw Failure(ErrorCode::invalid_argument, "'" + a + "' is not key=value", "set");
            }
            const auto key = a.substr(0, eq), text = a.substr(eq + 1);
            auto value = json::parse(text, nullptr, false);
            if (value.is_discarded() || value.is_object() || value.is_array()) value = text;
            if (key == "frequency_hours" && text == "manual") value = nullptr;
            (option_keys.count(key) ? options : settings)[key] = value;
          }
          std::optional<std::string> secret;
          if (opt.secret_stdin) {
            secret = first_line(std::cin);
          } else if (!opt.secret_file.empty()) {
            std::ifstream in(opt.secret_file, std::ios::binary);
            if (!in)
              throw Failure(ErrorCode::invalid_argument, "cannot read '" + opt.secret_file + "'");
            secret = first_line(in);
          }
          const auto c = company();
          ctx.syncs().configure(c.id, kind, settings, options, secret, ctx.actor);
          const auto status = ctx.syncs().status(c.id, kind);
          if (ctx.json_output) return ctx.print_json(status);
          ctx.out << std::string(core::to_string(kind)) << " sync of " << c.name << " saved\n"
                  << status.dump(2) << "\n";
        });
    configure->add_option("--company", opt.company, "Company")->required();
    configure->add_option("--set", opt.assignments,
                          "key=value: a setting (host, port, security, ...) or an option "
                          "(include_disabled, delete_removed, frequency_hours, ...)");
    configure->add_flag("--secret-stdin", opt.secret_stdin,
                        "Read the bind password / client secret from the first line of stdin");
    configure->add_option("--secret-file", opt.secret_file,
                          "Read the bind password / client secret from a file");
    add_json_flag(configure, ctx);

    auto* test = verb(*group, "test", "Connect and authenticate", action, [&ctx, kind, company] {
      const auto info = ctx.syncs().test(company().id, kind);
      if (ctx.json_output) return ctx.print_json(info);
      ctx.out << "connected: " << info.dump() << "\n";
    });
    test->add_option("--company", opt.company, "Company")->required();
    add_json_flag(test, ctx);

    auto* preview = verb(
        *group, "preview", "Search Now: what a sync would do (changes nothing)", action,
        [&ctx, &opt, kind, company] {
          const auto c = company();
          PlanOutput output(ctx.json_output);
          const auto p = ctx.syncs().preview(
              c.id, kind, [&](const core::PlanItem& i) { output.item(i); }, opt.full);
          std::vector<std::string> notes;
          for (const auto& x : p.rejected) notes.push_back("rejected " + x.what + ": " + x.reason);
          output.print(ctx.out, kind, p.result,
                       "plan for " + c.name + " from " + std::string(core::to_string(kind)), notes,
                       {{"rejected", directory::rejected_json(p.rejected)}, {"info", p.info}});
        });
    preview->add_option("--company", opt.company, "Company")->required();
    preview->add_flag("--full", opt.full,
                      "Plan from the whole directory (as `run --full` applies it), even where the "
                      "next run would read changes only");
    add_json_flag(preview, ctx);

    auto* run =
        verb(*group, "run", "Sync now: read the directory and apply the plan", action,
             [&ctx, &opt, kind, company] {
               const auto c = company();
               const auto report = ctx.syncs().run(c.id, kind, opt.force, opt.full);
               const auto& r = report.result;
               if (ctx.json_output) {
                 return ctx.print_json({{"created", r.creates},
                                        {"updated", r.updates},
                                        {"deleted", r.deletes},
                                        {"skipped", r.skips},
                                        {"rejected", directory::rejected_json(report.rejected)},
                                        {"info", report.info}});
               }
               ctx.out << "synced " << c.name << " from " << std::string(core::to_string(kind))
                       << ": " << r.creates << " created, " << r.updates << " updated, "
                       << r.deletes << " deleted, " << r.skips << " skipped, "
                       << report.rejected.size() << " rejected\n";
             });
    run->add_option("--company", opt.company, "Company")->required();
    run->add_flag("--force", opt.force, "Apply even when the deletion guard refuses");
    run->add_flag("--full", opt.full,
                  "Read the whole directory, even where the last full read is recent");
    add_json_flag(run, ctx);

    auto* status = verb(
        *group, "status", "Settings, schedule, last success and last error", action,
        [&ctx, kind, company] {
          const auto st = ctx.syncs().status(company().id, kind);
          if (ctx.json_output) return ctx.print_json(st);
          auto text = [](const json& v) { return v.is_null() ? std::string("never") : v.dump(); };
          auto result_text = [](const json& r) -> std::string {
            if (!r.is_object()) return "none";
            auto n = [&r](const char* k) { return std::to_string(r.value(k, 0)); };
            return n("create") + " created, " + n("update") + " updated, " + n("delete") +
                   " deleted, " + n("skip") + " skipped, " + n("rejected") + " rejected";
          };
          ctx.out << "last success: " << text(st["last_success"]) << "\n"
                  << "last attempt: " << text(st["last_attempt"]) << "\n"
                  << "last error: "
                  << (st["last_error"].is_null() ? "none" : st["last_error"].get<std::string>())
                  << "\n"
                  << "last result: " << result_text(st["last_result"]) << "\n"
                  << "last full read: " << text(st["last_full_read"]) << "\n"
                  << "next read: " << st["next_read"].get<std::string>() << "\n"
                  << "frequency: " << text(st["options"]["frequency_hours"]) << " hours\n"
                  << "settings: " << st["settings"].dump() << "\n"
                  << "options: " << st["options"].dump() << "\n";
        });
    status->add_option("--company", opt.company, "Company")->required();
    add_json_flag(status, ctx);

    auto* remove = verb(*group, "remove", "Remove the sync settings (users stay)", action,
                        [&ctx, kind, company] {
                          ctx.store().remove_directory_sync(company().id, kind, ctx.actor);
                          ctx.out << "removed\n";
                        });
    remove->add_option("--company", opt.company, "Company")->required();
  }

  auto* list = verb(
      *sync, "list", "Every company's syncs: schedule, last success, failing or not", action,
      [&ctx, &opt] {
        std::optional<core::Id> only;
        if (!opt.company.empty()) only = ctx.company(opt.company).id;
        const auto all = ctx.syncs().overview(only);
        if (ctx.json_output) {
          json items = json::array();
          for (const auto& s : all) items.push_back(directory::to_json_value(s));
          return ctx.print_json(items);
        }
        std::vector<std::vector<std::string>> rows;
        for (const auto& s : all) {
          rows.push_back({s.company, std::string(core::to_string(s.kind)),
                          s.frequency_hours ? std::to_string(*s.frequency_hours) + "h" : "by hand",
                          s.last_success ? core::format_iso8601(*s.last_success) : "never",
                          s.full_next ? "full" : "incremental",
                          s.failing() ? "FAILING: " + s.last_error : "ok"});
        }
        print_table(ctx.out, {"COMPANY", "KIND", "EVERY", "LAST SUCCESS", "NEXT READ", "STATE"},
                    rows);
      });
  list->add_option("--company", opt.company, "Only this company's");
  add_json_flag(list, ctx);
}

// Where password links point: the web UI as configured; throws when it is not known.
std::string login_link_base(const Context& ctx) {
  const auto base = ctx.config.admin_base_url(ctx.config.admin_listen.port);
  if (base.empty()) {
    throw Failure(ErrorCode::invalid_argument,
                  "no link can be mailed: set [admin] public_url (where users reach the web UI)");
  }
  return base;
}

// Mails a password link for the login through [reports] relay, as serve does (an invitation:
// 7 days, else 1 hour); throws when no link can be made or the relay does not take it.
void mail_login_link(Context& ctx, const store::Login& login, bool invitation) {
  admin::PasswordMail mail{.from = ctx.config.maintenance.from,
                           .hostname = ctx.config.inbound.hostname};
  const auto base = login_link_base(ctx);
  admin::Auth auth(ctx.store(), ctx.clock());
  const auto token =
      auth.issue_password_link(login, invitation ? mail.invitation_ttl : mail.reset_ttl);
  const auto message = admin::password_link_message(
      mail, login.email, admin::password_link_url(base, token), invitation, ctx.clock().now());
  boost::asio::io_context io;
  smtp::ClientPool pool(io, ctx.config.relay);
  const std::vector<std::string> to{login.email};
  std::string error;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        error = co_await reports::submit(pool, ctx.config.maintenance.relay,
                                         ctx.config.maintenance.from, to, message);
      },
      boost::asio::detached);
  io.run();
  if (!error.empty()) throw Failure(ErrorCode::unavailable, "link not mailed: " + error);
}

// A login's password: the first line of stdin, by the rule every login's follows.
std::string password_from_stdin() {
  const auto line = first_line(std::cin);
  admin::check_password(line);
  return line;
}

// `operator add` and `login add|list|password`: who may log in to the admin API and UI.
void login_commands(CLI::App& app, Context& ctx, std::function<void()>& action) {
  auto& opt = ctx.login_args;
  auto* op = app.add_subcommand("operator", "Operators: every company");
  op->require_subcommand(1);
  auto* op_add =
      verb(*op, "add", "Add an operator (password: first line of stdin)", action, [&ctx, &opt] {
        store::Login l;
        l.email = opt.email;
        l.role = store::LoginRole::operator_role;
        l.password_hash = admin::hash_password(password_from_stdin());
        ctx.store().add_login(l, ctx.actor);
        ctx.out << "operator " << core::ascii_lower(opt.email) << " added\n";
      });
  op_add->add_option("email", opt.email, "Login email")->required();

  auto* login = app.add_subcommand("login", "Logins of company administrators and end users");
  login->require_subcommand(1);
  auto* add =
      verb(*login, "add",
           "Add a login (password: first line of stdin). company_admin: --company; "
           "end_user: the email is the user's address (end users only)",
           action, [&ctx, &opt] {
             const auto role = store::parse_login_role(opt.role);
             if (!role || *role == store::LoginRole::operator_role) {
               throw Failure(ErrorCode::invalid_argument, "role must be company_admin or end_user",
                             "role");
             }
             const auto company = *role == store::LoginRole::company_admin
                                      ? std::optional<core::Id>(ctx.company(opt.company).id)
                                      : std::nullopt;
             // Invited: a random first password, known to nobody; the mailed link replaces it.
             if (opt.invite) login_link_base(ctx);  // no link possible: no login made either
             const auto l = ctx.store().add_login(
                 admin::company_login(ctx.store(), opt.email, *role, company,
                                      opt.invite ? admin::random_token() : password_from_stdin()),
                 ctx.actor);
             ctx.out << opt.role << " login " << l.email << " added\n";
             if (opt.invite) {
               mail_login_link(ctx, l, true);
               ctx.out << "invitation mailed to " << l.email << "\n";
             }
           });
  add->add_option("email", opt.email, "Login email")->required();
  add->add_flag("--invite", opt.invite,
                "No password on stdin: mail the login a link to choose one (7 days; through "
                "[reports] relay, to [admin] public_url)");
  add->add_option("--role", opt.role, "company_admin or end_user")->capture_default_str();
  add->add_option("--company", opt.company, "The company (company_admin)");
  auto* password = verb(*login, "password", "Set a login's password (first line of stdin)", action,
                        [&ctx, &opt] {
                          const auto l = ctx.store().find_login(opt.email);
                          if (!l)
                            throw Failure(ErrorCode::not_found, "no login " + opt.email, "email");
                          ctx.store().set_login_password(
                              l->id, admin::hash_password(password_from_stdin()), ctx.actor);
                          ctx.out << "password changed; sessions ended\n";
                        });
  password->add_option("email", opt.email, "Login email")->required();
  auto* invite = verb(*login, "invite",
                      "Mail a login a link that sets its password (7 days), as an invitation",
                      action, [&ctx, &opt] {
                        const auto l = ctx.store().find_login(opt.email);
                        if (!l) {
                          throw Failure(ErrorCode::not_found, "no login " + opt.email, "email");
                        }
                        mail_login_link(ctx, *l, true);
                        ctx.out << "link mailed to " << l->email << "\n";
                      });
  invite->add_option("email", opt.email, "Login email")->required();
  auto* remove = verb(*login, "remove", "Remove a login (its sessions end)", action, [&ctx, &opt] {
    const auto l = ctx.store().find_login(opt.email);
    if (!l) throw Failure(ErrorCode::not_found, "no login " + opt.email, "email");
    ctx.store().remove_login(l->id, ctx.actor);
    ctx.out << "login " << l->email << " removed\n";
  });
  remove->add_option("email", opt.email, "Login email")->required();
  auto* list = verb(*login, "list", "List logins", action, [&ctx] {
    json out = json::array();
    std::vector<std::vector<std::string>> rows;
    for (const auto& l : ctx.store().list_logins()) {
      const auto company = l.company_id ? ctx.company_name(*l.company_id) : std::string();
      out.push_back({{"email", l.email}, {"role", store::to_string(l.role)}, {"company", company}});
      rows.push_back({l.email, std::string(store::to_string(l.role)), company});
    }
    if (ctx.json_output) return ctx.print_json(out);
    print_table(ctx.out, {"EMAIL", "ROLE", "COMPANY"}, rows);
  });
  add_json_flag(list, ctx);
}

// Logs go to standard error, never standard output: that is the command's own output (its
// JSON included). serve logs at the configured level; any other command only its warnings
// and errors (what serve would tell as info, a command tells by its own output).
void setup_logging(const Config& config, bool serving) {
  auto logger = spdlog::get("mailroster");
  if (!logger) logger = spdlog::stderr_color_mt("mailroster");
  spdlog::set_default_logger(logger);
  if (service_manager::stderr_is_journal()) {
    spdlog::set_formatter(service_manager::journal_formatter());
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  auto level = spdlog::level::from_str(config.log_level);
  if (!serving) level = std::max(level, spdlog::level::warn);
  spdlog::set_level(level);
}

}  // namespace

int run_cli(int argc, char** argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"mailroster: user provisioning for an email security gateway", "mailroster"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mailroster " + version_and_commit());
  Context ctx(out, err);
  std::function<void()> action;

  app.add_option("-c,--config", ctx.config_path, "TOML configuration file (optional)")
      ->envname("MAILROSTER_CONFIG");
  app.add_option("--db", ctx.db_override,
                 "SQLite database file, or PostgreSQL URL (postgresql://...; overrides "
                 "database.path and database.url)");

  int status = 0;
  verb(app, "serve", "Run the gateway service", action, [&ctx, &status] {
    setup_logging(ctx.config, true);
    ctx.serving = true;
    status = serve(ctx.config, ctx.store(), [&ctx]() -> core::Result<Config> {
      auto fresh = load_config(ctx.config_path);
      if (!fresh) return fresh;
      auto config = std::move(fresh).value();
      if (!ctx.db_override.empty()) config.set_database(ctx.db_override);
      return config;
    });
  });
  verb(app, "check-config", "Validate the configuration and exit", action,
       [&ctx] { ctx.out << "configuration OK\n"; });
  // The serve processes on this database (Store::node_seen), and which runs the scheduler.
  auto* node = app.add_subcommand("node", "The serve processes sharing this database");
  node->require_subcommand(1);
  auto* nodes = verb(*node, "list", "List the serve processes on this database", action, [&ctx] {
    const auto items = admin::nodes_json(ctx.store(), ctx.clock().now());
    if (ctx.json_output) return ctx.print_json(items);
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : items) {
      rows.push_back({n["host"], n["version"], n["started_at"],
                      n["alive"] ? "alive" : "gone since " + n["seen_at"].get<std::string>(),
                      n["scheduler"] ? "yes" : "", n["serving"]});
    }
    print_table(ctx.out, {"HOST", "VERSION", "STARTED", "STATE", "SCHEDULER", "SERVING"}, rows);
  });
  add_json_flag(nodes, ctx);

  auto* backup = verb(
      app, "backup", "Copy the SQLite database consistently, while serve runs", action, [&ctx] {
        if (!ctx.config.database_url.empty()) {
          throw Failure(ErrorCode::invalid_argument,
                        "backup copies the embedded SQLite database; back PostgreSQL up with "
                        "pg_dump");
        }
        try {
          const auto r = store::sqlite::backup(ctx.config.database_path, ctx.backup_file);
          ctx.out << "backup of " << ctx.config.database_path << " written to " << ctx.backup_file
                  << " (" << r.users << " users, " << (r.bytes + 1023) / 1024
                  << " KiB); the secrets key " << ctx.config.key_file()
                  << " is not in it: keep a copy of the key apart\n";
        } catch (const store::sql::DbError& e) {
          throw Failure(ErrorCode::internal, std::string("backup failed: ") + e.what());
        }
      });
  backup->add_option("file", ctx.backup_file, "Where the copy goes (replaced when it is complete)")
      ->required();
  company_commands(app, ctx, action);
  domain_commands(app, ctx, action);
  user_commands(app, ctx, action);
  alias_commands(app, ctx, action);
  audit_commands(app, ctx, action);
  mail_log_command(app, ctx, action);
  usage_command(app, ctx, action);
  verify_commands(app, ctx, action);
  discovery_commands(app, ctx, action);
  invalid_commands(app, ctx, action);
  maintenance_commands(app, ctx, action);
  import_commands(app, ctx, action);
  sync_commands(app, ctx, action);
  login_commands(app, ctx, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    err << "error: " << e.what() << " (see --help)\n";
    return 2;
  }

  try {
    ctx.load();
    setup_logging(ctx.config, false);  // serve sets its own level when it starts
    if (action) action();
    return status;
  } catch (const Failure& f) {
    err << "error: " << f.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    err << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace mailroster::app
