// The store over a SQL database (store/sql/database.hpp): SQLite (sqlite::SqliteStore) or
// PostgreSQL (postgres::PostgresStore), one implementation for both. Migrations are applied on
// open. Calls are serialised by a mutex over one connection; each mutation is one transaction.
// A read from a thread that finds the mutex held by another goes to a second connection
// instead.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "store/migrations/migration.hpp"
#include "store/sql/database.hpp"
#include "store/store.hpp"

namespace mailroster::store::sql {

enum class Dialect { sqlite, postgres };

// A database and how to reach it.
struct Backend {
  Dialect dialect = Dialect::sqlite;
  // Opens a new connection (the store opens one, and a second for reads on first need).
  std::function<std::unique_ptr<Database>()> connect;
  const std::vector<Migration>& migrations;
  // false: only one connection ever (a private in-memory SQLite database).
  bool second_reader = true;
};

class SqlStore : public Store {
 public:
  // Connects and brings the schema up to date. Throws core::Failure when the database cannot
  // be reached or its schema is newer than this binary knows.
  SqlStore(Backend backend, const core::Clock& clock);
  ~SqlStore() override;

  // The schema version after migration.
  int schema_version();

  void ping() override;
  void atomically(const std::function<void()>& f) override;

  core::Company add_company(const NewCompany& c, const core::Actor& actor) override;
  std::optional<core::Company> find_company(std::string_view name) override;
  std::optional<core::Company> company_by_id(Id id) override;
  std::vector<core::Company> list_companies() override;
  core::Company update_company(Id id, const CompanyChange& change,
                               const core::Actor& actor) override;
  void remove_company(Id id, bool force, const core::Actor& actor) override;

  core::Domain add_domain(Id company_id, const std::string& name,
                          const core::Destination& destination, const core::Actor& actor) override;
  std::optional<core::Domain> find_domain(std::string_view name) override;
  std::vector<core::Domain> list_domains(std::optional<Id> company_id) override;
  core::Domain set_domain_destination(Id id, const core::Destination& destination,
                                      const core::Actor& actor) override;
  void remove_domain(Id id, bool force, const core::Actor& actor) override;

  core::User add_user(const NewUser& u, const core::Actor& actor) override;
  std::optional<core::User> find_user(const core::Address& address) override;
  std::optional<core::User> user_by_id(Id id) override;
  std::vector<core::User> list_users(const UserFilter& filter) override;
  std::size_t count_users(Id company_id) override;
  std::size_t count_matching_users(const UserFilter& filter) override;
  core::User update_user(Id id, const UserChange& change, const core::Actor& actor) override;
  void remove_user(Id id, const core::Actor& actor) override;
  void record_mail(const std::vector<Id>& users, core::TimePoint at) override;
  std::unordered_map<Id, core::TimePoint> last_mail(const std::vector<Id>& users) override;
  using Store::last_mail;

  core::Alias add_alias(Id user_id, const core::Address& address,
                        const core::Actor& actor) override;
  std::optional<core::Alias> find_alias(const core::Address& address) override;
  std::vector<core::Alias> list_aliases(std::optional<Id> company_id,
                                        std::optional<Id> user_id) override;
  void remove_alias(Id id, const core::Actor& actor) override;
  std::vector<core::Alias> aliases_of(const std::vector<Id>& user_ids) override;
  std::vector<core::Alias> aliases_created(Id company_id, core::TimePoint from,
                                           core::TimePoint before, std::size_t limit) override;
  std::size_t count_aliases_created(Id company_id, core::TimePoint from,
                                    core::TimePoint before) override;
  bool hold_lease(const std::string& name, const std::string& holder, core::TimePoint now,
                  std::chrono::seconds ttl) override;
  void release_lease(const std::string& name, const std::string& holder) override;
  bool lookups_changed() override;
  void tell_nodes(Tally tally, const std::vector<core::TallyCount>& counts) override;
  std::vector<core::TallyCount> heard_from_nodes(Tally tally) override;
  std::optional<std::string> lease_holder(const std::string& name, core::TimePoint now) override;
  void node_seen(const Node& node) override;
  void node_gone(const std::string& id) override;
  std::vector<Node> list_nodes() override;
  bool report_sent(Id company_id, const std::string& week) override;
  void mark_report_sent(Id company_id, const std::string& week,
                        const std::string& recipients) override;

  core::InvalidAddress add_invalid(const core::Address& address, const std::string& reason,
                                   const core::Actor& actor) override;
  std::optional<core::InvalidAddress> find_invalid(const core::Address& address) override;
  using Store::count_invalid;
  using Store::list_invalid;
  std::vector<core::InvalidAddress> list_invalid(Id company_id, Window window,
                                                 std::string_view search) override;
  std::size_t count_invalid(Id company_id, std::string_view search) override;
  void remove_invalid(Id id, const core::Actor& actor) override;

