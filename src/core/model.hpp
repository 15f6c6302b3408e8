// The domain model of SPEC.md: companies (tenants), their domains, licensed user accounts and
// their aliases, discovered and invalid addresses, per-company discovery settings and the
// audit trail. Plain values; the rules over them live beside them in core/, storage in store/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/network.hpp"

namespace mailroster::core {

using Id = std::int64_t;

// end_user: quarantine digest and may log in; silent_user: digest, no login;
// functional: a shared mailbox with no person behind it (no login).
enum class Role { end_user, silent_user, functional };
enum class Source { manual, csv, ldap, azure, discovery };

std::string_view to_string(Role role);
std::string_view to_string(Source source);
// As people read them, in the reports mailed to the companies' contacts: "silent user",
// "CSV import" (the web UI names them so too).
std::string_view role_name(Role role);
std::string_view source_name(Source source);
Result<Role> parse_role(std::string_view text);
Result<Source> parse_source(std::string_view text);
inline bool can_log_in(Role role) { return role == Role::end_user; }

struct Company {
  Id id = 0;
  std::string name;
  std::string tech_contact;          // an address, or empty
  std::string admin_contact;         // an address, or empty
  std::vector<Cidr> relay_networks;  // where the company's own mail server sends from
  TimePoint created_at{};
};

// Company names are short identifiers an operator types: letters, digits, '.', '-', '_'.
Result<std::string> validate_company_name(std::string_view name);
// A contact is empty or a valid address; returns the address as stored.
Result<std::string> validate_contact(std::string_view text, std::string_view field);

struct Domain {
  Id id = 0;
  Id company_id = 0;
  std::string name;         // lower case
  Destination destination;  // the company's mail server(s) for this domain, in order
  TimePoint created_at{};
};

struct User {
  Id id = 0;
  Id company_id = 0;
  Address address;
  std::string first_name;
  std::string surname;
  Role role = Role::end_user;
  Source source = Source::manual;
  std::string source_id;  // stable identity in the source directory (objectGUID, Graph id)
  TimePoint created_at{};
  TimePoint updated_at{};
};

struct Alias {
  Id id = 0;
  Id company_id = 0;
  Id user_id = 0;
  Address address;
  TimePoint created_at{};
};

struct InvalidAddress {
  Id id = 0;
  Id company_id = 0;
  Address address;
  std::string reason;
  TimePoint created_at{};
};

// A valid but unlicensed address seen in mail flow.
struct DiscoveredAddress {
  Id id = 0;
  Id company_id = 0;
  Address address;
  TimePoint first_seen{};
  std::vector<TimePoint> clean_inbound;  // one stamp per clean inbound delivery
  int outbound_messages = 0;
  std::optional<TimePoint> discovered_at;  // set when the threshold was reached
  int notifications_sent = 0;
  std::optional<Id> suggested_alias_of;  // user id of an alias candidate
};

// Per-company SMTP Discovery settings; defaults as in seeds/smtp-discovery.txt.
struct DiscoverySettings {
  bool enabled = false;
  Role default_role = Role::silent_user;
  int inbound_threshold = 3;  // clean messages ...
  int window_days = 30;       // ... within this many days
  int notification_weeks = 3;
  bool expired_to_new_user = false;
  bool auto_add_aliases = true;
  bool auto_add_outbound = false;
  bool report_new_users = true;
  bool report_new_aliases = true;
  bool report_include_admin = true;

  friend bool operator==(const DiscoverySettings&, const DiscoverySettings&) = default;
};

// Checks ranges: threshold >= 1, weeks 1..52, default role end_user or silent_user.
std::optional<Error> validate(const DiscoverySettings& s);
// Sets one setting by its name (as in the JSON view: "enabled", "inbound_threshold", ...)
// from text ("true"/"false", a number, a role). Unknown names and bad values are errors.
std::optional<Error> set_setting(DiscoverySettings& s, std::string_view name,
                                 std::string_view value);

// Who made a change: "cli:alice", "api:operator@x", "sync:ldap", "discovery".
struct Actor {
  std::string name;
};

// The actions of the audit trail, each "object.verb": the store writes no other, and a filter
// on another is refused (the API's 400, the CLI's error) rather than finding nothing.
inline constexpr std::string_view kAuditActions[] = {
    "user.add",       "user.update",       "user.remove",    "alias.add",      "alias.remove",
    "discovered.add", "discovered.remove", "invalid.add",    "invalid.remove", "discovery.settings",
    "sync.configure", "sync.remove",       "domain.add",     "domain.update",  "domain.remove",
    "company.add",    "company.update",    "company.remove", "login.add",      "login.password",
    "login.remove"};
bool is_audit_action(std::string_view text);
// The action as given when it is one of kAuditActions; else why not, naming them.
Result<std::string> parse_audit_action(std::string_view text);
// kAuditActions as a line: "user.add, user.update, ...".
std::string audit_action_list();

struct AuditEvent {
  Id id = 0;
  TimePoint at{};
  std::optional<Id> company_id;
  std::string actor;
  std::string action;  // one of kAuditActions
  std::string object;  // the address or name the action was about
  std::string before;  // JSON of the object before, or empty
  std::string after;   // JSON of the object after, or empty
};

// One recipient's fate in one SMTP transaction, as the mail log keeps it for the company's
// administrators (`mailroster mail-log`, the API, the web UI's Mail log page): what the
// gateway answered and why, and which of the destination's servers took the message.
struct MailLogEntry {
  Id id = 0;
  TimePoint at{};
  Id company_id = 0;      // 0: no company's (relay denied), in every company's log only (operators)
  std::string direction;  // "inbound" | "outbound"
  std::string stage;      // where it was decided: "mail" (outbound sender), "rcpt" or "data"
  std::string queue_id;   // the gateway's id of the message ("session.n"); "" before DATA
  std::string client_ip;
  std::string sender;      // "" = <>
  std::string recipient;   // "" at stage "mail"
  std::string result;      // "delivered" | "deferred" | "rejected" | "spam"
  int code = 0;            // the reply the client got
  std::string reply;       // its text, enhanced status code first
  std::string server;      // the destination server that answered the message, if one did
  std::uint64_t size = 0;  // the message's bytes (stage "data")
};

// One company's licensed users (its user accounts: the billable set) on one day, UTC, as the
// maintenance job counted them: the last count of the day, and the day's highest. Kept after
// the company is removed, under the name it had, so that the month it left can still be billed.
struct LicenseUsage {
  std::string day;  // YYYY-MM-DD (UTC)
  Id company_id = 0;
  std::string company;
  std::int64_t users = 0;       // every user account at the day's last count
  std::int64_t peak_users = 0;  // the day's highest count
  std::int64_t end_users = 0;   // of users, at the last count: by role
  std::int64_t silent_users = 0;
  std::int64_t functional = 0;
  std::int64_t from_discovery = 0;  // of users: those SMTP Discovery created
  TimePoint counted_at{};           // the day's last count
};

// A count one node tells the other nodes of its database (core::WindowCounts): events of
// one key (a client address, an email) since its previous report.
struct TallyCount {
  std::string key;
  std::uint32_t count = 0;
  bool operator==(const TallyCount&) const = default;
};

}  // namespace mailroster::core
