// The one storage interface of mailroster. Every implementation (sqlite/, later postgres/)
// keeps these promises:
//  - an address (by its case-insensitive key) is at most one of user / alias / invalid,
//    enforced by the database itself, not only by the code;
//  - every mutation is one transaction together with its audit event(s);
//  - a failed mutation changes nothing;
//  - expected failures throw core::Failure (not_found, conflict, invalid_argument);
//    storage failures throw core::Failure with ErrorCode::internal.
// Lookups return std::nullopt for "not there". Times come from the injected Clock.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/model.hpp"
#include "core/sync_planner.hpp"

namespace mailroster::store {

using core::Id;

struct NewCompany {
  std::string name;
  std::string tech_contact;
  std::string admin_contact;
  std::vector<core::Cidr> relay_networks;
};

struct CompanyChange {
  std::optional<std::string> tech_contact;
  std::optional<std::string> admin_contact;
  std::optional<std::vector<core::Cidr>> relay_networks;
};

struct NewUser {
  core::Address address;
  std::string first_name;
  std::string surname;
  core::Role role = core::Role::end_user;
  core::Source source = core::Source::manual;
  std::string source_id;
};

struct UserChange {
  std::optional<core::Address> address;
  std::optional<std::string> first_name;
  std::optional<std::string> surname;
  std::optional<core::Role> role;
};

struct UserFilter {
  std::optional<Id> company_id;
  std::optional<core::Role> role;
  std::optional<core::Source> source;
  std::string search;  // substring of address, an alias, first name or surname (any case)
  // Only users whose address has this local part (any case), in any domain; "": all. A range
  // of the index by company and address key: alias detection asks it of a million-user company.
  std::string local_part;
  std::optional<core::TimePoint> created_from;  // created at or after
  std::optional<core::TimePoint> created_before;
  // Only users with no mail since then (record_mail): their last mail, or when they have had
  // none, their creation, is before it. Licensed users nobody writes to any more.
  std::optional<core::TimePoint> no_mail_since;
  // Keyset paging: only the users after this one in the listing's order (company, then
  // address key), so that a page costs the same wherever it starts (for_each_user_page).
  struct Key {
    Id company_id = 0;
    std::string address_key;
  };
  std::optional<Key> after;
  std::size_t limit = 0;  // 0 = no limit
  std::size_t offset = 0;
};

// A window of a list in its order: `offset` items passed over, then at most `limit` (0: all).
struct Window {
  std::size_t limit = 0;
  std::size_t offset = 0;
};

struct AuditFilter {
  std::optional<Id> company_id;
  std::size_t limit = 100;  // 0: no limit
  std::size_t offset = 0;   // events to pass over, newest first
  std::string object;       // only events about this (an address, a domain), any case; "": all
  std::string action;       // only this action ("user.remove"); "": all
};

// The mail log entries a listing selects, newest first.
struct MailLogFilter {
  std::optional<Id> company_id;  // nullopt: every company's (operators)
  // A part of the sender or the recipient, any case; "": all.
  std::string address;
  // A part of the gateway's id of the message (its Received header, its 250 reply) or of the
  // reply (the destination's own id is in it), any case; "": all.
  std::string id;
  std::string result;                     // "delivered", "deferred", "rejected", "spam"; "": all
  std::string direction;                  // "inbound", "outbound"; "": both
  std::optional<core::TimePoint> since;   // at or after
  std::optional<core::TimePoint> before;  // before
  std::size_t limit = 100;                // 0: no limit
  std::size_t offset = 0;
};

// The results and directions the mail log's entries have, and its filters take.
inline const std::vector<std::string> kMailLogResults = {"delivered", "deferred", "rejected",
                                                         "spam"};
inline const std::vector<std::string> kMailLogDirections = {"inbound", "outbound"};

// A mail log filter from its parameters as text, as the CLI's options and the API's query give
// them: address, id, result, direction, since and before (ISO-8601, or a duration before now);
// an empty or missing one selects all. Throws core::Failure (invalid_argument, naming the
// parameter) for a value it cannot take. The company, limit and offset are the caller's.
MailLogFilter mail_log_filter(const std::map<std::string, std::string>& params,
                              core::TimePoint now);

// The days of licensed-user counts a usage report reads: from..to, both included, as
// YYYY-MM-DD (UTC).
struct UsageFilter {
  std::optional<Id> company_id;  // nullopt: every company's (operators)
  std::string from;
  std::string to;
};

// A usage filter from its parameters as text, as the CLI's options and the API's query give
// them: month (YYYY-MM), or from and to (YYYY-MM-DD, to defaulting to from's month's end);
// none: the month of `now`. Throws core::Failure (invalid_argument, naming the parameter) for
// a value it cannot take. The company is the caller's.
UsageFilter usage_filter(const std::map<std::string, std::string>& params, core::TimePoint now);

// One company's licensed users over a report's days (what an operator bills on).
struct CompanyUsage {
  Id company_id = 0;
  std::string company;                   // its name on the last day counted
  std::int64_t peak_users = 0;           // the highest count of any day
  double average_users = 0;              // the mean of the days' highest counts
  core::LicenseUsage last;               // the last day counted
  std::vector<core::LicenseUsage> days;  // each day counted, in order
};

// The companies' usage from LicenseUsage rows ordered by company, then day (as
// Store::license_usage lists them); by company name, then id.
std::vector<CompanyUsage> summarize_usage(std::vector<core::LicenseUsage> rows);

// What an address is to the gateway; the basis of every per-recipient decision.
struct AddressOwner {
  enum class Kind { none, user, alias, invalid, discovered };
  Kind kind = Kind::none;
  Id company_id = 0;
  Id user_id = 0;       // for user and alias
  std::string address;  // as stored
};

// A company's directory sync (LDAP or Azure AD). settings and options are JSON the directory
// layer reads; sealed_secret is the password/secret as sealed by SecretBox, never plain.
struct DirectorySync {
  Id company_id = 0;
  core::Source kind = core::Source::ldap;
  std::string settings;
  std::string options;
  std::optional<int> frequency_hours;  // nullopt: manual only
  std::string sealed_secret;
  std::string state;  // the source's incremental state (AD's USN, Graph's delta link)
  std::optional<core::TimePoint> last_attempt;
  std::optional<core::TimePoint> last_success;
  std::string last_error;   // of the last attempt; empty when it succeeded
  std::string last_result;  // JSON summary of the last successful run
};

struct SyncOutcome {
  bool success = false;
  std::string error;                 // when !success
  std::string result;                // when success
  std::optional<std::string> state;  // new incremental state, when success
};

// A login to the admin API / web UI (see migrations 0004_logins.sql).
enum class LoginRole { operator_role, company_admin, end_user };
std::string_view to_string(LoginRole r);
std::optional<LoginRole> parse_login_role(std::string_view text);

struct Login {
  Id id = 0;
  std::string email;          // lower case
  std::string password_hash;  // argon2id (libsodium crypto_pwhash_str)
  LoginRole role = LoginRole::end_user;
  std::optional<Id> company_id;  // company_admin, end_user
  std::optional<Id> user_id;     // end_user
  core::TimePoint created_at{};
};

struct Session {
  std::string token_hash;
  Id login_id = 0;
  std::string csrf;
  core::TimePoint expires_at{};
};

// The lease whose holder runs directory syncs, expiry and reports (app/lease.hpp).
inline constexpr const char* kSchedulerLease = "scheduler";

// A serve process on the database (Store::node_seen).
struct Node {
  std::string id;  // its scheduler lease name (app/lease.hpp): host:pid:random:place
  std::string host;
  std::string version;  // "0.1.0 (1a2b3c4d5e)"
  std::string serving;  // its listeners: "inbound SMTP 0.0.0.0:25, outbound SMTP ..., ..."
  core::TimePoint started_at;
  core::TimePoint seen_at;
  core::TimePoint expires_at;  // not seen again by then: it stopped without saying so
};

// What the nodes count together (Store::tell_nodes): the harvest guard's unknown recipients
// per SMTP client; failed logins and password mails per client and per email; and what the
// callout caches are to forget (`verify flush`: "address:a@b", "domain:b" or "all", count 1).
enum class Tally { harvest, logins, verify_flushes };

class Store {
 public:
  virtual ~Store() = default;

