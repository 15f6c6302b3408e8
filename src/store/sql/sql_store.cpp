#include "store/sql/sql_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/json.hpp"
#include "core/random.hpp"
#include "core/split.hpp"
#include "store/migrations/migration.hpp"

namespace mailroster::store::sql {

using core::Actor;
using core::Address;
using core::ErrorCode;
using core::Failure;
using core::TimePoint;

namespace {

std::int64_t to_unix(TimePoint t) { return t.time_since_epoch().count(); }
std::optional<std::int64_t> to_unix(const std::optional<TimePoint>& t) {
  return t ? std::optional(to_unix(*t)) : std::nullopt;
}
TimePoint from_unix(std::int64_t s) { return TimePoint{std::chrono::seconds{s}}; }

// The database cannot do it now (gone, its disk full, ...): the caller may try again.
Failure unavailable(const DbError& e) {
  return Failure(ErrorCode::unavailable, std::string("database unavailable: ") + e.what());
}

// A value read back from our own tables; a parse failure here means a corrupt database.
Address stored_address(const std::string& text) {
  auto a = Address::stored(text);
  if (!a) throw Failure(ErrorCode::internal, "corrupt address in database: '" + text + "'");
  return std::move(*a);
}

// A plan's create of an address nobody holds, with the domain it goes to.
struct NewUserRow {
  const core::PlanItem* item;
  Id company_id;
  Id domain_id;
  std::string address;  // item's address as stored (its str(), made once for both statements)
};

// A plan's update of a user's names or role (not its address), NULL for what stays.
struct NameRoleUpdate {
  Id user_id;
  std::optional<std::string> first_name;
  std::optional<std::string> surname;
  std::optional<std::string> role;
};

// An alias nobody holds for a user created by the same plan (named by its address key).
struct NewAliasRow {
  const Address* address;
  const Address* user;
  Id company_id;
  Id domain_id;
};

// A user's or alias's row by its address key: through the key's claim, which names its owner
// (users and aliases have no index of their own on address_key).
constexpr std::string_view kUserByKey =
    "WHERE id = (SELECT owner FROM address_claims WHERE address_key = ? AND kind = 'user')";
constexpr std::string_view kAliasByKey =
    "WHERE id = (SELECT owner FROM address_claims WHERE address_key = ? AND kind = 'alias')";

// A list of keys or ids as rows of one column, c0, for mailroster_rows(?).
template <class T>
auto list_rows(const std::vector<T>& values) {
  return RowsOf(values, std::is_integral_v<T> ? "i" : "t", [](const T& v, int, Cell& out) {
    if constexpr (std::is_integral_v<T>) {
      out.set(static_cast<std::int64_t>(v));
    } else {
      out.set_lasting(std::string_view(v));
    }
  });
}

// A model enum (role, source) as the text the tables hold, or NULL when there is none.
template <class E>
std::optional<std::string> text_of(const std::optional<E>& value) {
  return value ? std::optional<std::string>(core::to_string(*value)) : std::nullopt;
}

template <class T>
std::string json_text(const T& value) {
  return nlohmann::json(value).dump();
}

// A user.add event keeps the new user without what the event's own columns say (the address
// is its object, the company its company, both times its time): a bulk import or sync writes
// one event per user, and these fields were a third of each (audit events were half of the
// database). list_audit puts them back, so a reader sees the whole user as the API shows it.
constexpr const char* kUserAddImplied[] = {"address", "company_id", "created_at", "updated_at"};

std::string user_add_after(const core::User& u) {
  auto j = nlohmann::json(u);
  for (const char* field : kUserAddImplied) j.erase(field);
  return j.dump();
}

// An event's JSON in one spelling, whoever wrote it: PostgreSQL's json_build_object writes
// `{"a" : 1}` where SQLite's json_object and nlohmann write `{"a":1}`.
std::string compact_json(std::string text) {
  if (text.empty() || text.front() != '{') return text;
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? text : j.dump();
}

// The event's after as written before (the whole user) or now (without the implied fields).
std::string whole_user_add_after(const core::AuditEvent& e) {
  auto j = nlohmann::json::parse(e.after, nullptr, false);
  if (!j.is_object()) return e.after;
  const auto at = core::format_iso8601(e.at);
  j.emplace("address", e.object);
  j.emplace("company_id", e.company_id ? nlohmann::json(*e.company_id) : nlohmann::json());
  j.emplace("created_at", at);
  j.emplace("updated_at", at);
  return j.dump();
}

constexpr std::string_view kUserColumns =
    "id, company_id, address, first_name, surname, role, source, source_id, created_at, "
    "updated_at";

constexpr std::string_view kSettingsColumns =
    "enabled, default_role, inbound_threshold, window_days, notification_weeks, "
    "expired_to_new_user, auto_add_aliases, auto_add_outbound, report_new_users, "
    "report_new_aliases, report_include_admin";

core::User read_user(const Statement& s) {
  core::User u;
  u.id = s.int64(0);
  u.company_id = s.int64(1);
  u.address = stored_address(s.text(2));
  u.first_name = s.text(3);
  u.surname = s.text(4);
  u.role = core::parse_role(s.text(5)).value();
  u.source = core::parse_source(s.text(6)).value();
  u.source_id = s.text(7);
  u.created_at = from_unix(s.int64(8));
  u.updated_at = from_unix(s.int64(9));
  return u;
}

core::Alias read_alias(const Statement& s) {
  core::Alias a;
  a.id = s.int64(0);
  a.company_id = s.int64(1);
  a.user_id = s.int64(2);
  a.address = stored_address(s.text(3));
  a.created_at = from_unix(s.int64(4));
  return a;
}

core::InvalidAddress read_invalid(const Statement& s) {
  core::InvalidAddress i;
  i.id = s.int64(0);
  i.company_id = s.int64(1);
  i.address = stored_address(s.text(2));
  i.reason = s.text(3);
  i.created_at = from_unix(s.int64(4));
  return i;
}

// The servers after a destination's first, as the domains table keeps them.
std::string fallbacks(const core::Destination& destination) {
  if (destination.hosts.empty()) {
    throw Failure(core::invalid("a destination needs a mail server", "destination"));
  }
  core::Destination rest;
  rest.hosts.assign(destination.hosts.begin() + 1, destination.hosts.end());
  return rest.str();
}

core::Domain read_domain(const Statement& s) {
  core::Domain d;
  d.id = s.int64(0);
  d.company_id = s.int64(1);
  d.name = s.text(2);
  d.destination = core::Endpoint{s.text(3), static_cast<std::uint16_t>(s.int64(4))};
  // The further servers, as Destination::str() wrote them (migration 0011).
  if (auto more = core::Destination::parse(s.text(6)); more) {
    d.destination.hosts.insert(d.destination.hosts.end(), more->hosts.begin(), more->hosts.end());
  }
  d.created_at = from_unix(s.int64(5));
  return d;
}

// A LIMIT's value: as many as there are for 0 (SQLite reads -1 so, PostgreSQL refuses it).
std::int64_t no_limit_if_zero(std::size_t limit) {
  return limit == 0 ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(limit);
}

// A window's LIMIT at parameter `index` and its OFFSET at the next one.
void bind_window(Statement& s, int index, Window window) {
  s.bind(index, no_limit_if_zero(window.limit));
  s.bind(index + 1, static_cast<std::int64_t>(window.offset));
}

std::string sql_with(std::string_view head, std::string_view columns, std::string_view tail) {
  return std::string(head) + std::string(columns) + std::string(tail);
}

}  // namespace

struct SqlStore::Impl {
  Impl(std::unique_ptr<Database> connection, const Backend& b, const core::Clock& c)
      : owned(std::move(connection)), db(*owned), backend(b), clock(c) {}

  std::unique_ptr<Database> owned;
  Database& db;
  const Backend& backend;
  const core::Clock& clock;
  std::recursive_mutex mutex;  // recursive: atomically() holds it across nested calls

  // Runs f under the lock; storage errors become typed failures at this one place.
  template <class F>
  auto guard(F&& f) -> decltype(f()) {
    std::lock_guard lock(mutex);
    try {
      return f();
    } catch (const DbError& e) {
      if (e.is_constraint()) throw Failure(ErrorCode::conflict, e.what());
      if (e.is_busy()) {
        throw Failure(ErrorCode::unavailable,
                      "database busy: another write (an import, a directory sync) held it "
                      "longer than the wait; try again");
      }
      if (e.is_unavailable()) {
        throw unavailable(e);
      }
      throw Failure(ErrorCode::internal, std::string("database error: ") + e.what());
    }
  }

  TimePoint now() const { return clock.now(); }

  // PostgreSQL plans by its statistics, which autovacuum brings up to date a minute or more
  // after a bulk write, and a transaction's own rows are not in them before: an import or sync
  // into an empty company planned its later batches for empty tables (scans of tables that had
  // grown to a million rows; a million-user re-import right after the import took 28 s instead
  // of 7). So the store analyses the tables itself as its writes double them: ANALYZE counts
  // and samples the transaction's own rows, and the transaction's next statements plan with
  // what it found. (SQLite plans by its indexes alone: nothing to do there.)
  std::size_t unanalysed = 0;
  std::size_t analysed = 0;
  void after_bulk_write(std::size_t rows) {
    if (backend.dialect != Dialect::postgres) return;
    unanalysed += rows;
    if (unanalysed < std::max<std::size_t>(5000, analysed)) return;
    db.exec("ANALYZE users, aliases, address_claims, audit_events");
    analysed += unanalysed;
    unanalysed = 0;
  }

  void audit(std::optional<Id> company_id, const Actor& actor, std::string_view action,
             std::string_view object, const std::string& before, const std::string& after,
             std::optional<std::int64_t> at = std::nullopt) {
    // An action the audit filters would not know is a mistake here, not the caller's.
    if (!core::is_audit_action(action)) {
      throw Failure(ErrorCode::internal, "audit: unlisted action " + std::string(action));
    }
    db.prepare(
          "INSERT INTO audit_events(at, company_id, actor, action, object, before, after) "
          "VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(1, at ? *at : to_unix(now()))
        .bind(2, company_id)
        .bind(3, actor.name)
        .bind(4, action)
        .bind(5, object)
        .bind(6, before.empty() ? std::optional<std::string>() : before)
        .bind(7, after.empty() ? std::optional<std::string>() : after)
        .run();
  }

  core::DiscoverySettings settings(Id company_id) {
    require_company(company_id);
    core::DiscoverySettings s;
    auto q = db.prepare(
        sql_with("SELECT ", kSettingsColumns, " FROM discovery_settings WHERE company_id = ?"));
    q.bind(1, company_id);
    if (!q.step()) return s;
    s.enabled = q.boolean(0);
    s.default_role = core::parse_role(q.text(1)).value();
    s.inbound_threshold = q.int32(2);
    s.window_days = q.int32(3);
    s.notification_weeks = q.int32(4);
    s.expired_to_new_user = q.boolean(5);
    s.auto_add_aliases = q.boolean(6);
    s.auto_add_outbound = q.boolean(7);
    s.report_new_users = q.boolean(8);
    s.report_new_aliases = q.boolean(9);
    s.report_include_admin = q.boolean(10);
    return s;
  }

  // ---- migrations -------------------------------------------------------------------------

  int current_version() {
    auto s = db.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    s.step();
    return s.int32(0);
  }

  void migrate() {
    const bool sqlite = backend.dialect == Dialect::sqlite;
    // PostgreSQL: nodes starting together take turns (the lock lasts to the transaction's
    // end), and a migration's DDL commits with its version row or not at all.
    std::optional<Transaction> whole;
    if (!sqlite) {
      // Up to date (every start but the first of a version): no lock to wait for, which
      // another node's write transactions would hold up.
      try {
        if (!backend.migrations.empty() && current_version() == backend.migrations.back().version) {
          return;
        }
      } catch (const DbError&) {  // NOLINT(bugprone-empty-catch): no schema yet
      }
      whole.emplace(db);
      db.exec("SELECT pg_advisory_xact_lock(7244917, hashtext(current_schema()))");
    }
    db.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
    const auto& all = backend.migrations;
    const int have = current_version();
    const int known = all.empty() ? 0 : all.back().version;
    if (have > known) {
      throw Failure(ErrorCode::internal, "database schema version " + std::to_string(have) +
                                             " is newer than this mailroster (" +
                                             std::to_string(known) + ")");
    }
    // SQLite: a migration may rebuild a table (create, copy, drop, rename): foreign keys are off
    // while it runs, as SQLite's procedure for that says, and checked before it commits.
    struct KeysOn {
      Database* db = nullptr;
      ~KeysOn() {
        try {
          if (db) db->exec("PRAGMA foreign_keys = ON");
        } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor cannot report it
        }
      }
    } keys_on;
    if (sqlite && have < known) {
      db.exec("PRAGMA foreign_keys = OFF");
      keys_on.db = &db;
    }
    for (const auto& m : all) {
      if (m.version <= have) continue;
      Transaction tx(db);
      db.exec(m.sql);
      if (sqlite && db.prepare("PRAGMA foreign_key_check").step()) {
        throw Failure(ErrorCode::internal, "migration " + std::string(m.name) +
                                               " left rows whose foreign keys do not hold");
      }
      db.prepare("INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)")
          .bind(1, m.version)
          .bind(2, m.name)
          .bind(3, to_unix(now()))
          .run();
      tx.commit();
    }
    if (whole) whole->commit();
  }

  // ---- companies --------------------------------------------------------------------------