  core::DiscoveredAddress save_discovered(const core::DiscoveredAddress& d,
                                          const core::Actor& actor) override;
  std::optional<core::DiscoveredAddress> find_discovered(const core::Address& address) override;
  using Store::count_discovered;
  using Store::list_discovered;
  std::vector<core::DiscoveredAddress> list_discovered(Id company_id, Window window,
                                                       std::string_view search) override;
  std::size_t count_discovered(Id company_id, std::string_view search) override;
  void remove_discovered(Id id, const core::Actor& actor) override;

  std::unordered_map<std::string, std::optional<Id>> holders(
      const std::vector<std::string_view>& address_keys) override;
  core::CompanyView sync_view(Id company_id, const std::vector<std::string>& address_keys,
                              const std::vector<Id>& user_ids) override;
  std::vector<std::pair<std::string, Id>> source_ids(Id company_id, core::Source source) override;
  std::vector<Id> user_ids(Id company_id, core::Source source) override;
  void apply_plan(const core::Plan& plan, const core::Actor& actor) override;

  std::optional<DirectorySync> directory_sync(Id company_id, core::Source kind) override;
  std::vector<DirectorySync> directory_syncs(std::optional<Id> company_id) override;
  void save_directory_sync(const DirectorySync& sync,
                           const std::optional<std::string>& sealed_secret,
                           const core::Actor& actor) override;
  void remove_directory_sync(Id company_id, core::Source kind, const core::Actor& actor) override;
  std::optional<int> directory_sync_hours(Id company_id) override;
  void record_sync_outcome(Id company_id, core::Source kind, core::TimePoint at,
                           const SyncOutcome& outcome) override;

  Login add_login(const Login& login, const core::Actor& actor) override;
  std::optional<Login> find_login(std::string_view email) override;
  std::optional<Login> login_by_id(Id id) override;
  std::vector<Login> list_logins() override;
  void remove_login(Id id, const core::Actor& actor) override;
  void set_login_password(Id id, const std::string& password_hash,
                          const core::Actor& actor) override;
  void add_session(const Session& session) override;
  std::optional<Session> find_session(const std::string& token_hash, core::TimePoint now) override;
  void remove_session(const std::string& token_hash) override;
  void add_password_reset(const std::string& token_hash, Id login_id,
                          core::TimePoint expires_at) override;
  std::optional<Id> take_password_reset(const std::string& token_hash,
                                        core::TimePoint now) override;

  AddressOwner resolve(const core::Address& address) override;

  core::DiscoverySettings discovery_settings(Id company_id) override;
  void set_discovery_settings(Id company_id, const core::DiscoverySettings& s,
                              const core::Actor& actor) override;

  void add_mail_log(const std::vector<core::MailLogEntry>& entries) override;
  std::vector<core::MailLogEntry> list_mail_log(const MailLogFilter& filter) override;
  std::size_t count_mail_log(const MailLogFilter& filter) override;
  std::size_t prune_mail_log(core::TimePoint before) override;
  std::vector<core::LicenseUsage> record_license_usage(core::TimePoint now) override;
  std::vector<core::LicenseUsage> license_usage(const UsageFilter& filter) override;

  std::vector<core::AuditEvent> list_audit(const AuditFilter& filter) override;
  std::size_t count_audit(const AuditFilter& filter) override;
  std::size_t prune_audit(core::TimePoint before) override;

 private:
  struct Impl;
  // Runs a read, f(Impl&), on the main connection; or, while another thread holds that one (a
  // directory sync or an import, for seconds or minutes), on a second connection of its own,
  // which reads the last committed state (SQLite's WAL): the admin API, its logins and the
  // maintenance jobs do not wait for a sync to finish. A thread inside atomically() reads
  // through the main connection, its own uncommitted writes included.
  template <class F>
  auto read(F&& f);
  // A COUNT(*) with its parameters bound by `bind`; or taking the company (or nothing) as ?1.
  std::size_t count_of(std::string_view sql, const std::function<void(Statement&)>& bind);
  std::size_t count_of(std::string_view sql, std::optional<Id> company_id);
  // Removes the rows of `table` (with id and at) from before `before`; how many.
  std::size_t prune(std::string_view table, core::TimePoint before);
  Backend backend_;
  std::unique_ptr<Impl> impl_;
  std::uint64_t lookups_seen_ = 0;  // lookups_changed(): the main connection's change_count
  std::string node_;                // tell_nodes(): who sent a report, so that its sender skips it
  std::mutex reader_mutex_;
  std::unique_ptr<Impl> reader_;  // opened on first need
};

}  // namespace mailroster::store::sql