  // Fails with ErrorCode::unavailable when the database does not answer.
  virtual void ping() = 0;

  // Runs f as one transaction: every Store call f makes commits together, or, when f
  // throws, none does (and the exception goes on). Other callers wait meanwhile.
  virtual void atomically(const std::function<void()>& f) = 0;

  // Companies
  virtual core::Company add_company(const NewCompany& c, const core::Actor& actor) = 0;
  virtual std::optional<core::Company> find_company(std::string_view name) = 0;
  virtual std::optional<core::Company> company_by_id(Id id) = 0;
  virtual std::vector<core::Company> list_companies() = 0;
  virtual core::Company update_company(Id id, const CompanyChange& change,
                                       const core::Actor& actor) = 0;
  // Refuses (conflict) while the company has domains, unless force, which removes the
  // company's domains, users, aliases, invalid and discovered addresses with it.
  virtual void remove_company(Id id, bool force, const core::Actor& actor) = 0;

  // Domains: a domain name belongs to at most one company.
  virtual core::Domain add_domain(Id company_id, const std::string& name,
                                  const core::Destination& destination,
                                  const core::Actor& actor) = 0;
  virtual std::optional<core::Domain> find_domain(std::string_view name) = 0;
  virtual std::vector<core::Domain> list_domains(std::optional<Id> company_id) = 0;
  virtual core::Domain set_domain_destination(Id id, const core::Destination& destination,
                                              const core::Actor& actor) = 0;
  // Refuses (conflict) while addresses of the domain exist, unless force.
  virtual void remove_domain(Id id, bool force, const core::Actor& actor) = 0;