  std::vector<core::Cidr> relay_networks(Id company_id) {
    std::vector<core::Cidr> out;
    auto s = db.prepare(
        "SELECT cidr FROM company_relay_networks WHERE company_id = ? ORDER BY position");
    s.bind(1, company_id);
    while (s.step()) {
      auto cidr = core::Cidr::parse(s.text(0));
      if (!cidr) throw Failure(ErrorCode::internal, "corrupt relay network in database");
      out.push_back(*cidr);
    }
    return out;
  }

  void write_relay_networks(Id company_id, const std::vector<core::Cidr>& networks) {
    db.prepare("DELETE FROM company_relay_networks WHERE company_id = ?").bind(1, company_id).run();
    int position = 0;
    for (const auto& n : networks) {
      db.prepare("INSERT INTO company_relay_networks(company_id, position, cidr) VALUES (?, ?, ?)")
          .bind(1, company_id)
          .bind(2, position++)
          .bind(3, n.str())
          .run();
    }
  }

  std::vector<core::Company> companies_where(std::string_view where,
                                             const std::optional<std::string>& text_arg,
                                             std::optional<Id> id_arg) {
    std::vector<core::Company> out;
    const std::string sql =
        "SELECT id, name, tech_contact, admin_contact, created_at FROM companies " +
        std::string(where) + " ORDER BY lower(name), name";
    auto s = db.prepare(sql);
    if (text_arg) s.bind(1, *text_arg);
    if (id_arg) s.bind(1, *id_arg);
    while (s.step()) {
      core::Company c;
      c.id = s.int64(0);
      c.name = s.text(1);
      c.tech_contact = s.text(2);
      c.admin_contact = s.text(3);
      c.created_at = from_unix(s.int64(4));
      out.push_back(std::move(c));
    }
    for (auto& c : out) c.relay_networks = relay_networks(c.id);
    return out;
  }

  std::optional<core::Company> company(Id id) {
    auto found = companies_where("WHERE id = ?", std::nullopt, id);
    if (found.empty()) return std::nullopt;
    return found.front();
  }

  core::Company require_company(Id id) {
    auto c = company(id);
    if (!c) throw Failure(ErrorCode::not_found, "no company with id " + std::to_string(id));
    return *c;
  }

  // ---- domains ----------------------------------------------------------------------------

  static constexpr std::string_view kDomainColumns =
      "id, company_id, name, destination_host, destination_port, created_at, "
      "destination_fallbacks";

  std::optional<core::Domain> domain_by_name(std::string_view name) {
    auto s = db.prepare(sql_with("SELECT ", kDomainColumns, " FROM domains WHERE name = ?"));
    s.bind(1, core::ascii_lower(name));
    if (!s.step()) return std::nullopt;
    return read_domain(s);
  }

  std::optional<core::Domain> domain_by_id(Id id) {
    auto s = db.prepare(sql_with("SELECT ", kDomainColumns, " FROM domains WHERE id = ?"));
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_domain(s);
  }

  // The registered domain an address belongs to, which must be of company_id when given.
  core::Domain domain_of(const Address& a, std::optional<Id> company_id) {
    auto d = domain_by_name(a.domain());
    if (!d) {
      throw Failure(ErrorCode::invalid_argument,
                    "domain '" + a.domain() + "' of " + a.str() + " is not registered", "address");
    }
    if (company_id && d->company_id != *company_id) {
      const auto owner = company(d->company_id);
      const auto wanted = company(*company_id);
      throw Failure(ErrorCode::invalid_argument,
                    "domain '" + a.domain() + "' belongs to company '" +
                        (owner ? owner->name : "?") + "', not '" + (wanted ? wanted->name : "?") +
                        "'",
                    "address");
    }
    return *d;
  }

  // ---- users, aliases, invalid, discovered ------------------------------------------------

  std::optional<core::User> user_where(std::string_view where, const auto& arg) {
    auto s = db.prepare(sql_with("SELECT ", kUserColumns, " FROM users " + std::string(where)));
    s.bind(1, arg);
    if (!s.step()) return std::nullopt;
    return read_user(s);
  }

  core::User require_user(Id id) {
    auto u = user_where("WHERE id = ?", id);
    if (!u) throw Failure(ErrorCode::not_found, "no user with id " + std::to_string(id));
    return *u;
  }

  std::optional<core::Alias> alias_where(std::string_view where, const auto& arg) {
    auto s = db.prepare("SELECT id, company_id, user_id, address, created_at FROM aliases " +
                        std::string(where));
    s.bind(1, arg);
    if (!s.step()) return std::nullopt;
    return read_alias(s);
  }

  std::optional<core::InvalidAddress> invalid_where(std::string_view where, const auto& arg) {
    auto s = db.prepare(
        "SELECT id, company_id, address, reason, created_at FROM "
        "invalid_addresses " +
        std::string(where));
    s.bind(1, arg);
    if (!s.step()) return std::nullopt;
    return read_invalid(s);
  }

  // `where` names its argument ?1; `window` of those whose address has `search` in it.
  std::vector<core::DiscoveredAddress> discovered_where(std::string_view where, const auto& arg,
                                                        Window window = {},
                                                        std::string_view search = "") {
    std::vector<core::DiscoveredAddress> out;
    auto s = db.prepare(
        "SELECT id, company_id, address, first_seen, outbound_messages, discovered_at, "
        "notifications_sent, suggested_alias_of FROM discovered_addresses " +
        std::string(where) +
        " AND (?4 = '' OR instr(address_key, ?4) > 0) ORDER BY address_key LIMIT ?2 OFFSET ?3");
    s.bind(1, arg);
    bind_window(s, 2, window);
    s.bind(4, core::ascii_lower(search));
    while (s.step()) {
      core::DiscoveredAddress d;
      d.id = s.int64(0);
      d.company_id = s.int64(1);
      d.address = stored_address(s.text(2));
      d.first_seen = from_unix(s.int64(3));
      d.outbound_messages = s.int32(4);
      if (!s.is_null(5)) d.discovered_at = from_unix(s.int64(5));
      d.notifications_sent = s.int32(6);
      if (!s.is_null(7)) d.suggested_alias_of = s.int64(7);
      out.push_back(std::move(d));
    }
    // Their clean deliveries in one query, not one per address (expiry and the weekly report
    // read a company's whole list: on PostgreSQL each query is a round trip).
    if (out.empty()) return out;
    std::vector<Id> ids;
    std::unordered_map<Id, core::DiscoveredAddress*> by_id;
    for (auto& d : out) {
      ids.push_back(d.id);
      by_id.emplace(d.id, &d);
    }
    auto hits = db.prepare(
        "SELECT i.discovered_id, i.at FROM mailroster_rows(?1) k JOIN discovered_inbound i ON "
        "i.discovered_id = k.c0 ORDER BY i.discovered_id, i.at");
    const auto rows = list_rows(ids);
    hits.bind(1, rows);
    while (hits.step()) by_id.at(hits.int64(0))->clean_inbound.push_back(from_unix(hits.int64(1)));
    return out;
  }

  AddressOwner resolve(const Address& a) {
    AddressOwner owner;
    std::string kind;
    Id id = 0;
    {
      auto s = db.prepare("SELECT kind, owner FROM address_claims WHERE address_key = ?");
      s.bind(1, a.key());
      if (s.step()) {
        kind = s.text(0);
        id = s.int64(1);
      }
    }
    if (kind == "user") {
      const auto u = user_where("WHERE id = ?", id).value();
      return {AddressOwner::Kind::user, u.company_id, u.id, u.address.str()};
    }
    if (kind == "alias") {
      const auto al = alias_where("WHERE id = ?", id).value();
      return {AddressOwner::Kind::alias, al.company_id, al.user_id, al.address.str()};
    }
    if (kind == "invalid") {
      const auto i = invalid_where("WHERE id = ?", id).value();
      return {AddressOwner::Kind::invalid, i.company_id, 0, i.address.str()};
    }
    auto d = discovered_where("WHERE address_key = ?1", a.key());
    if (!d.empty()) {
      return {AddressOwner::Kind::discovered, d.front().company_id, 0, d.front().address.str()};
    }
    return owner;
  }

  // The keys (of these) that are claimed (user, alias, invalid) or discovered.
  std::unordered_set<std::string> taken(const std::vector<std::string>& keys) {
    std::unordered_set<std::string> out;
    if (keys.empty()) return out;
    auto s = db.prepare(
        "SELECT k.c0 FROM mailroster_rows(?1) k WHERE EXISTS (SELECT 1 FROM address_claims c "
        "WHERE c.address_key = k.c0) OR EXISTS (SELECT 1 FROM discovered_addresses d WHERE "
        "d.address_key = k.c0)");
    const auto rows = list_rows(keys);
    s.bind(1, rows);
    while (s.step()) out.insert(s.text(0));
    return out;
  }

  // Refuses an address already taken as user or alias; an invalid or discovered entry for it
  // is handled (removed) by the caller's change, in the caller's transaction.
  void claim_for_account(const Address& a, const Actor& actor) {
    const auto owner = resolve(a);
    switch (owner.kind) {
      case AddressOwner::Kind::user:
        throw Failure(ErrorCode::conflict, owner.address + " is already a user", "address");
      case AddressOwner::Kind::alias: {
        const auto u = require_user(owner.user_id);
        throw Failure(ErrorCode::conflict, a.str() + " is already an alias of " + u.address.str(),
                      "address");
      }
      case AddressOwner::Kind::invalid:
        remove_invalid(invalid_where("WHERE address_key = ?", a.key())->id, actor);
        break;
      case AddressOwner::Kind::discovered:
        remove_discovered(discovered_where("WHERE address_key = ?1", a.key()).front().id, actor);
        break;
      case AddressOwner::Kind::none:
        break;
    }
  }

  core::User insert_user(const NewUser& u, const core::Domain& domain, const Actor& actor) {
    const auto now = to_unix(this->now());
    db.prepare(
          "INSERT INTO users(company_id, domain_id, address, address_key, first_name, "
          "surname, role, source, source_id, created_at, updated_at) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(1, domain.company_id)
        .bind(2, domain.id)
        .bind(3, u.address.str())
        .bind(4, u.address.key())
        .bind(5, u.first_name)
        .bind(6, u.surname)
        .bind(7, core::to_string(u.role))
        .bind(8, core::to_string(u.source))
        .bind(9, u.source_id)
        .bind(10, now)
        .bind(11, now)
        .run();
    core::User created;
    created.id = db.last_insert_id();
    created.company_id = domain.company_id;
    created.address = u.address;
    created.first_name = u.first_name;
    created.surname = u.surname;
    created.role = u.role;
    created.source = u.source;
    created.source_id = u.source_id;
    created.created_at = created.updated_at = from_unix(now);
    audit(created.company_id, actor, "user.add", created.address.str(), "", user_add_after(created),
          now);
    return created;
  }

  // The rows bound to ?param as a table with these column names and seq (their position):
  // "(SELECT rowid AS seq, c0 AS name0, ... FROM mailroster_rows(?param))".
  static std::string rows_table(int param, std::initializer_list<std::string_view> names) {
    std::string sql = "(SELECT rowid AS seq";
    int column = 0;
    for (const auto name : names) {
      sql += ", c" + std::to_string(column++) + " AS " + std::string(name);
    }
    return sql + " FROM mailroster_rows(?" + std::to_string(param) + "))";
  }

  // Changes a user in the caller's transaction (no savepoint of its own: apply_plan runs many
  // of these, and a savepoint's sub-journal copies every page each one touches).
  core::User update_user(Id id, const UserChange& change, const Actor& actor) {
    const auto before = require_user(id);
    if (change.address && !(*change.address == before.address)) {
      const auto domain = domain_of(*change.address, before.company_id);
      claim_for_account(*change.address, actor);
      db.prepare("UPDATE users SET address = ?, address_key = ?, domain_id = ? WHERE id = ?")
          .bind(1, change.address->str())
          .bind(2, change.address->key())
          .bind(3, domain.id)
          .bind(4, id)
          .run();
    } else if (change.address) {
      // Same key, maybe a different spelling of the local part.
      db.prepare("UPDATE users SET address = ? WHERE id = ?")
          .bind(1, change.address->str())
          .bind(2, id)
          .run();
    }
    db.prepare(
          "UPDATE users SET first_name = COALESCE(?, first_name), "
          "surname = COALESCE(?, surname), role = COALESCE(?, role), updated_at = ? "
          "WHERE id = ?")
        .bind(1, change.first_name)
        .bind(2, change.surname)
        .bind(3, text_of(change.role))
        .bind(4, to_unix(now()))
        .bind(5, id)
        .run();
    const auto after = require_user(id);
    audit(after.company_id, actor, "user.update", after.address.str(), json_text(before),
          json_text(after));
    return after;
  }

  // Writes a plan's updates of names and roles as one UPDATE ... FROM its rows (a RowSet), and
  // their audit events, before and after, as one INSERT ... SELECT ahead of it: the same JSON
  // as update_user's (a test compares them), without two reads of each user.
  void update_users(const std::vector<NameRoleUpdate>& rows, const Actor& actor) {
    if (rows.empty()) return;
    const RowsOf updates(rows, "ittt", [](const NameRoleUpdate& r, int column, Cell& out) {
      switch (column) {
        case 0:
          return out.set(r.user_id);
        case 1:
          return out.set(r.first_name);
        case 2:
          return out.set(r.surname);
        default:
          return out.set(r.role);
      }
    });
    const auto staged = rows_table(4, {"user_id", "first_name", "surname", "role"});
    const auto now = to_unix(this->now());
    // A user as nlohmann::json(User) writes it (keys in name order), with these names, role and
    // update time.
    auto user_json = [](std::string_view first_name, std::string_view surname,
                        std::string_view role, std::string_view updated_at) {
      return "json_object('address', u.address, 'company_id', u.company_id, 'created_at', "
             "strftime('%Y-%m-%dT%H:%M:%SZ', u.created_at, 'unixepoch'), 'first_name', " +
             std::string(first_name) + ", 'id', u.id, 'role', " + std::string(role) +
             ", 'source', u.source, 'source_id', u.source_id, 'surname', " + std::string(surname) +
             ", 'updated_at', " + std::string(updated_at) + ")";
    };
    db.prepare(
          "INSERT INTO audit_events(at, company_id, actor, action, object, before, after) "
          "SELECT ?1, u.company_id, ?2, 'user.update', u.address, " +
          user_json("u.first_name", "u.surname", "u.role",
                    "strftime('%Y-%m-%dT%H:%M:%SZ', u.updated_at, 'unixepoch')") +
          ", " +
          user_json("COALESCE(b.first_name, u.first_name)", "COALESCE(b.surname, u.surname)",
                    "COALESCE(b.role, u.role)", "?3") +
          " FROM " + staged + " b JOIN users u ON u.id = b.user_id ORDER BY b.seq")
        .bind(1, now)
        .bind(2, actor.name)
        .bind(3, core::format_iso8601(from_unix(now)))
        .bind(4, updates)
        .run();
    db.prepare(
          "UPDATE users SET first_name = COALESCE(b.first_name, users.first_name), surname = "
          "COALESCE(b.surname, users.surname), role = COALESCE(b.role, users.role), "
          "updated_at = ?1 FROM " +
          staged + " b WHERE users.id = b.user_id")
        .bind(1, now)
        .bind(4, updates)
        .run();
  }

  // Inserts the users of plan creates (addresses nobody holds) as one INSERT ... SELECT from
  // their rows (a RowSet, read in place), and their audit events as another: two statements instead
  // of two per user. The caller looks up the few it needs again (to add aliases).
  void insert_users(const std::vector<NewUserRow>& rows, core::Source source, const Actor& actor) {
    if (rows.empty()) return;
    const RowsOf users(rows, "iitttttt", [](const NewUserRow& r, int column, Cell& out) {
      const auto& e = *r.item->entry;
      switch (column) {
        case 0:
          return out.set(r.company_id);
        case 1:
          return out.set(r.domain_id);
        case 2:
          return out.set_lasting(r.address);
        case 3:
          return out.set_lasting(e.address.key());
        case 4:
          return out.set_lasting(e.first_name);
        case 5:
          return out.set_lasting(e.surname);
        case 6:
          return out.set_lasting(core::to_string(r.item->role));
        default:
          return out.set_lasting(e.source_id);
      }
    });
    const auto staged = rows_table(5, {"company_id", "domain_id", "address", "address_key",
                                       "first_name", "surname", "role", "source_id"});
    const auto now = to_unix(this->now());
    db.prepare(
          "INSERT INTO users(company_id, domain_id, address, address_key, first_name, surname, "
          "role, source, source_id, created_at, updated_at) SELECT company_id, domain_id, "
          "address, address_key, first_name, surname, role, ?1, source_id, ?2, ?2 FROM " +
          staged + " b ORDER BY seq")
        .bind(1, core::to_string(source))
        .bind(2, now)
        .bind(5, users)
        .run();
    // The rows took consecutive ids in row order (SQLite gives a new row the largest id
    // plus one): the audit reads the same rows again with their ids instead of looking each user
    // up again. Checked at both ends; otherwise each user is looked up by address.
    const auto last = db.last_insert_id();
    const auto first = last - static_cast<std::int64_t>(rows.size()) + 1;
    auto id_of = [&](const core::PlanItem* item) {
      auto s =
          db.prepare("SELECT owner FROM address_claims WHERE address_key = ? AND kind = 'user'");
      s.bind(1, item->entry->address.key());
      return s.step() ? s.int64(0) : std::int64_t{0};
    };
    const bool consecutive = id_of(rows.front().item) == first && id_of(rows.back().item) == last;
    // The same JSON as the one-by-one path's user_add_after (keys in name order, the same
    // escapes; a test compares them).
    const std::string audit =
        "INSERT INTO audit_events(at, company_id, actor, action, object, before, after) "
        "SELECT ?1, u.company_id, ?2, 'user.add', u.address, NULL, json_object('first_name', "
        "u.first_name, 'id', u.id, 'role', u.role, 'source', ?3, 'source_id', u.source_id, "
        "'surname', u.surname) FROM ";
    auto insert_audit = db.prepare(
        audit + (consecutive ? "(SELECT ?4 + seq AS id, * FROM " + staged + " b) u ORDER BY u.seq"
                             : staged + " b JOIN address_claims c ON c.address_key = "
                                        "b.address_key JOIN users u ON u.id = c.owner ORDER BY "
                                        "b.seq"));
    insert_audit.bind(1, now).bind(2, actor.name).bind(3, core::to_string(source)).bind(5, users);
    if (consecutive) insert_audit.bind(4, first);
    insert_audit.run();
  }

  // Inserts aliases nobody holds of users just created, and their audit events, as one
  // INSERT ... SELECT each from their rows (written one by one, each alias insert made
  // SQLite keep a statement journal of every page it touched: a user with two aliases cost
  // several times a user without). The events read as insert_alias's (a test compares them).
  void insert_aliases(const std::vector<NewAliasRow>& rows, const Actor& actor) {
    if (rows.empty()) return;
    const RowsOf aliases(rows, "iittt", [](const NewAliasRow& r, int column, Cell& out) {
      switch (column) {
        case 0:
          return out.set(r.company_id);
        case 1:
          return out.set(r.domain_id);
        case 2:
          return out.set_lasting(r.user->key());
        case 3:
          return out.set(r.address->str());
        default:
          return out.set_lasting(r.address->key());
      }
    });
    const auto staged =
        rows_table(4, {"company_id", "domain_id", "user_key", "address", "address_key"});
    const auto now = to_unix(this->now());
    db.prepare(
          "INSERT INTO aliases(company_id, domain_id, user_id, address, address_key, created_at) "
          "SELECT b.company_id, b.domain_id, u.id, b.address, b.address_key, ?1 FROM " +
          staged +
          " b JOIN address_claims c ON c.address_key = b.user_key AND c.kind = 'user' JOIN users "
          "u ON u.id = c.owner ORDER BY b.seq")
        .bind(1, now)
        .bind(4, aliases)
        .run();
    db.prepare(
          "INSERT INTO audit_events(at, company_id, actor, action, object, before, after) "
          "SELECT ?1, a.company_id, ?2, 'alias.add', a.address, NULL, json_object('address', "
          "a.address, 'company_id', a.company_id, 'created_at', ?3, 'id', a.id, 'user', "
          "u.address, 'user_id', a.user_id) FROM " +
          staged +
          " b JOIN address_claims c ON c.address_key = b.address_key AND c.kind = 'alias' JOIN "
          "aliases a ON a.id = c.owner JOIN users u ON u.id = a.user_id "
          "ORDER BY b.seq")
        .bind(1, now)
        .bind(2, actor.name)
        .bind(3, core::format_iso8601(from_unix(now)))
        .bind(4, aliases)
        .run();
  }

  core::Alias insert_alias(const core::User& user, const Address& address,
                           const core::Domain& domain, const Actor& actor) {
    const auto now = to_unix(this->now());
    db.prepare(
          "INSERT INTO aliases(company_id, domain_id, user_id, address, address_key, "
          "created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(1, user.company_id)
        .bind(2, domain.id)
        .bind(3, user.id)
        .bind(4, address.str())
        .bind(5, address.key())
        .bind(6, now)
        .run();
    core::Alias created;
    created.id = db.last_insert_id();
    created.company_id = user.company_id;
    created.user_id = user.id;
    created.address = address;
    created.created_at = from_unix(now);
    auto after = nlohmann::json(created);
    after["user"] = user.address.str();
    audit(user.company_id, actor, "alias.add", created.address.str(), "", after.dump());
    return created;
  }

  void remove_alias(const core::Alias& a, const Actor& actor) {
    db.prepare("DELETE FROM aliases WHERE id = ?").bind(1, a.id).run();
    audit(a.company_id, actor, "alias.remove", a.address.str(), json_text(a), "");
  }

  void remove_user(const core::User& u, const Actor& actor) { remove_users({u}, actor); }

  // Removes users (a sync's deletes a page at a time, a domain's, or one): their aliases one
  // by one, then the users' audit events and the users as one statement each. One statement
  // per user, a PostgreSQL server took 65 s for 100,000 users.
  void remove_users(const std::vector<core::User>& users, const Actor& actor) {
    if (users.empty()) return;
    std::vector<Id> ids;
    for (const auto& u : users) ids.push_back(u.id);
    const auto id_rows = list_rows(ids);
    std::vector<core::Alias> aliases;
    {
      auto s = db.prepare(
          "SELECT id, company_id, user_id, address, created_at FROM aliases WHERE user_id IN "
          "(SELECT c0 FROM mailroster_rows(?1)) ORDER BY user_id, address_key");
      s.bind(1, id_rows);
      while (s.step()) aliases.push_back(read_alias(s));
    }
    for (const auto& a : aliases) remove_alias(a, actor);
    struct Gone {
      const core::User* user;
      std::string address, before;
    };
    std::vector<Gone> gone;
    gone.reserve(users.size());
    for (const auto& u : users) gone.push_back({&u, u.address.str(), json_text(u)});
    const RowsOf rows(gone, "itt", [](const Gone& g, int column, Cell& out) {
      switch (column) {
        case 0:
          return out.set(g.user->company_id);
        case 1:
          return out.set_lasting(g.address);
        default:
          return out.set_lasting(g.before);
      }
    });
    db.prepare(
          "INSERT INTO audit_events(at, company_id, actor, action, object, before, after) "
          "SELECT ?1, company_id, ?2, 'user.remove', object, before, NULL FROM " +
          rows_table(3, {"company_id", "object", "before"}) + " b ORDER BY seq")
        .bind(1, to_unix(now()))
        .bind(2, actor.name)
        .bind(3, rows)
        .run();
    db.prepare("DELETE FROM users WHERE id IN (SELECT c0 FROM mailroster_rows(?1))")
        .bind(1, id_rows)
        .run();
  }

  void remove_invalid(Id id, const Actor& actor) {
    auto i = invalid_where("WHERE id = ?", id);
    if (!i) throw Failure(ErrorCode::not_found, "no invalid address with id " + std::to_string(id));
    db.prepare("DELETE FROM invalid_addresses WHERE id = ?").bind(1, id).run();
    audit(i->company_id, actor, "invalid.remove", i->address.str(), json_text(*i), "");
  }

  void remove_discovered(Id id, const Actor& actor) {
    auto d = discovered_where("WHERE id = ?1", id);
    if (d.empty()) {
      throw Failure(ErrorCode::not_found, "no discovered address with id " + std::to_string(id));
    }
    db.prepare("DELETE FROM discovered_addresses WHERE id = ?").bind(1, id).run();
    audit(d.front().company_id, actor, "discovered.remove", d.front().address.str(),
          json_text(d.front()), "");
  }

  // Removes a domain's users, aliases, invalid and discovered addresses (each with its audit
  // event) a page at a time, in id order: a domain of a million users is never held whole.
  void empty_domain(Id domain_id, const Actor& actor) {
    auto in_pages = [&](const std::string& select, auto read, auto remove) {
      for (Id after = 0;;) {
        auto s = db.prepare(select + " WHERE domain_id = ?1 AND id > ?2 ORDER BY id LIMIT 5000");
        s.bind(1, domain_id).bind(2, after);
        std::vector<decltype(read(s))> page;
        while (s.step()) page.push_back(read(s));
        if (page.empty()) return;
        remove(page);
        after = page.back().id;
      }
    };
    // Aliases first: those of users in other domains go one by one; a user's own go with it.
    in_pages("SELECT id, company_id, user_id, address, created_at FROM aliases", read_alias,
             [&](const std::vector<core::Alias>& page) {
               for (const auto& a : page) remove_alias(a, actor);
             });
    in_pages(sql_with("SELECT ", kUserColumns, " FROM users"), read_user,
             [&](const std::vector<core::User>& page) { remove_users(page, actor); });
    in_pages("SELECT id, company_id, address, reason, created_at FROM invalid_addresses",
             read_invalid, [&](const std::vector<core::InvalidAddress>& page) {
               for (const auto& i : page) remove_invalid(i.id, actor);
             });
    struct Row {
      Id id;
    };
    in_pages(
        "SELECT id FROM discovered_addresses", [](const Statement& st) { return Row{st.int64(0)}; },
        [&](const std::vector<Row>& page) {
          for (const auto& r : page) remove_discovered(r.id, actor);
        });
  }

  void remove_domain(const core::Domain& d, bool force, const Actor& actor) {
    if (!force) {
      std::vector<std::int64_t> n;
      for (const char* table : {"users", "aliases", "invalid_addresses", "discovered_addresses"}) {
        auto s = db.prepare(std::string("SELECT count(*) FROM ") + table + " WHERE domain_id = ?");
        s.bind(1, d.id);
        n.push_back(s.step() ? s.int64(0) : 0);
      }
      if (n[0] || n[1] || n[2] || n[3]) {
        throw Failure(ErrorCode::conflict,
                      "domain '" + d.name + "' still has " + std::to_string(n[0]) + " users, " +
                          std::to_string(n[1]) + " aliases, " + std::to_string(n[2]) +
                          " invalid and " + std::to_string(n[3]) +
                          " discovered addresses; remove them first or force");
      }
    }
    empty_domain(d.id, actor);
    db.prepare("DELETE FROM domains WHERE id = ?").bind(1, d.id).run();
    audit(d.company_id, actor, "domain.remove", d.name, json_text(d), "");
  }
};

template <class F>
auto SqlStore::read(F&& f) {
  std::unique_lock main(impl_->mutex, std::try_to_lock);
  if (main.owns_lock() || !backend_.second_reader) {
    return impl_->guard([&] { return f(*impl_); });
  }
  std::lock_guard lock(reader_mutex_);
  if (!reader_) {
    try {
      reader_ = std::make_unique<Impl>(backend_.connect(), backend_, impl_->clock);
    } catch (const DbError& e) {
      throw unavailable(e);
    }
  }
  return reader_->guard([&] { return f(*reader_); });
}

SqlStore::SqlStore(Backend backend, const core::Clock& clock)
    : backend_(std::move(backend)), node_(core::random_hex(8)) {
  try {
    impl_ = std::make_unique<Impl>(backend_.connect(), backend_, clock);
    impl_->migrate();
  } catch (const DbError& e) {
    throw Failure(ErrorCode::internal, e.what());
  }
}

SqlStore::~SqlStore() = default;

int SqlStore::schema_version() {
  return impl_->guard([&] { return impl_->current_version(); });
}

void SqlStore::atomically(const std::function<void()>& f) {
  impl_->guard([&] {
    Transaction tx(impl_->db);
    f();
    tx.commit();
  });
}

void SqlStore::ping() {
  std::lock_guard lock(impl_->mutex);
  try {
    impl_->db.prepare("SELECT 1").run();
  } catch (const DbError& e) {
    throw unavailable(e);
  }
}

// ---- companies ----------------------------------------------------------------------------

core::Company SqlStore::add_company(const NewCompany& c, const Actor& actor) {
  const auto name = core::validate_company_name(c.name).value();
  const auto tech = core::validate_contact(c.tech_contact, "tech_contact").value();
  const auto admin = core::validate_contact(c.admin_contact, "admin_contact").value();
  return impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    if (!I.companies_where("WHERE lower(name) = lower(?)", name, std::nullopt).empty()) {
      throw Failure(ErrorCode::conflict, "company '" + name + "' already exists", "name");
    }
    I.db.prepare(
            "INSERT INTO companies(name, tech_contact, admin_contact, created_at) VALUES (?, ?, ?, "
            "?)")
        .bind(1, name)
        .bind(2, tech)
        .bind(3, admin)
        .bind(4, to_unix(I.now()))
        .run();
    const Id id = I.db.last_insert_id();
    I.write_relay_networks(id, c.relay_networks);
    auto created = I.require_company(id);
    I.audit(id, actor, "company.add", name, "", json_text(created));
    tx.commit();
    return created;
  });
}

std::optional<core::Company> SqlStore::find_company(std::string_view name) {
  return read([&](Impl& I) -> std::optional<core::Company> {
    auto found = I.companies_where("WHERE lower(name) = lower(?)", std::string(name), std::nullopt);
    if (found.empty()) return std::nullopt;
    return found.front();
  });
}

std::optional<core::Company> SqlStore::company_by_id(Id id) {
  return read([&](Impl& I) { return I.company(id); });
}

std::vector<core::Company> SqlStore::list_companies() {
  return read([&](Impl& I) { return I.companies_where("", std::nullopt, std::nullopt); });
}

core::Company SqlStore::update_company(Id id, const CompanyChange& change, const Actor& actor) {
  std::optional<std::string> tech, admin;
  if (change.tech_contact)
    tech = core::validate_contact(*change.tech_contact, "tech_contact").value();
  if (change.admin_contact) {
    admin = core::validate_contact(*change.admin_contact, "admin_contact").value();
  }
  return impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    const auto before = I.require_company(id);
    I.db.prepare(
            "UPDATE companies SET tech_contact = COALESCE(?, tech_contact), "
            "admin_contact = COALESCE(?, admin_contact) WHERE id = ?")
        .bind(1, tech)
        .bind(2, admin)
        .bind(3, id)
        .run();
    if (change.relay_networks) I.write_relay_networks(id, *change.relay_networks);
    auto after = I.require_company(id);
    I.audit(id, actor, "company.update", after.name, json_text(before), json_text(after));
    tx.commit();
    return after;
  });
}