  // Users: the address's domain must be registered; the user joins that domain's company.
  // Adding a user for a discovered or invalid address handles it: the discovered or invalid
  // entry is removed in the same transaction.
  virtual core::User add_user(const NewUser& u, const core::Actor& actor) = 0;
  virtual std::optional<core::User> find_user(const core::Address& address) = 0;
  virtual std::optional<core::User> user_by_id(Id id) = 0;
  virtual std::vector<core::User> list_users(const UserFilter& filter) = 0;
  virtual std::size_t count_users(Id company_id) = 0;
  // How many users list_users(filter) would list without its limit and offset.
  virtual std::size_t count_matching_users(const UserFilter& filter) = 0;
  virtual core::User update_user(Id id, const UserChange& change, const core::Actor& actor) = 0;
  // Removes the user and its aliases.
  virtual void remove_user(Id id, const core::Actor& actor) = 0;
  // These users had mail at `at` (delivered to them or an alias, or sent by them); a user
  // removed meanwhile is passed over, an earlier time never replaces a later one. Not audited.
  virtual void record_mail(const std::vector<Id>& users, core::TimePoint at) = 0;
  // When each of these users last had mail; users with none recorded are not in the answer.
  virtual std::unordered_map<Id, core::TimePoint> last_mail(const std::vector<Id>& users) = 0;
  std::unordered_map<Id, core::TimePoint> last_mail(const std::vector<core::User>& users) {
    std::vector<Id> ids;
    ids.reserve(users.size());
    for (const auto& u : users) ids.push_back(u.id);
    return last_mail(ids);
  }

  // Aliases: in a domain of the user's company.
  virtual core::Alias add_alias(Id user_id, const core::Address& address,
                                const core::Actor& actor) = 0;
  virtual std::optional<core::Alias> find_alias(const core::Address& address) = 0;
  virtual std::vector<core::Alias> list_aliases(std::optional<Id> company_id,
                                                std::optional<Id> user_id) = 0;
  // A company's aliases created in [from, before), by address: the first `limit` (0 = all),
  // and how many there are.
  virtual std::vector<core::Alias> aliases_created(Id company_id, core::TimePoint from,
                                                   core::TimePoint before, std::size_t limit) = 0;
  virtual std::size_t count_aliases_created(Id company_id, core::TimePoint from,
                                            core::TimePoint before) = 0;
  virtual void remove_alias(Id id, const core::Actor& actor) = 0;
  // The aliases of these users, by address.
  virtual std::vector<core::Alias> aliases_of(const std::vector<Id>& user_ids) = 0;

  // Invalid addresses: mail to them is rejected.
  virtual core::InvalidAddress add_invalid(const core::Address& address, const std::string& reason,
                                           const core::Actor& actor) = 0;
  virtual std::optional<core::InvalidAddress> find_invalid(const core::Address& address) = 0;
  // By address; `window` of those whose address or reason has `search` in it (any case; ""
  // all of them).
  virtual std::vector<core::InvalidAddress> list_invalid(Id company_id, Window window,
                                                         std::string_view search) = 0;
  std::vector<core::InvalidAddress> list_invalid(Id company_id, Window window = {}) {
    return list_invalid(company_id, window, "");
  }
  virtual std::size_t count_invalid(Id company_id, std::string_view search) = 0;
  std::size_t count_invalid(Id company_id) { return count_invalid(company_id, ""); }
  virtual void remove_invalid(Id id, const core::Actor& actor) = 0;

  // Discovered addresses: saved whole (insert when id == 0, else update). The moment an
  // address becomes discovered (discovered_at set) is an audit event.
  virtual core::DiscoveredAddress save_discovered(const core::DiscoveredAddress& d,
                                                  const core::Actor& actor) = 0;
  virtual std::optional<core::DiscoveredAddress> find_discovered(const core::Address& address) = 0;
  // By address; `window` of those whose address has `search` in it (any case; "" all).
  virtual std::vector<core::DiscoveredAddress> list_discovered(Id company_id, Window window,
                                                               std::string_view search) = 0;
  std::vector<core::DiscoveredAddress> list_discovered(Id company_id, Window window = {}) {
    return list_discovered(company_id, window, "");
  }
  virtual std::size_t count_discovered(Id company_id, std::string_view search) = 0;
  std::size_t count_discovered(Id company_id) { return count_discovered(company_id, ""); }
  virtual void remove_discovered(Id id, const core::Actor& actor) = 0;

  // Directory sync (core/sync_planner.hpp). The part of a company a batch of entries
  // concerns, by their address keys (primary and alias) and the users their source ids
  // matched (source_ids); without foreign owners (see holders).
  virtual core::CompanyView sync_view(Id company_id, const std::vector<std::string>& address_keys,
                                      const std::vector<Id>& user_ids) = 0;
  // The company's users from `source` that have a source id: (source id, user id). Source ids
  // are matched in memory: an index of them (random GUIDs) made every bulk insert of users
  // several times dearer than all the other indexes together.
  virtual std::vector<std::pair<std::string, Id>> source_ids(Id company_id,
                                                             core::Source source) = 0;
  // Of these address keys, the ones someone holds: by the company of the user or alias that
  // has it, or nullopt for the invalid list.
  virtual std::unordered_map<std::string, std::optional<Id>> holders(
      const std::vector<std::string_view>& address_keys) = 0;
  // The ids of the company's users that came from `source`.
  virtual std::vector<Id> user_ids(Id company_id, core::Source source) = 0;
  // Applies a plan's deletes, updates and creates, in that order (addresses freed earlier
  // can be reused later), as one transaction with one audit event per change. A change that
  // no longer fits (an address taken since the plan was made) fails it all (conflict).
  // Inside atomically() it joins the caller's transaction (no savepoint: bulk speed), so a
  // failure there must end that transaction, as letting the exception leave atomically does.
  virtual void apply_plan(const core::Plan& plan, const core::Actor& actor) = 0;