void SqlStore::remove_company(Id id, bool force, const Actor& actor) {
  impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    const auto c = I.require_company(id);
    std::vector<core::Domain> domains;
    auto s = I.db.prepare(sql_with("SELECT ", Impl::kDomainColumns,
                                   " FROM domains WHERE company_id = ? ORDER BY name"));
    s.bind(1, id);
    while (s.step()) domains.push_back(read_domain(s));
    if (!domains.empty() && !force) {
      throw Failure(ErrorCode::conflict, "company '" + c.name + "' still has " +
                                             std::to_string(domains.size()) +
                                             " domain(s); remove them first or force");
    }
    for (const auto& d : domains) I.remove_domain(d, true, actor);
    I.db.prepare("DELETE FROM companies WHERE id = ?").bind(1, id).run();
    I.db.prepare("DELETE FROM mail_log WHERE company_id = ?").bind(1, id).run();
    I.audit(id, actor, "company.remove", c.name, json_text(c), "");
    tx.commit();
  });
}

// ---- domains ------------------------------------------------------------------------------

core::Domain SqlStore::add_domain(Id company_id, const std::string& name,
                                  const core::Destination& destination, const Actor& actor) {
  auto parsed = core::parse_domain(name);
  if (!parsed) throw Failure(parsed.error());
  return impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    const auto c = I.require_company(company_id);
    if (auto existing = I.domain_by_name(*parsed)) {
      const auto owner = I.company(existing->company_id);
      throw Failure(ErrorCode::conflict,
                    "domain '" + *parsed + "' is already registered to company '" +
                        (owner ? owner->name : "?") + "'",
                    "name");
    }
    const auto more = fallbacks(destination);  // checks there is a first server
    I.db.prepare(
            "INSERT INTO domains(company_id, name, destination_host, destination_port, "
            "destination_fallbacks, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(1, company_id)
        .bind(2, *parsed)
        .bind(3, destination.hosts.at(0).host)
        .bind(4, static_cast<int>(destination.hosts.at(0).port))
        .bind(5, more)
        .bind(6, to_unix(I.now()))
        .run();
    auto d = I.domain_by_id(I.db.last_insert_id()).value();
    I.audit(company_id, actor, "domain.add", d.name, "", json_text(d));
    tx.commit();
    return d;
  });
}

std::optional<core::Domain> SqlStore::find_domain(std::string_view name) {
  return read([&](Impl& I) { return I.domain_by_name(name); });
}

std::vector<core::Domain> SqlStore::list_domains(std::optional<Id> company_id) {
  return read([&](Impl& I) {
    std::vector<core::Domain> out;
    auto s = I.db.prepare(sql_with("SELECT ", Impl::kDomainColumns,
                                   " FROM domains WHERE (?1 IS NULL OR company_id = ?1) "
                                   "ORDER BY name"));
    s.bind(1, company_id);
    while (s.step()) out.push_back(read_domain(s));
    return out;
  });
}

core::Domain SqlStore::set_domain_destination(Id id, const core::Destination& destination,
                                              const Actor& actor) {
  return impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    auto before = I.domain_by_id(id);
    if (!before) throw Failure(ErrorCode::not_found, "no domain with id " + std::to_string(id));
    const auto more = fallbacks(destination);  // checks there is a first server
    I.db.prepare(
            "UPDATE domains SET destination_host = ?, destination_port = ?, "
            "destination_fallbacks = ? WHERE id = ?")
        .bind(1, destination.hosts.at(0).host)
        .bind(2, static_cast<int>(destination.hosts.at(0).port))
        .bind(3, more)
        .bind(4, id)
        .run();
    auto after = I.domain_by_id(id).value();
    I.audit(after.company_id, actor, "domain.update", after.name, json_text(*before),
            json_text(after));
    tx.commit();
    return after;
  });
}

void SqlStore::remove_domain(Id id, bool force, const Actor& actor) {
  impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    auto d = I.domain_by_id(id);
    if (!d) throw Failure(ErrorCode::not_found, "no domain with id " + std::to_string(id));
    I.remove_domain(*d, force, actor);
    tx.commit();
  });
}

// ---- users --------------------------------------------------------------------------------

core::User SqlStore::add_user(const NewUser& u, const Actor& actor) {
  return impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    const auto domain = I.domain_of(u.address, std::nullopt);
    I.claim_for_account(u.address, actor);
    auto created = I.insert_user(u, domain, actor);
    tx.commit();
    return created;
  });
}

std::optional<core::User> SqlStore::find_user(const Address& address) {
  return read([&](Impl& I) { return I.user_where(kUserByKey, address.key()); });
}

std::optional<core::User> SqlStore::user_by_id(Id id) {
  return read([&](Impl& I) { return I.user_where("WHERE id = ?", id); });
}

namespace {

// list_users' query: `what` of the users a filter matches (its parameters ?1 to ?4 and ?7 to
// ?13, bound by bind_user_filter), then `rest`.
std::string users_matching(std::string_view what, const UserFilter& f, std::string_view rest) {
  // One company's users are a range of users_company, already in order: "?1 IS NULL OR"
  // would make SQLite walk every company's users in that index to find them.
  const std::string_view company = f.company_id ? "company_id = ?1" : "?1 IS NULL";
  // Keyset paging (UserFilter::after), written so that the index by company and address key
  // starts where the last page ended.
  const std::string after = !f.after       ? "AND ?9 IS NULL AND ?10 IS NULL "
                            : f.company_id ? "AND ?9 IS NOT NULL AND address_key > ?10 "
                                           : "AND (company_id, address_key) > (?9, ?10) ";
  // A local part: the address keys from "local@" up to "localA" ('A' follows '@'), a range of
  // the same index. Written out only when asked for, as `after` (an "?12 IS NULL OR" would
  // hide the range from SQLite's planner).
  const std::string_view local = f.local_part.empty()
                                     ? "AND ?12 IS NULL AND ?13 IS NULL "
                                     : "AND address_key >= ?12 AND address_key < ?13 ";
  return sql_with("SELECT ", what,
                  " FROM users WHERE " + std::string(company) +
                      " AND (?2 IS NULL OR role = ?2) AND (?3 IS NULL OR source = ?3) AND (?4 = '' "
                      "OR instr(lower(address || ' ' || first_name || ' ' || surname), ?4) > 0 "
                      // or one of its aliases (the subquery is read once, not per user)
                      "OR id IN (SELECT user_id FROM aliases WHERE (?1 IS NULL OR company_id = ?1) "
                      "AND instr(address_key, ?4) > 0)) "
                      "AND (?7 IS NULL OR created_at >= ?7) AND (?8 IS NULL OR created_at < ?8) "
                      "AND (?11 IS NULL OR COALESCE((SELECT last_mail_at FROM user_activity WHERE "
                      "user_id = users.id), created_at) < ?11) " +
                      after + std::string(local) + std::string(rest));
}

void bind_user_filter(Statement& s, const UserFilter& f) {
  s.bind(1, f.company_id);
  s.bind(2, text_of(f.role));
  s.bind(3, text_of(f.source));
  s.bind(4, core::ascii_lower(f.search));
  s.bind(7, to_unix(f.created_from));
  s.bind(8, to_unix(f.created_before));
  s.bind(9, f.after ? std::optional<Id>(f.after->company_id) : std::nullopt);
  s.bind(10, f.after ? std::optional<std::string>(f.after->address_key) : std::nullopt);
  s.bind(11, to_unix(f.no_mail_since));
  const auto local = core::ascii_lower(f.local_part);
  s.bind(12, f.local_part.empty() ? std::nullopt : std::optional<std::string>(local + "@"));
  s.bind(13, f.local_part.empty() ? std::nullopt : std::optional<std::string>(local + "A"));
}

}  // namespace

std::vector<core::User> SqlStore::list_users(const UserFilter& f) {
  return read([&](Impl& I) {
    std::vector<core::User> out;
    auto s = I.db.prepare(
        users_matching(kUserColumns, f, "ORDER BY company_id, address_key LIMIT ?5 OFFSET ?6"));
    bind_user_filter(s, f);
    bind_window(s, 5, {f.limit, f.offset});
    while (s.step()) out.push_back(read_user(s));
    return out;
  });
}

std::size_t SqlStore::count_matching_users(const UserFilter& f) {
  return count_of(users_matching("COUNT(*)", f, ""), [&](Statement& s) { bind_user_filter(s, f); });
}

std::size_t SqlStore::count_of(std::string_view sql, const std::function<void(Statement&)>& bind) {
  return read([&](Impl& I) {
    auto s = I.db.prepare(sql);
    bind(s);
    s.step();
    return static_cast<std::size_t>(s.int64(0));
  });
}

std::size_t SqlStore::count_of(std::string_view sql, std::optional<Id> company_id) {
  return count_of(sql, [&](Statement& s) { s.bind(1, company_id); });
}

std::size_t SqlStore::count_users(Id company_id) {
  return count_of("SELECT COUNT(*) FROM users WHERE company_id = ?1", company_id);
}

core::User SqlStore::update_user(Id id, const UserChange& change, const Actor& actor) {
  return impl_->guard([&] {
    Transaction tx(impl_->db);
    auto after = impl_->update_user(id, change, actor);
    tx.commit();
    return after;
  });
}

void SqlStore::remove_user(Id id, const Actor& actor) {
  impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    I.remove_user(I.require_user(id), actor);
    tx.commit();
  });
}