  // Directory sync settings: saving creates or replaces settings and options (and the
  // sealed secret, unless nullopt: keep the stored one); an audit event without the secret.
  virtual std::optional<DirectorySync> directory_sync(Id company_id, core::Source kind) = 0;
  virtual std::vector<DirectorySync> directory_syncs(std::optional<Id> company_id) = 0;
  virtual void save_directory_sync(const DirectorySync& sync,
                                   const std::optional<std::string>& sealed_secret,
                                   const core::Actor& actor) = 0;
  virtual void remove_directory_sync(Id company_id, core::Source kind,
                                     const core::Actor& actor) = 0;
  // The longest schedule among the company's syncs, in hours (nullopt: none scheduled). A
  // sync every 24 hours turns SMTP Discovery off (core::discovery_active).
  virtual std::optional<int> directory_sync_hours(Id company_id) = 0;
  virtual void record_sync_outcome(Id company_id, core::Source kind, core::TimePoint at,
                                   const SyncOutcome& outcome) = 0;

  // Logins and sessions. add_login refuses (conflict) an email that already logs in.
  virtual Login add_login(const Login& login, const core::Actor& actor) = 0;
  virtual std::optional<Login> find_login(std::string_view email) = 0;
  virtual std::optional<Login> login_by_id(Id id) = 0;
  virtual std::vector<Login> list_logins() = 0;
  virtual void set_login_password(Id id, const std::string& password_hash,
                                  const core::Actor& actor) = 0;
  // Removes a login and its sessions (not_found when there is none).
  virtual void remove_login(Id id, const core::Actor& actor) = 0;
  virtual void add_session(const Session& session) = 0;
  // The session, unless unknown or expired at now.
  virtual std::optional<Session> find_session(const std::string& token_hash,
                                              core::TimePoint now) = 0;
  virtual void remove_session(const std::string& token_hash) = 0;
  // Password links (forgot password, invitations): kept by the hash of their token. Taking one
  // uses it up: the login it is for, unless it is unknown, used or expired at now (expired
  // ones are dropped on the way).
  virtual void add_password_reset(const std::string& token_hash, Id login_id,
                                  core::TimePoint expires_at) = 0;
  virtual std::optional<Id> take_password_reset(const std::string& token_hash,
                                                core::TimePoint now) = 0;

  // What the address is, across users, aliases, invalid and discovered.
  virtual AddressOwner resolve(const core::Address& address) = 0;

  // Whether what the SMTP path reads (companies and their relay networks, domains, users,
  // aliases, invalid addresses, discovery settings, directory sync frequencies; not discovered
  // addresses) may have changed since this store's previous call, by any process or node:
  // true on the first call. Cheap: no round trip to a server (gateway::Lookups asks it before
  // every lookup it answers from memory).
  virtual bool lookups_changed() = 0;

  // Counts the nodes sharing this database tell each other (core::WindowCounts), so that a
  // rate limit holds across them. PostgreSQL only (NOTIFY within this schema): a SQLite file
  // has one node, so nothing is sent or heard. tell_nodes sends what this node counted (one
  // round trip); heard_from_nodes takes what the other nodes sent since its previous call
  // (never this store's own; nothing on the first call, which starts listening; no round
  // trip). A key that is empty, holds a line break or is over 320 bytes is not sent.
  virtual void tell_nodes(Tally tally, const std::vector<core::TallyCount>& counts) = 0;
  virtual std::vector<core::TallyCount> heard_from_nodes(Tally tally) = 0;

  // Discovery settings: the seed's defaults until changed.
  virtual core::DiscoverySettings discovery_settings(Id company_id) = 0;
  virtual void set_discovery_settings(Id company_id, const core::DiscoverySettings& s,
                                      const core::Actor& actor) = 0;

  // Weekly reports: whether the report of `week` went out, and recording that it did.
  // Scheduled work (directory syncs, expiry, reports) runs on one node at a time, the one that
  // holds the lease `name`. Takes or renews it for `holder` until now + ttl when it is free,
  // expired or already the holder's; whether the holder has it now.
  virtual bool hold_lease(const std::string& name, const std::string& holder, core::TimePoint now,
                          std::chrono::seconds ttl) = 0;
  // Gives the lease up (a node stopping), if `holder` has it.
  virtual void release_lease(const std::string& name, const std::string& holder) = 0;
  // Who holds the lease `name` at `now`, if anyone.
  virtual std::optional<std::string> lease_holder(const std::string& name, core::TimePoint now) = 0;

  // The serve processes sharing this database (`node list`): each says it is alive at every
  // scheduler tick (node_seen: inserted or updated; nodes whose expiry passed a day ago are
  // dropped on the way, by a second statement) and that it stopped (node_gone). Not write
  // transactions, like the lease: they do not queue behind another node's import.
  virtual void node_seen(const Node& node) = 0;
  virtual void node_gone(const std::string& id) = 0;
  virtual std::vector<Node> list_nodes() = 0;  // by host, then start

  virtual bool report_sent(Id company_id, const std::string& week) = 0;
  virtual void mark_report_sent(Id company_id, const std::string& week,
                                const std::string& recipients) = 0;

  // The mail log (core::MailLogEntry): written in batches by the gateway, off the SMTP path;
  // an entry of a company removed meanwhile is not kept; one of company 0 (no company's) is,
  // listed with every company's only. Listing: newest first.
  virtual void add_mail_log(const std::vector<core::MailLogEntry>& entries) = 0;
  virtual std::vector<core::MailLogEntry> list_mail_log(const MailLogFilter& filter) = 0;
  // How many entries list_mail_log(filter) would list without its limit and offset.
  virtual std::size_t count_mail_log(const MailLogFilter& filter) = 0;
  // Removes the entries from before `before` ([mail_log] retention), as prune_audit does.
  virtual std::size_t prune_mail_log(core::TimePoint before) = 0;

  // Licensed users per company and day (core::LicenseUsage). record_license_usage counts every
  // company's users at `now` and keeps the counts as that day's (UTC): the last count, and
  // the day's highest; returns the counts it took (day, company and counts; no peak).
  // license_usage lists the days a
  // filter selects, ordered by company, then day; a removed company's days stay.
  virtual std::vector<core::LicenseUsage> record_license_usage(core::TimePoint now) = 0;
  virtual std::vector<core::LicenseUsage> license_usage(const UsageFilter& filter) = 0;

  // Audit trail, newest first.
  virtual std::vector<core::AuditEvent> list_audit(const AuditFilter& filter) = 0;
  // How many events list_audit(filter) would list without its limit and offset.
  virtual std::size_t count_audit(const AuditFilter& filter) = 0;
  // Removes the events from before `before` (the audit retention), oldest first, in batches
  // of their own transactions so that mail flow's writes are not held up; returns how many.
  virtual std::size_t prune_audit(core::TimePoint before) = 0;
};

// The names of a company's domains: the addresses an import or a directory sync may use.
std::set<std::string> domain_names(Store& store, Id company_id);

// The users `filter` lists (at most its limit, 0: all; its offset is not used), handed to `page`
// `page_size` at a time in the listing's order: an export or a listing of a million users holds
// one page in memory, not the million. Each page is its own read: a change made meanwhile may
// show in a later page.
void for_each_user_page(Store& store, UserFilter filter, std::size_t page_size,
                        const std::function<void(const std::vector<core::User>&)>& page);

}  // namespace mailroster::store