void SqlStore::record_mail(const std::vector<Id>& users, core::TimePoint at) {
  // Once each: PostgreSQL refuses an upsert that would touch a row twice.
  auto ids = users;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (ids.empty()) return;
  const RowsOf rows(ids, "i", [](Id id, int, Cell& out) { return out.set(id); });
  const auto greatest = backend_.dialect == Dialect::postgres ? "GREATEST" : "max";
  impl_->guard([&] {
    impl_->db
        .prepare(fmt::format(
            "INSERT INTO user_activity(user_id, last_mail_at) SELECT c0, ?2 FROM "
            "mailroster_rows(?1) WHERE c0 IN (SELECT id FROM users) ON CONFLICT (user_id) DO "
            "UPDATE SET last_mail_at = {}(user_activity.last_mail_at, excluded.last_mail_at)",
            greatest))
        .bind(1, rows)
        .bind(2, to_unix(at))
        .run();
  });
}

std::unordered_map<Id, core::TimePoint> SqlStore::last_mail(const std::vector<Id>& users) {
  std::unordered_map<Id, core::TimePoint> out;
  if (users.empty()) return out;
  const RowsOf rows(users, "i", [](Id id, int, Cell& cell) { return cell.set(id); });
  return read([&](Impl& I) {
    auto s = I.db.prepare(
        "SELECT user_id, last_mail_at FROM user_activity WHERE user_id IN (SELECT c0 FROM "
        "mailroster_rows(?1))");
    s.bind(1, rows);
    while (s.step()) out[s.int64(0)] = from_unix(s.int64(1));
    return out;
  });
}

// ---- aliases ------------------------------------------------------------------------------

core::Alias SqlStore::add_alias(Id user_id, const Address& address, const Actor& actor) {
  return impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    const auto user = I.require_user(user_id);
    const auto domain = I.domain_of(address, user.company_id);
    I.claim_for_account(address, actor);
    auto created = I.insert_alias(user, address, domain, actor);
    tx.commit();
    return created;
  });
}

std::optional<core::Alias> SqlStore::find_alias(const Address& address) {
  return read([&](Impl& I) { return I.alias_where(kAliasByKey, address.key()); });
}

std::vector<core::Alias> SqlStore::list_aliases(std::optional<Id> company_id,
                                                std::optional<Id> user_id) {
  return read([&](Impl& I) {
    std::vector<core::Alias> out;
    // Only the filters given, so that one user's or one company's aliases are found by
    // their index (with `?1 IS NULL OR ...` SQLite walked every alias in the database).
    auto s = I.db.prepare(
        std::string("SELECT id, company_id, user_id, address, created_at FROM aliases WHERE ") +
        (company_id ? "company_id = ?1" : "?1 IS NULL") + " AND " +
        (user_id ? "user_id = ?2" : "?2 IS NULL") + " ORDER BY company_id, address_key");
    s.bind(1, company_id);
    s.bind(2, user_id);
    while (s.step()) out.push_back(read_alias(s));
    return out;
  });
}

std::vector<core::Alias> SqlStore::aliases_of(const std::vector<Id>& user_ids) {
  return read([&](Impl& I) {
    std::vector<core::Alias> out;
    auto s = I.db.prepare(
        "SELECT id, company_id, user_id, address, created_at FROM aliases WHERE user_id IN "
        "(SELECT c0 FROM mailroster_rows(?1)) ORDER BY company_id, address_key");
    const auto ids = list_rows(user_ids);
    s.bind(1, ids);
    while (s.step()) out.push_back(read_alias(s));
    return out;
  });
}

void SqlStore::remove_alias(Id id, const Actor& actor) {
  impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    auto a = I.alias_where("WHERE id = ?", id);
    if (!a) throw Failure(ErrorCode::not_found, "no alias with id " + std::to_string(id));
    I.remove_alias(*a, actor);
    tx.commit();
  });
}

std::vector<core::Alias> SqlStore::aliases_created(Id company_id, TimePoint from, TimePoint before,
                                                   std::size_t limit) {
  return read([&](Impl& I) {
    std::vector<core::Alias> out;
    auto s = I.db.prepare(
        "SELECT id, company_id, user_id, address, created_at FROM aliases "
        "WHERE company_id = ? AND created_at >= ? AND created_at < ? ORDER BY address_key "
        "LIMIT ?");
    s.bind(1, company_id).bind(2, to_unix(from)).bind(3, to_unix(before));
    s.bind(4, no_limit_if_zero(limit));
    while (s.step()) out.push_back(read_alias(s));
    return out;
  });
}

std::size_t SqlStore::count_aliases_created(Id company_id, TimePoint from, TimePoint before) {
  return read([&](Impl& I) {
    auto s = I.db.prepare(
        "SELECT COUNT(*) FROM aliases WHERE company_id = ? AND created_at >= ? AND "
        "created_at < ?");
    s.bind(1, company_id).bind(2, to_unix(from)).bind(3, to_unix(before));
    s.step();
    return static_cast<std::size_t>(s.int64(0));
  });
}

bool SqlStore::hold_lease(const std::string& name, const std::string& holder, TimePoint now,
                          std::chrono::seconds ttl) {
  // One statement, atomic by itself: not a write transaction, which on PostgreSQL would queue
  // behind another node's long import (and lose the lease while it waited).
  return impl_->guard([&] {
    auto s = impl_->db.prepare(
        "INSERT INTO leases(name, holder, expires_at) VALUES (?1, ?2, ?4) "
        "ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = "
        "excluded.expires_at WHERE leases.holder = excluded.holder OR leases.expires_at <= ?3");
    s.bind(1, name).bind(2, holder).bind(3, to_unix(now)).bind(4, to_unix(now + ttl));
    s.step();
    return impl_->db.changes() == 1;
  });
}

void SqlStore::release_lease(const std::string& name, const std::string& holder) {
  impl_->guard([&] {
    auto s = impl_->db.prepare("DELETE FROM leases WHERE name = ? AND holder = ?");
    s.bind(1, name).bind(2, holder);
    s.step();
  });
}

std::optional<std::string> SqlStore::lease_holder(const std::string& name, TimePoint now) {
  return read([&](Impl& I) -> std::optional<std::string> {
    auto s = I.db.prepare("SELECT holder FROM leases WHERE name = ? AND expires_at > ?");
    s.bind(1, name).bind(2, to_unix(now));
    if (!s.step()) return std::nullopt;
    return s.text(0);
  });
}

void SqlStore::node_seen(const Node& node) {
  impl_->guard([&] {
    auto s = impl_->db.prepare(
        "INSERT INTO nodes(id, host, version, serving, started_at, seen_at, expires_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO UPDATE SET host = excluded.host, "
        "version = excluded.version, serving = excluded.serving, seen_at = excluded.seen_at, "
        "expires_at = excluded.expires_at");
    s.bind(1, node.id).bind(2, node.host).bind(3, node.version).bind(4, node.serving);
    s.bind(5, to_unix(node.started_at)).bind(6, to_unix(node.seen_at));
    s.bind(7, to_unix(node.expires_at));
    s.step();
    auto old = impl_->db.prepare("DELETE FROM nodes WHERE expires_at < ?1");
    old.bind(1, to_unix(node.seen_at - std::chrono::hours(24)));
    old.step();
  });
}

void SqlStore::node_gone(const std::string& id) {
  impl_->guard([&] {
    auto s = impl_->db.prepare("DELETE FROM nodes WHERE id = ?1");
    s.bind(1, id);
    s.step();
  });
}

std::vector<Node> SqlStore::list_nodes() {
  return read([&](Impl& I) {
    std::vector<Node> out;
    auto s = I.db.prepare(
        "SELECT id, host, version, serving, started_at, seen_at, expires_at FROM nodes "
        "ORDER BY host, started_at, id");
    while (s.step()) {
      out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), from_unix(s.int64(4)),
                     from_unix(s.int64(5)), from_unix(s.int64(6))});
    }
    return out;
  });
}

bool SqlStore::report_sent(Id company_id, const std::string& week) {
  return read([&](Impl& I) {
    auto s = I.db.prepare("SELECT 1 FROM reports_sent WHERE company_id = ? AND week = ?");
    s.bind(1, company_id).bind(2, week);
    return s.step();
  });
}

void SqlStore::mark_report_sent(Id company_id, const std::string& week,
                                const std::string& recipients) {
  impl_->guard([&] {
    impl_->db
        .prepare(
            "INSERT INTO reports_sent(company_id, week, sent_at, recipients) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING")
        .bind(1, company_id)
        .bind(2, week)
        .bind(3, to_unix(impl_->now()))
        .bind(4, recipients)
        .run();
  });
}

// ---- invalid ------------------------------------------------------------------------------

core::InvalidAddress SqlStore::add_invalid(const Address& address, const std::string& reason,
                                           const Actor& actor) {
  return impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    const auto domain = I.domain_of(address, std::nullopt);
    const auto owner = I.resolve(address);
    switch (owner.kind) {
      case AddressOwner::Kind::user:
      case AddressOwner::Kind::alias:
        throw Failure(ErrorCode::conflict,
                      address.str() + " is a " +
                          (owner.kind == AddressOwner::Kind::user ? "user" : "alias") +
                          "; remove it before marking it invalid",
                      "address");
      case AddressOwner::Kind::invalid:
        throw Failure(ErrorCode::conflict, address.str() + " is already marked invalid", "address");
      case AddressOwner::Kind::discovered:
        I.remove_discovered(I.discovered_where("WHERE address_key = ?1", address.key()).front().id,
                            actor);
        break;
      case AddressOwner::Kind::none:
        break;
    }
    I.db.prepare(
            "INSERT INTO invalid_addresses(company_id, domain_id, address, address_key, "
            "reason, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(1, domain.company_id)
        .bind(2, domain.id)
        .bind(3, address.str())
        .bind(4, address.key())
        .bind(5, reason)
        .bind(6, to_unix(I.now()))
        .run();
    auto created = I.invalid_where("WHERE id = ?", I.db.last_insert_id()).value();
    I.audit(created.company_id, actor, "invalid.add", created.address.str(), "",
            json_text(created));
    tx.commit();
    return created;
  });
}

std::optional<core::InvalidAddress> SqlStore::find_invalid(const Address& address) {
  return read([&](Impl& I) { return I.invalid_where("WHERE address_key = ?", address.key()); });
}

namespace {
// A company's invalid addresses whose address or reason has ?4 in it ("" every one).
constexpr std::string_view kInvalidMatching =
    " FROM invalid_addresses WHERE company_id = ?1 AND (?4 = '' OR "
    "instr(lower(address || ' ' || reason), ?4) > 0) ";
}  // namespace

std::vector<core::InvalidAddress> SqlStore::list_invalid(Id company_id, Window window,
                                                         std::string_view search) {
  return read([&](Impl& I) {
    std::vector<core::InvalidAddress> out;
    auto s = I.db.prepare(sql_with("SELECT id, company_id, address, reason, created_at",
                                   kInvalidMatching, "ORDER BY address_key LIMIT ?2 OFFSET ?3"));
    s.bind(1, company_id);
    bind_window(s, 2, window);
    s.bind(4, core::ascii_lower(search));
    while (s.step()) out.push_back(read_invalid(s));
    return out;
  });
}

std::size_t SqlStore::count_invalid(Id company_id, std::string_view search) {
  return count_of(sql_with("SELECT COUNT(*)", kInvalidMatching, ""), [&](Statement& s) {
    s.bind(1, company_id);
    s.bind(4, core::ascii_lower(search));
  });
}

void SqlStore::remove_invalid(Id id, const Actor& actor) {
  impl_->guard([&] {
    Transaction tx(impl_->db);
    impl_->remove_invalid(id, actor);
    tx.commit();
  });
}

// ---- discovered ---------------------------------------------------------------------------

core::DiscoveredAddress SqlStore::save_discovered(const core::DiscoveredAddress& d,
                                                  const Actor& actor) {
  // Every clean delivery for discovery comes here: as few statements as it takes (on
  // PostgreSQL each is a round trip), and what was saved is returned as the tables now hold
  // it (deliveries in order) without reading it back.
  auto saved = d;
  std::sort(saved.clean_inbound.begin(), saved.clean_inbound.end());
  std::vector<std::int64_t> inbound;
  for (const auto t : saved.clean_inbound) inbound.push_back(to_unix(t));
  const auto discovered_at = to_unix(saved.discovered_at);
  return impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    bool was_discovered = false;
    if (saved.id == 0) {
      const auto domain = I.domain_of(saved.address, std::nullopt);
      if (I.resolve(saved.address).kind != AddressOwner::Kind::none) {
        throw Failure(ErrorCode::conflict, saved.address.str() + " is already known", "address");
      }
      I.db.prepare(
              "INSERT INTO discovered_addresses(company_id, domain_id, address, address_key, "
              "first_seen, outbound_messages, discovered_at, notifications_sent, "
              "suggested_alias_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
          .bind(1, domain.company_id)
          .bind(2, domain.id)
          .bind(3, saved.address.str())
          .bind(4, saved.address.key())
          .bind(5, to_unix(saved.first_seen))
          .bind(6, saved.outbound_messages)
          .bind(7, discovered_at)
          .bind(8, saved.notifications_sent)
          .bind(9, saved.suggested_alias_of)
          .run();
      saved.id = I.db.last_insert_id();
      saved.company_id = domain.company_id;
    } else {
      auto existing =
          I.db.prepare("SELECT company_id, discovered_at FROM discovered_addresses WHERE id = ?");
      existing.bind(1, saved.id);
      if (!existing.step()) {
        throw Failure(ErrorCode::not_found,
                      "no discovered address with id " + std::to_string(saved.id));
      }
      saved.company_id = existing.int64(0);
      was_discovered = !existing.is_null(1);
      I.db.prepare(
              "UPDATE discovered_addresses SET outbound_messages = ?, discovered_at = ?, "
              "notifications_sent = ?, suggested_alias_of = ? WHERE id = ?")
          .bind(1, saved.outbound_messages)
          .bind(2, discovered_at)
          .bind(3, saved.notifications_sent)
          .bind(4, saved.suggested_alias_of)
          .bind(5, saved.id)
          .run();
      I.db.prepare("DELETE FROM discovered_inbound WHERE discovered_id = ?")
          .bind(1, saved.id)
          .run();
    }
    if (!inbound.empty()) {
      const auto rows = list_rows(inbound);
      I.db.prepare(
              "INSERT INTO discovered_inbound(discovered_id, at) SELECT ?1, k.c0 FROM "
              "mailroster_rows(?2) k")
          .bind(1, saved.id)
          .bind(2, rows)
          .run();
    }
    if (saved.discovered_at && !was_discovered) {
      I.audit(saved.company_id, actor, "discovered.add", saved.address.str(), "", json_text(saved));
    }
    tx.commit();
    return saved;
  });
}

std::optional<core::DiscoveredAddress> SqlStore::find_discovered(const Address& address) {
  return read([&](Impl& I) -> std::optional<core::DiscoveredAddress> {
    auto found = I.discovered_where("WHERE address_key = ?1", address.key());
    if (found.empty()) return std::nullopt;
    return found.front();
  });
}

std::vector<core::DiscoveredAddress> SqlStore::list_discovered(Id company_id, Window window,
                                                               std::string_view search) {
  return read([&](Impl& I) {
    return I.discovered_where("WHERE company_id = ?1", company_id, window, search);
  });
}

std::size_t SqlStore::count_discovered(Id company_id, std::string_view search) {
  return count_of(
      "SELECT COUNT(*) FROM discovered_addresses WHERE company_id = ?1 AND (?2 = '' OR "
      "instr(address_key, ?2) > 0)",
      [&](Statement& s) {
        s.bind(1, company_id);
        s.bind(2, core::ascii_lower(search));
      });
}

void SqlStore::remove_discovered(Id id, const Actor& actor) {
  impl_->guard([&] {
    Transaction tx(impl_->db);
    impl_->remove_discovered(id, actor);
    tx.commit();
  });
}

// ---- directory sync ----------------------------------------------------------------------

core::CompanyView SqlStore::sync_view(Id company_id, const std::vector<std::string>& address_keys,
                                      const std::vector<Id>& user_ids) {
  return impl_->guard([&] {
    auto& I = *impl_;
    core::CompanyView view;
    std::unordered_set<Id> have;
    // The view is looked up key by key: SyncRun reads a company whole when that pays.
    // Key lists go in as rows (list_rows): one statement per batch, whatever its size.
    const auto keys = list_rows(address_keys);
    const auto ids = list_rows(user_ids);
    {
      // UNION ALL and de-duplication here: UNION would sort every row in a temporary b-tree.
      const std::string columns(kUserColumns);
      auto s = I.db.prepare("SELECT " + columns +
                            " FROM users WHERE company_id = ?1 AND address_key IN (SELECT c0 "
                            "FROM mailroster_rows(?2)) UNION ALL SELECT " +
                            columns +
                            " FROM users WHERE id IN (SELECT c0 FROM mailroster_rows(?3)) AND "
                            "+company_id = ?1");  // by id, not a scan of the company
      s.bind(1, company_id);
      s.bind(2, keys);
      s.bind(3, ids);
      while (s.step()) {
        auto u = read_user(s);
        if (have.insert(u.id).second) view.users.push_back(std::move(u));
      }
    }
    std::vector<Id> user_list(have.begin(), have.end());
    {
      auto s = I.db.prepare(
          "SELECT id, company_id, user_id, address, created_at FROM aliases WHERE +company_id = "
          "?1 AND id IN (SELECT owner FROM address_claims WHERE kind = 'alias' AND address_key IN "
          "(SELECT c0 FROM mailroster_rows(?2))) UNION SELECT id, "
          "company_id, user_id, address, created_at FROM aliases WHERE user_id IN (SELECT c0 "
          "FROM mailroster_rows(?3))");
      const auto users = list_rows(user_list);
      s.bind(1, company_id);
      s.bind(2, keys);
      s.bind(3, users);
      while (s.step()) view.aliases.push_back(read_alias(s));
    }
    for (const auto& a : view.aliases) {  // the users of aliases that hold a wanted address
      if (have.insert(a.user_id).second) view.users.push_back(I.require_user(a.user_id));
    }
    return view;
  });
}

std::unordered_map<std::string, std::optional<Id>> SqlStore::holders(
    const std::vector<std::string_view>& address_keys) {
  return impl_->guard([&] {
    std::unordered_map<std::string, std::optional<Id>> out;
    if (address_keys.empty()) return out;
    // One claim lookup per key; the holder's company only for the (few) claimed ones.
    auto s = impl_->db.prepare(
        "SELECT c.address_key, CASE c.kind WHEN 'user' THEN (SELECT company_id FROM users u "
        "WHERE u.id = c.owner) WHEN 'alias' THEN (SELECT company_id FROM aliases a WHERE a.id = "
        "c.owner) END FROM mailroster_rows(?1) k JOIN address_claims c ON c.address_key = k.c0");
    const auto keys = list_rows(address_keys);
    s.bind(1, keys);
    while (s.step()) {
      out[s.text(0)] = s.is_null(1) ? std::nullopt : std::optional<Id>(s.int64(1));
    }
    return out;
  });
}

std::vector<std::pair<std::string, Id>> SqlStore::source_ids(Id company_id, core::Source source) {
  return read([&](Impl& I) {
    std::vector<std::pair<std::string, Id>> out;
    auto s = I.db.prepare(
        "SELECT source_id, id FROM users WHERE company_id = ? AND source = ? AND source_id <> ''");
    s.bind(1, company_id);
    s.bind(2, core::to_string(source));
    while (s.step()) out.emplace_back(s.text(0), s.int64(1));
    return out;
  });
}

std::vector<Id> SqlStore::user_ids(Id company_id, core::Source source) {
  return read([&](Impl& I) {
    std::vector<Id> out;
    auto s = I.db.prepare("SELECT id FROM users WHERE company_id = ? AND source = ?");
    s.bind(1, company_id);
    s.bind(2, core::to_string(source));
    while (s.step()) out.push_back(s.int64(0));
    return out;
  });
}

void SqlStore::apply_plan(const core::Plan& plan, const Actor& actor) {
  impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db, Transaction::Nesting::join);
    std::unordered_map<std::string, core::Domain> domains;  // by name, for this plan
    // Impl::domain_of, remembered: a domain of another company still fails there.
    auto domain_of = [&](const Address& a, std::optional<Id> company_id) -> const core::Domain& {
      auto it = domains.find(a.domain());
      if (it == domains.end() || (company_id && it->second.company_id != *company_id)) {
        it = domains.insert_or_assign(a.domain(), I.domain_of(a, company_id)).first;
      }
      return it->second;
    };
    // Addresses nobody holds (most of a bulk import) need no per-address lookup: one query
    // per plan finds the taken ones (claimed, or discovered), which go through
    // claim_for_account; the claim triggers still refuse anything taken meanwhile.
    std::vector<std::string> keys;
    for (const auto& c : plan.creates) keys.push_back(c.entry->address.key());
    for (const auto* list : {&plan.creates, &plan.updates}) {
      for (const auto& i : *list) {
        for (const auto& a : i.add_aliases) keys.push_back(a.key());
      }
    }
    const auto taken = I.taken(keys);
    auto claim = [&](const Address& a) {
      if (taken.count(a.key())) I.claim_for_account(a, actor);
    };
    auto add_aliases = [&](const core::User& user, const std::vector<Address>& aliases) {
      for (const auto& a : aliases) {
        const auto& domain = domain_of(a, user.company_id);
        claim(a);
        I.insert_alias(user, a, domain, actor);
      }
    };
    if (!plan.deletes.empty()) {
      std::vector<Id> ids;
      for (const auto& d : plan.deletes) ids.push_back(*d.user_id);
      const auto rows = list_rows(ids);
      auto s = I.db.prepare(sql_with(
          "SELECT ", kUserColumns, " FROM users WHERE id IN (SELECT c0 FROM mailroster_rows(?1))"));
      s.bind(1, rows);
      std::unordered_map<Id, core::User> found;
      while (s.step()) {
        auto u = read_user(s);
        found.emplace(u.id, std::move(u));
      }
      std::vector<core::User> users;  // in the plan's order
      for (const auto id : ids) {
        auto it = found.find(id);
        if (it == found.end()) {
          throw Failure(ErrorCode::not_found, "no user with id " + std::to_string(id));
        }
        users.push_back(std::move(it->second));
      }
      I.remove_users(users, actor);
    }
    std::vector<NameRoleUpdate> name_role;
    for (const auto& u : plan.updates) {
      for (const auto& a : u.remove_aliases) {
        if (auto alias = I.alias_where(kAliasByKey, a.key())) {
          I.remove_alias(*alias, actor);
        }
      }
      UserChange change;
      for (const auto& c : u.changes) {
        if (c.field == "address") change.address = u.entry->address;
        if (c.field == "first_name") change.first_name = u.entry->first_name;
        if (c.field == "surname") change.surname = u.entry->surname;
        if (c.field == "role") change.role = u.role;
      }
      if (!change.address && !u.changes.empty()) {  // names or role: with the others below
        name_role.push_back({*u.user_id, change.first_name, change.surname, text_of(change.role)});
        if (!u.add_aliases.empty()) add_aliases(I.require_user(*u.user_id), u.add_aliases);
        continue;
      }
      const auto user =
          u.changes.empty() ? I.require_user(*u.user_id) : I.update_user(*u.user_id, change, actor);
      add_aliases(user, u.add_aliases);
    }
    I.update_users(name_role, actor);
    // Creates of free addresses go in as one set (Impl::insert_users), in address order so
    // that each index insert lands next to the previous one; the others one by one.
    std::vector<const core::PlanItem*> creates;
    std::vector<NewUserRow> rows;
    for (const auto& c : plan.creates) {
      if (taken.count(c.entry->address.key())) {
        creates.push_back(&c);
        continue;
      }
      const auto& domain = domain_of(c.entry->address, std::nullopt);
      rows.push_back({&c, domain.company_id, domain.id, c.entry->address.str()});
    }
    std::sort(rows.begin(), rows.end(), [](const NewUserRow& a, const NewUserRow& b) {
      return a.item->entry->address.key() < b.item->entry->address.key();
    });
    I.insert_users(rows, plan.source, actor);
    // Their aliases: those nobody holds as one set too, the others one by one.
    std::vector<NewAliasRow> alias_rows;
    for (const auto& r : rows) {
      const auto& user = r.item->entry->address;
      std::vector<Address> apart;
      for (const auto& a : r.item->add_aliases) {
        if (taken.count(a.key())) {
          apart.push_back(a);
          continue;
        }
        alias_rows.push_back({&a, &user, r.company_id, domain_of(a, r.company_id).id});
      }
      if (!apart.empty()) add_aliases(*I.user_where(kUserByKey, user.key()), apart);
    }
    I.insert_aliases(alias_rows, actor);
    for (const auto* c : creates) {
      NewUser n;
      n.address = c->entry->address;
      n.first_name = c->entry->first_name;
      n.surname = c->entry->surname;
      n.role = c->role;
      n.source = plan.source;
      n.source_id = c->entry->source_id;
      const auto& domain = domain_of(n.address, std::nullopt);
      claim(n.address);
      add_aliases(I.insert_user(n, domain, actor), c->add_aliases);
    }
    I.after_bulk_write(plan.creates.size() + plan.updates.size() + plan.deletes.size());
    tx.commit();
  });
}

// ---- directory sync settings ------------------------------------------------------------

namespace {

constexpr std::string_view kSyncColumns =
    "company_id, kind, settings, options, frequency_hours, sealed_secret, state, "
    "last_attempt_at, last_success_at, last_error, last_result";

DirectorySync read_sync(const Statement& s) {
  DirectorySync d;
  d.company_id = s.int64(0);
  d.kind = core::parse_source(s.text(1)).value();
  d.settings = s.text(2);
  d.options = s.text(3);
  if (!s.is_null(4)) d.frequency_hours = s.int32(4);
  d.sealed_secret = s.text(5);
  d.state = s.text(6);
  if (!s.is_null(7)) d.last_attempt = from_unix(s.int64(7));
  if (!s.is_null(8)) d.last_success = from_unix(s.int64(8));
  d.last_error = s.text(9);
  d.last_result = s.text(10);
  return d;
}

// What the audit trail shows of a sync's configuration: never the secret.
std::string sync_audit_text(const DirectorySync& d) {
  nlohmann::json j = {{"kind", core::to_string(d.kind)},
                      {"settings", nlohmann::json::parse(d.settings, nullptr, false)},
                      {"options", nlohmann::json::parse(d.options, nullptr, false)},
                      {"frequency_hours", d.frequency_hours ? nlohmann::json(*d.frequency_hours)
                                                            : nlohmann::json(nullptr)}};
  return j.dump();
}

}  // namespace

std::optional<DirectorySync> SqlStore::directory_sync(Id company_id, core::Source kind) {
  return read([&](Impl& I) -> std::optional<DirectorySync> {
    auto s = I.db.prepare(sql_with("SELECT ", kSyncColumns,
                                   " FROM directory_syncs WHERE company_id = ? AND kind = ?"));
    s.bind(1, company_id);
    s.bind(2, core::to_string(kind));
    if (!s.step()) return std::nullopt;
    return read_sync(s);
  });
}

std::vector<DirectorySync> SqlStore::directory_syncs(std::optional<Id> company_id) {
  return read([&](Impl& I) {
    std::vector<DirectorySync> out;
    auto s = I.db.prepare(sql_with("SELECT ", kSyncColumns,
                                   " FROM directory_syncs WHERE (?1 IS NULL OR company_id = ?1) "
                                   "ORDER BY company_id, kind"));
    s.bind(1, company_id);
    while (s.step()) out.push_back(read_sync(s));
    return out;
  });
}

void SqlStore::save_directory_sync(const DirectorySync& d,
                                   const std::optional<std::string>& sealed_secret,
                                   const Actor& actor) {
  impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    if (!I.company(d.company_id)) {
      throw Failure(ErrorCode::not_found, "no company with id " + std::to_string(d.company_id));
    }
    const auto before = directory_sync(d.company_id, d.kind);
    I.db.prepare(
            "INSERT INTO directory_syncs(company_id, kind, settings, options, frequency_hours, "
            "sealed_secret) VALUES (?1, ?2, ?3, ?4, ?5, COALESCE(?6, '')) "
            "ON CONFLICT(company_id, kind) DO UPDATE SET settings = ?3, options = ?4, "
            "frequency_hours = ?5, sealed_secret = COALESCE(?6, directory_syncs.sealed_secret)")
        .bind(1, d.company_id)
        .bind(2, core::to_string(d.kind))
        .bind(3, d.settings)
        .bind(4, d.options)
        .bind(5, d.frequency_hours)
        .bind(6, sealed_secret)
        .run();
    I.audit(d.company_id, actor, "sync.configure", std::string(core::to_string(d.kind)),
            before ? sync_audit_text(*before) : "", sync_audit_text(d));
    tx.commit();
  });
}

void SqlStore::remove_directory_sync(Id company_id, core::Source kind, const Actor& actor) {
  impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    auto before = directory_sync(company_id, kind);
    if (!before) {
      throw Failure(ErrorCode::not_found,
                    std::string("no ") + std::string(core::to_string(kind)) + " sync configured");
    }
    I.db.prepare("DELETE FROM directory_syncs WHERE company_id = ? AND kind = ?")
        .bind(1, company_id)
        .bind(2, core::to_string(kind))
        .run();
    I.audit(company_id, actor, "sync.remove", std::string(core::to_string(kind)),
            sync_audit_text(*before), "");
    tx.commit();
  });
}

std::optional<int> SqlStore::directory_sync_hours(Id company_id) {
  return read([&](Impl& I) -> std::optional<int> {
    auto s = I.db.prepare("SELECT MAX(frequency_hours) FROM directory_syncs WHERE company_id = ?");
    s.bind(1, company_id);
    if (!s.step() || s.is_null(0)) return std::nullopt;
    return s.int32(0);
  });
}

void SqlStore::record_sync_outcome(Id company_id, core::Source kind, TimePoint at,
                                   const SyncOutcome& o) {
  impl_->guard([&] {
    impl_->db
        .prepare(
            "UPDATE directory_syncs SET last_attempt_at = ?3, "
            "last_success_at = CASE WHEN ?4 <> 0 THEN ?3 ELSE last_success_at END, "
            "last_error = ?5, last_result = CASE WHEN ?4 <> 0 THEN ?6 ELSE last_result END, "
            "state = COALESCE(?7, state) WHERE company_id = ?1 AND kind = ?2")
        .bind(1, company_id)
        .bind(2, core::to_string(kind))
        .bind(3, to_unix(at))
        .bind(4, o.success)
        .bind(5, o.success ? std::string() : o.error)
        .bind(6, o.result)
        .bind(7, o.success ? o.state : std::nullopt)
        .run();
  });
}

// ---- logins and sessions -----------------------------------------------------------------

namespace {

constexpr std::string_view kLoginColumns =
    "id, email, password_hash, role, company_id, user_id, created_at";

Login read_login(const Statement& s) {
  Login l;
  l.id = s.int64(0);
  l.email = s.text(1);
  l.password_hash = s.text(2);
  l.role = parse_login_role(s.text(3)).value();
  if (!s.is_null(4)) l.company_id = s.int64(4);
  if (!s.is_null(5)) l.user_id = s.int64(5);
  l.created_at = from_unix(s.int64(6));
  return l;
}

// What the audit trail shows of a login: never the password hash.
std::string login_audit_text(const Login& l) {
  nlohmann::json j = {{"email", l.email}, {"role", to_string(l.role)}};
  if (l.company_id) j["company_id"] = *l.company_id;
  if (l.user_id) j["user_id"] = *l.user_id;
  return j.dump();
}

}  // namespace

Login SqlStore::add_login(const Login& login, const Actor& actor) {
  return impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    if (login.company_id && !I.company(*login.company_id)) {
      throw Failure(ErrorCode::not_found,
                    "no company with id " + std::to_string(*login.company_id));
    }
    if (find_login(login.email)) {
      throw Failure(ErrorCode::conflict, login.email + " already logs in", "email");
    }
    I.db.prepare(
            "INSERT INTO logins(email, password_hash, role, company_id, user_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)")
        .bind(1, core::ascii_lower(login.email))
        .bind(2, login.password_hash)
        .bind(3, to_string(login.role))
        .bind(4, login.company_id)
        .bind(5, login.user_id)
        .bind(6, to_unix(I.now()))
        .run();
    auto created = login;
    created.id = I.db.last_insert_id();
    created.email = core::ascii_lower(login.email);
    created.created_at = from_unix(to_unix(I.now()));
    I.audit(login.company_id, actor, "login.add", created.email, "", login_audit_text(created));
    tx.commit();
    return created;
  });
}

std::optional<Login> SqlStore::find_login(std::string_view email) {
  return read([&](Impl& I) -> std::optional<Login> {
    auto s = I.db.prepare(sql_with("SELECT ", kLoginColumns, " FROM logins WHERE email = ?"));
    s.bind(1, core::ascii_lower(email));
    if (!s.step()) return std::nullopt;
    return read_login(s);
  });
}

std::optional<Login> SqlStore::login_by_id(Id id) {
  return read([&](Impl& I) -> std::optional<Login> {
    auto s = I.db.prepare(sql_with("SELECT ", kLoginColumns, " FROM logins WHERE id = ?"));
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_login(s);
  });
}

std::vector<Login> SqlStore::list_logins() {
  return read([&](Impl& I) {
    std::vector<Login> out;
    auto s = I.db.prepare(sql_with("SELECT ", kLoginColumns, " FROM logins ORDER BY email"));
    while (s.step()) out.push_back(read_login(s));
    return out;
  });
}

void SqlStore::set_login_password(Id id, const std::string& password_hash, const Actor& actor) {
  impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    auto l = login_by_id(id);
    if (!l) throw Failure(ErrorCode::not_found, "no login with id " + std::to_string(id));
    I.db.prepare("UPDATE logins SET password_hash = ? WHERE id = ?")
        .bind(1, password_hash)
        .bind(2, id)
        .run();
    I.db.prepare("DELETE FROM sessions WHERE login_id = ?").bind(1, id).run();
    // Links still out for the old password go with it: one set it, the others are stale.
    I.db.prepare("DELETE FROM password_resets WHERE login_id = ?").bind(1, id).run();
    I.audit(l->company_id, actor, "login.password", l->email, "", "");
    tx.commit();
  });
}

void SqlStore::remove_login(Id id, const Actor& actor) {
  impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    auto l = login_by_id(id);
    if (!l) throw Failure(ErrorCode::not_found, "no login with id " + std::to_string(id));
    I.db.prepare("DELETE FROM logins WHERE id = ?").bind(1, id).run();  // sessions: cascade
    I.audit(l->company_id, actor, "login.remove", l->email, login_audit_text(*l), "");
    tx.commit();
  });
}

void SqlStore::add_session(const Session& session) {
  impl_->guard([&] {
    impl_->db
        .prepare(
            "INSERT INTO sessions(token_hash, login_id, csrf, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)")
        .bind(1, session.token_hash)
        .bind(2, session.login_id)
        .bind(3, session.csrf)
        .bind(4, to_unix(impl_->now()))
        .bind(5, to_unix(session.expires_at))
        .run();
  });
}

std::optional<Session> SqlStore::find_session(const std::string& token_hash, TimePoint now) {
  return read([&](Impl& I) -> std::optional<Session> {
    auto s = I.db.prepare(
        "SELECT token_hash, login_id, csrf, expires_at FROM sessions WHERE token_hash = ? AND "
        "expires_at > ?");
    s.bind(1, token_hash);
    s.bind(2, to_unix(now));
    if (!s.step()) return std::nullopt;
    return Session{s.text(0), s.int64(1), s.text(2), from_unix(s.int64(3))};
  });
}

void SqlStore::remove_session(const std::string& token_hash) {
  impl_->guard([&] {
    impl_->db.prepare("DELETE FROM sessions WHERE token_hash = ?").bind(1, token_hash).run();
  });
}

void SqlStore::add_password_reset(const std::string& token_hash, Id login_id,
                                  TimePoint expires_at) {
  impl_->guard([&] {
    impl_->db
        .prepare(
            "INSERT INTO password_resets(token_hash, login_id, created_at, expires_at) "
            "VALUES (?, ?, ?, ?)")
        .bind(1, token_hash)
        .bind(2, login_id)
        .bind(3, to_unix(impl_->now()))
        .bind(4, to_unix(expires_at))
        .run();
  });
}

std::optional<Id> SqlStore::take_password_reset(const std::string& token_hash, TimePoint now) {
  return impl_->guard([&]() -> std::optional<Id> {
    auto& I = *impl_;
    Transaction tx(I.db);
    std::optional<Id> login;
    {
      auto s = I.db.prepare(
          "SELECT login_id FROM password_resets WHERE token_hash = ? AND expires_at > ?");
      s.bind(1, token_hash);
      s.bind(2, to_unix(now));
      if (s.step()) login = s.int64(0);
    }
    I.db.prepare("DELETE FROM password_resets WHERE token_hash = ? OR expires_at <= ?")
        .bind(1, token_hash)
        .bind(2, to_unix(now))
        .run();
    tx.commit();
    return login;
  });
}

AddressOwner SqlStore::resolve(const Address& address) {
  return read([&](Impl& I) { return I.resolve(address); });
}

bool SqlStore::lookups_changed() {
  // Another thread writing on the main connection: cannot tell without waiting for it.
  std::unique_lock main(impl_->mutex, std::try_to_lock);
  if (!main.owns_lock()) return true;
  return impl_->guard([&] {
    const auto count = impl_->db.change_count();  // never 0: it counts the first call
    return std::exchange(lookups_seen_, count) != count;
  });
}

// ---- counts shared between nodes ----------------------------------------------------------

namespace {

std::string_view channel_of(Tally tally) {
  switch (tally) {
    case Tally::harvest:
      return "mailroster_harvest";
    case Tally::logins:
      return "mailroster_logins";
    case Tally::verify_flushes:
      return "mailroster_verify_flush";
  }
  return "mailroster_unknown";
}

// Below PostgreSQL's 8,000-byte limit on a notification's payload, with the schema in front.
constexpr std::size_t kTallyMessage = 7000;
constexpr std::size_t kTallyKey = 320;

bool tellable(const std::string& key) {
  return !key.empty() && key.size() <= kTallyKey && key.find('\n') == std::string::npos;
}

// "<node>\n<key> <count>\n..." (the count after the key's last space: an email may hold one).
std::vector<core::TallyCount> parse_tally(std::string_view message, std::string_view node) {
  std::vector<core::TallyCount> out;
  const auto end = message.find('\n');
  if (end == std::string_view::npos || message.substr(0, end) == node) return out;
  for (auto line : core::split(message.substr(end + 1), '\n')) {
    const auto space = line.rfind(' ');
    if (space == 0 || space == std::string_view::npos || space > kTallyKey) continue;
    std::uint32_t count = 0;
    const auto digits = line.substr(space + 1);
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), count);
    if (ec != std::errc() || ptr != digits.data() + digits.size()) continue;
    out.push_back({std::string(line.substr(0, space)), count});
  }
  return out;
}

}  // namespace

void SqlStore::tell_nodes(Tally tally, const std::vector<core::TallyCount>& counts) {
  if (counts.empty()) return;
  impl_->guard([&] {
    std::string message = node_ + "\n";
    const auto header = message.size();
    for (const auto& c : counts) {
      if (!tellable(c.key)) continue;
      auto line = fmt::format("{} {}\n", c.key, c.count);
      if (message.size() + line.size() > kTallyMessage) {
        impl_->db.tell_nodes(channel_of(tally), message);
        message.resize(header);
      }
      message += line;
    }
    if (message.size() > header) impl_->db.tell_nodes(channel_of(tally), message);
  });
}

std::vector<core::TallyCount> SqlStore::heard_from_nodes(Tally tally) {
  return impl_->guard([&] {
    std::vector<core::TallyCount> out;
    for (const auto& message : impl_->db.heard_from_nodes(channel_of(tally))) {
      auto counts = parse_tally(message, node_);
      out.insert(out.end(), std::make_move_iterator(counts.begin()),
                 std::make_move_iterator(counts.end()));
    }
    return out;
  });
}

// ---- discovery settings -------------------------------------------------------------------

core::DiscoverySettings SqlStore::discovery_settings(Id company_id) {
  return read([&](Impl& I) { return I.settings(company_id); });
}

void SqlStore::set_discovery_settings(Id company_id, const core::DiscoverySettings& s,
                                      const Actor& actor) {
  if (auto error = core::validate(s)) throw Failure(*error);
  impl_->guard([&] {
    auto& I = *impl_;
    Transaction tx(I.db);
    const auto c = I.require_company(company_id);
    const auto before = I.settings(company_id);
    I.db.prepare(sql_with("INSERT INTO discovery_settings(company_id, ", kSettingsColumns,
                          ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(company_id) "
                          "DO UPDATE SET enabled = excluded.enabled, default_role = "
                          "excluded.default_role, inbound_threshold = excluded.inbound_threshold, "
                          "window_days = excluded.window_days, notification_weeks = "
                          "excluded.notification_weeks, expired_to_new_user = "
                          "excluded.expired_to_new_user, auto_add_aliases = "
                          "excluded.auto_add_aliases, auto_add_outbound = "
                          "excluded.auto_add_outbound, report_new_users = "
                          "excluded.report_new_users, report_new_aliases = "
                          "excluded.report_new_aliases, report_include_admin = "
                          "excluded.report_include_admin"))
        .bind(1, company_id)
        .bind(2, s.enabled)
        .bind(3, core::to_string(s.default_role))
        .bind(4, s.inbound_threshold)
        .bind(5, s.window_days)
        .bind(6, s.notification_weeks)
        .bind(7, s.expired_to_new_user)
        .bind(8, s.auto_add_aliases)
        .bind(9, s.auto_add_outbound)
        .bind(10, s.report_new_users)
        .bind(11, s.report_new_aliases)
        .bind(12, s.report_include_admin)
        .run();
    I.audit(company_id, actor, "discovery.settings", c.name, json_text(before), json_text(s));
    tx.commit();
  });
}

// ---- audit --------------------------------------------------------------------------------

namespace {

// The audit events a filter selects: its parameters ?1 (company), ?4 (object) and ?5 (action),
// bound by bind_audit_filter. A condition not asked for is not in the text at all: with
// `?1 IS NULL OR company_id = ?1` neither database used the index by company, and a small
// company's page scanned the whole trail.
std::string audit_where(const AuditFilter& f) {
  return std::string(" FROM audit_events WHERE ") +
         (f.company_id ? "company_id = ?1" : "?1 IS NULL") +
         (f.object.empty() ? " AND ?4 = ''" : " AND lower(object) = lower(?4)") +
         (f.action.empty() ? " AND ?5 = ''" : " AND action = ?5");
}

void bind_audit_filter(Statement& s, const AuditFilter& f) {
  s.bind(1, f.company_id);
  s.bind(4, f.object);
  s.bind(5, f.action);
}

}  // namespace

std::vector<core::AuditEvent> SqlStore::list_audit(const AuditFilter& f) {
  return read([&](Impl& I) {
    std::vector<core::AuditEvent> out;
    auto s = I.db.prepare("SELECT id, at, company_id, actor, action, object, before, after" +
                          audit_where(f) + " ORDER BY id DESC LIMIT ?2 OFFSET ?3");
    bind_audit_filter(s, f);
    bind_window(s, 2, {f.limit, f.offset});
    while (s.step()) {
      core::AuditEvent e;
      e.id = s.int64(0);
      e.at = from_unix(s.int64(1));
      if (!s.is_null(2)) e.company_id = s.int64(2);
      e.actor = s.text(3);
      e.action = s.text(4);
      e.object = s.text(5);
      e.before = s.text(6);
      e.after = s.text(7);
      // A user.add event's after is written out again whole (compact, whoever wrote it);
      // PostgreSQL's other JSON is made compact here. SQLite's already is: no work for it.
      const bool postgres = I.backend.dialect == Dialect::postgres;
      if (postgres) e.before = compact_json(std::move(e.before));
      if (e.action == "user.add" && !e.after.empty()) {
        e.after = whole_user_add_after(e);
      } else if (postgres) {
        e.after = compact_json(std::move(e.after));
      }
      out.push_back(std::move(e));
    }
    return out;
  });
}

std::size_t SqlStore::count_audit(const AuditFilter& f) {
  return count_of("SELECT COUNT(*)" + audit_where(f),
                  [&](Statement& s) { bind_audit_filter(s, f); });
}

std::size_t SqlStore::prune_audit(TimePoint before) { return prune("audit_events", before); }

std::size_t SqlStore::prune(std::string_view table, TimePoint before) {
  // Rows are numbered as they are written, so the old ones are the lowest ids: each batch
  // looks at the 10,000 lowest only (never the whole table, which is what a run that finds
  // nothing to remove would scan otherwise), in a transaction of its own so that mail flow's
  // writes are not held up, and it stops at the first batch that removes none.
  const auto t = std::string(table);
  std::size_t total = 0;
  for (;;) {
    const auto removed = impl_->guard([&] {
      impl_->db
          .prepare("DELETE FROM " + t + " WHERE id IN (SELECT id FROM (SELECT id, at FROM " + t +
                   " ORDER BY id LIMIT 10000) oldest WHERE at < ?)")
          .bind(1, to_unix(before))
          .run();
      return impl_->db.changes();
    });
    if (removed <= 0) return total;
    total += static_cast<std::size_t>(removed);
  }
}

// ---- mail log -----------------------------------------------------------------------------

namespace {

// The entries a filter selects: ?1 company, ?4 address, ?5 result, ?6 direction, ?7 since,
// ?8 before, ?9 id (bound by bind_mail_log_filter). As audit_where, a condition not asked for is
// not in the text, so each query uses the index by company and id.
std::string mail_log_where(const MailLogFilter& f, Dialect dialect) {
  // " AND (a or b holds the parameter, any case)"
  const auto either_holds = [find = dialect == Dialect::postgres ? "strpos" : "instr"](
                                const char* a, const char* b, const char* param) {
    return fmt::format(" AND ({0}(lower({1}), lower({3})) > 0 OR {0}(lower({2}), lower({3})) > 0)",
                       find, a, b, param);
  };
  return std::string(" FROM mail_log WHERE ") + (f.company_id ? "company_id = ?1" : "?1 IS NULL") +
         (f.address.empty() ? " AND ?4 = ''" : either_holds("recipient", "sender", "?4")) +
         (f.id.empty() ? " AND ?9 = ''" : either_holds("queue_id", "reply", "?9")) +
         (f.result.empty() ? " AND ?5 = ''" : " AND result = ?5") +
         (f.direction.empty() ? " AND ?6 = ''" : " AND direction = ?6") +
         (f.since ? " AND at >= ?7" : " AND ?7 IS NULL") +
         (f.before ? " AND at < ?8" : " AND ?8 IS NULL");
}

void bind_mail_log_filter(Statement& s, const MailLogFilter& f) {
  s.bind(1, f.company_id);
  s.bind(4, f.address);
  s.bind(5, f.result);
  s.bind(6, f.direction);
  s.bind(7, f.since ? std::optional(to_unix(*f.since)) : std::nullopt);
  s.bind(8, f.before ? std::optional(to_unix(*f.before)) : std::nullopt);
  s.bind(9, f.id);
}

}  // namespace

void SqlStore::add_mail_log(const std::vector<core::MailLogEntry>& entries) {
  if (entries.empty()) return;
  const RowsOf rows(entries, "iitttttttitti",
                    [](const core::MailLogEntry& e, int column, Cell& out) {
                      switch (column) {
                        case 0:
                          return out.set(to_unix(e.at));
                        case 1:
                          return out.set(e.company_id);
                        case 2:
                          return out.set_lasting(e.direction);
                        case 3:
                          return out.set_lasting(e.stage);
                        case 4:
                          return out.set_lasting(e.queue_id);
                        case 5:
                          return out.set_lasting(e.client_ip);
                        case 6:
                          return out.set_lasting(e.sender);
                        case 7:
                          return out.set_lasting(e.recipient);
                        case 8:
                          return out.set_lasting(e.result);
                        case 9:
                          return out.set(std::int64_t{e.code});
                        case 10:
                          return out.set_lasting(e.reply);
                        case 11:
                          return out.set_lasting(e.server);
                        default:
                          return out.set(static_cast<std::int64_t>(e.size));
                      }
                    });
  impl_->guard([&] {
    impl_->db
        .prepare(
            "INSERT INTO mail_log(at, company_id, direction, stage, queue_id, client_ip, sender, "
            "recipient, result, code, reply, server, size) SELECT c0, c1, c2, c3, c4, c5, c6, c7, "
            "c8, c9, c10, c11, c12 FROM mailroster_rows(?1) WHERE c1 = 0 OR c1 IN (SELECT id "
            "FROM companies) ORDER BY rowid")
        .bind(1, rows)
        .run();
  });
}

std::vector<core::MailLogEntry> SqlStore::list_mail_log(const MailLogFilter& f) {
  return read([&](Impl& I) {
    std::vector<core::MailLogEntry> out;
    auto s = I.db.prepare(
        "SELECT id, at, company_id, direction, stage, queue_id, client_ip, sender, recipient, "
        "result, code, reply, server, size" +
        mail_log_where(f, I.backend.dialect) + " ORDER BY id DESC LIMIT ?2 OFFSET ?3");
    bind_mail_log_filter(s, f);
    bind_window(s, 2, {f.limit, f.offset});
    while (s.step()) {
      out.push_back({.id = s.int64(0),
                     .at = from_unix(s.int64(1)),
                     .company_id = s.int64(2),
                     .direction = s.text(3),
                     .stage = s.text(4),
                     .queue_id = s.text(5),
                     .client_ip = s.text(6),
                     .sender = s.text(7),
                     .recipient = s.text(8),
                     .result = s.text(9),
                     .code = s.int32(10),
                     .reply = s.text(11),
                     .server = s.text(12),
                     .size = static_cast<std::uint64_t>(s.int64(13))});
    }
    return out;
  });
}

std::size_t SqlStore::count_mail_log(const MailLogFilter& f) {
  return count_of("SELECT COUNT(*)" + mail_log_where(f, backend_.dialect),
                  [&](Statement& s) { bind_mail_log_filter(s, f); });
}

std::size_t SqlStore::prune_mail_log(TimePoint before) { return prune("mail_log", before); }

// ---- licensed users per day ----------------------------------------------------------------

std::vector<core::LicenseUsage> SqlStore::record_license_usage(TimePoint now) {
  // Counted in a read (on SQLite no write lock is held while a million users are scanned),
  // then kept in one short write; a company removed in between is not kept.
  const auto day = core::format_day(now);
  auto counts = read([&](Impl& I) {
    std::vector<core::LicenseUsage> out;
    auto s = I.db.prepare(
        "SELECT c.id, c.name, COUNT(u.id), COUNT(u.id) FILTER (WHERE u.role = 'end_user'), "
        "COUNT(u.id) FILTER (WHERE u.role = 'silent_user'), "
        "COUNT(u.id) FILTER (WHERE u.role = 'functional'), "
        "COUNT(u.id) FILTER (WHERE u.source = 'discovery') "
        "FROM companies c LEFT JOIN users u ON u.company_id = c.id GROUP BY c.id, c.name");
    while (s.step()) {
      out.push_back({.day = day,
                     .company_id = s.int64(0),
                     .company = s.text(1),
                     .users = s.int64(2),
                     .end_users = s.int64(3),
                     .silent_users = s.int64(4),
                     .functional = s.int64(5),
                     .from_discovery = s.int64(6),
                     .counted_at = now});
    }
    return out;
  });
  if (counts.empty()) return counts;
  const RowsOf rows(counts, "itiiiii", [](const core::LicenseUsage& u, int column, Cell& out) {
    switch (column) {
      case 0:
        return out.set(u.company_id);
      case 1:
        return out.set_lasting(u.company);
      case 2:
        return out.set(u.users);
      case 3:
        return out.set(u.end_users);
      case 4:
        return out.set(u.silent_users);
      case 5:
        return out.set(u.functional);
      default:
        return out.set(u.from_discovery);
    }
  });
  const auto greatest = backend_.dialect == Dialect::postgres ? "GREATEST" : "max";
  impl_->guard([&] {
    impl_->db
        .prepare(fmt::format(
            "INSERT INTO license_usage(company_id, day, company, users, peak_users, end_users, "
            "silent_users, functional, from_discovery, counted_at) "
            "SELECT c0, ?2, c1, c2, c2, c3, c4, c5, c6, ?3 FROM mailroster_rows(?1) "
            "WHERE c0 IN (SELECT id FROM companies) "
            "ON CONFLICT (company_id, day) DO UPDATE SET company = excluded.company, "
            "users = excluded.users, peak_users = {}(license_usage.peak_users, excluded.users), "
            "end_users = excluded.end_users, silent_users = excluded.silent_users, "
            "functional = excluded.functional, from_discovery = excluded.from_discovery, "
            "counted_at = excluded.counted_at",
            greatest))
        .bind(1, rows)
        .bind(2, day)
        .bind(3, to_unix(now))
        .run();
  });
  for (auto& c : counts) c.peak_users = c.users;  // this count's: the day's is kept
  return counts;
}

std::vector<core::LicenseUsage> SqlStore::license_usage(const UsageFilter& f) {
  return read([&](Impl& I) {
    std::vector<core::LicenseUsage> out;
    auto s = I.db.prepare(
        std::string("SELECT company_id, day, company, users, peak_users, end_users, silent_users, "
                    "functional, from_discovery, counted_at FROM license_usage WHERE ") +
        (f.company_id ? "company_id = ?1" : "?1 IS NULL") +
        " AND day >= ?2 AND day <= ?3 ORDER BY company_id, day");
    s.bind(1, f.company_id);
    s.bind(2, f.from);
    s.bind(3, f.to);
    while (s.step()) {
      out.push_back({.day = s.text(1),
                     .company_id = s.int64(0),
                     .company = s.text(2),
                     .users = s.int64(3),
                     .peak_users = s.int64(4),
                     .end_users = s.int64(5),
                     .silent_users = s.int64(6),
                     .functional = s.int64(7),
                     .from_discovery = s.int64(8),
                     .counted_at = from_unix(s.int64(9))});
    }
    return out;
  });
}

}  // namespace mailroster::store::sql
