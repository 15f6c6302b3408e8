#include "store/postgres/pg_db.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <map>

namespace mailroster::store::postgres {
namespace {

constexpr Oid kInt8 = 20;
constexpr Oid kText = 25;
constexpr Oid kInt8Array = 1016;
constexpr Oid kTextArray = 1009;

bool identifier_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Words that may follow a table in FROM without being its alias.
bool is_clause_keyword(std::string_view word) {
  static constexpr std::array<std::string_view, 20> kWords = {
      "WHERE",     "ORDER",  "JOIN",   "UNION", "ON",      "GROUP",  "LIMIT",
      "LEFT",      "INNER",  "CROSS",  "FULL",  "RIGHT",   "HAVING", "EXCEPT",
      "INTERSECT", "WINDOW", "OFFSET", "USING", "NATURAL", "FOR"};
  const auto u = upper(word);
  return std::find(kWords.begin(), kWords.end(), u) != kWords.end();
}

// A RowSet cell written into the text form of a PostgreSQL array.
class ArrayCell final : public sql::Cell {
 public:
  explicit ArrayCell(std::string& out) : out_(out) {}
  using Cell::set;
  void set(std::int64_t value) override { out_ += std::to_string(value); }
  void set(std::string_view value) override {
    out_ += '"';
    for (char c : value) {
      if (c == '"' || c == '\\') out_ += '\\';
      out_ += c;
    }
    out_ += '"';
  }
  void set(std::nullopt_t) override { out_ += "NULL"; }

 private:
  std::string& out_;
};

std::string array_text(const sql::RowSet& rows, int column) {
  std::string out = "{";
  ArrayCell cell(out);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (r) out += ',';
    rows.cell(r, column, cell);
  }
  return out + "}";
}

void ignore_notice(void*, const char*) {}

// libpq's message on one line: its lines (a HINT, "Is the server running ...?") joined by "; ".
std::string one_line(std::string message) {
  std::string out;
  bool pending = false;
  for (char c : message) {
    if (c == '\n' || c == '\r' || c == '\t') {
      pending = true;
      continue;
    }
    if (pending && !out.empty()) out += c == ' ' ? ";" : "; ";
    pending = false;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

Statement::Statement(Database& db, std::string_view sql) : db_(db) {
  int largest = 0;
  std::string text;
  auto flush = [&] {
    if (!text.empty()) pieces_.push_back({Piece::Kind::text, std::move(text), 0});
    text.clear();
  };
  // A parameter's number at sql[i] ('?' there): ?N, or one more than the largest so far.
  auto number_at = [&](std::size_t& i) {
    std::size_t j = i + 1;
    int n = 0;
    while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j]))) {
      n = n * 10 + (sql[j] - '0');
      ++j;
    }
    if (j == i + 1) n = largest + 1;
    largest = std::max(largest, n);
    i = j;
    return n;
  };
  constexpr std::string_view kRows = "mailroster_rows(";
  constexpr std::string_view kJson = "json_object(";
  std::size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    const bool word_start = i == 0 || !identifier_char(sql[i - 1]);
    if (c == '\'') {  // a literal, '' inside it an escaped quote
      std::size_t j = i + 1;
      while (j < sql.size() && !(sql[j] == '\'' && (j + 1 >= sql.size() || sql[j + 1] != '\''))) {
        j += sql[j] == '\'' ? 2 : 1;
      }
      text += sql.substr(i, j + 1 - i);
      i = j + 1;
    } else if (c == '?') {
      flush();
      const int n = number_at(i);
      pieces_.push_back({Piece::Kind::parameter, {}, n});
    } else if (word_start && sql.substr(i, kRows.size()) == kRows &&
               i + kRows.size() < sql.size() && sql[i + kRows.size()] == '?') {
      flush();
      i += kRows.size();
      const int n = number_at(i);
      if (i >= sql.size() || sql[i] != ')') throw sql::DbError("mailroster_rows(?N) expected");
      ++i;
      // The alias that follows, if any: taken over (consumed) so the subquery gets it.
      std::size_t j = i;
      while (j < sql.size() && std::isspace(static_cast<unsigned char>(sql[j]))) ++j;
      auto word_at = [&](std::size_t k) {
        std::size_t e = k;
        while (e < sql.size() && identifier_char(sql[e])) ++e;
        return sql.substr(k, e - k);
      };
      std::string alias;
      auto word = word_at(j);
      if (upper(word) == "AS") {
        j += word.size();
        while (j < sql.size() && std::isspace(static_cast<unsigned char>(sql[j]))) ++j;
        word = word_at(j);
      }
      if (!word.empty() && !is_clause_keyword(word)) {
        alias = std::string(word);
        i = j + word.size();
      }
      pieces_.push_back({Piece::Kind::rows, alias.empty() ? "mailroster_rows" : alias, n});
    } else if (word_start && sql.substr(i, kJson.size()) == kJson) {
      text += "json_build_object(";
      i += kJson.size();
    } else {
      text += c;
      ++i;
    }
  }
  flush();
  values_.resize(static_cast<std::size_t>(largest));
}

Statement::~Statement() {
  if (result_) PQclear(result_);
}

Statement::Value& Statement::slot(int index) {
  if (index < 1 || static_cast<std::size_t>(index) > values_.size()) {
    throw sql::DbError("bind: no parameter " + std::to_string(index));
  }
  return values_[static_cast<std::size_t>(index - 1)];
}

sql::Statement& Statement::bind(int index, std::int64_t value) {
  slot(index) = value;
  return *this;
}
sql::Statement& Statement::bind(int index, std::string_view value) {
  slot(index) = std::string(value);
  return *this;
}
sql::Statement& Statement::bind_null(int index, bool integer) {
  slot(index) = integer ? Value(NullInteger{}) : Value(NullText{});
  return *this;
}
sql::Statement& Statement::bind(int index, const sql::RowSet& rows) {
  slot(index) = &rows;
  return *this;
}

void Statement::execute() {
  std::string sql;
  std::vector<const char*> params;
  std::vector<Oid> types;
  std::map<int, int> placed;  // SQLite number -> first $ number
  auto add = [&](const char* value, Oid type) {
    params.push_back(value);
    types.push_back(type);
    return static_cast<int>(params.size());
  };
  std::vector<std::unique_ptr<std::string>> owned;  // stable addresses for params
  auto own = [&](std::string s) {
    owned.push_back(std::make_unique<std::string>(std::move(s)));
    return owned.back()->c_str();
  };
  for (const auto& p : pieces_) {
    if (p.kind == Piece::Kind::text) {
      sql += p.text;
      continue;
    }
    const auto& v = values_[static_cast<std::size_t>(p.number - 1)];
    if (p.kind == Piece::Kind::parameter) {
      auto it = placed.find(p.number);
      if (it == placed.end()) {
        int at = 0;
        if (std::holds_alternative<NullInteger>(v)) {
          at = add(nullptr, kInt8);
        } else if (std::holds_alternative<NullText>(v)) {
          at = add(nullptr, kText);
        } else if (const auto* n = std::get_if<std::int64_t>(&v)) {
          at = add(own(std::to_string(*n)), kInt8);
        } else if (const auto* s = std::get_if<std::string>(&v)) {
          at = add(s->c_str(), kText);
        } else {
          throw sql::DbError("rows bound to a scalar parameter");
        }
        it = placed.emplace(p.number, at).first;
      }
      sql += "$" + std::to_string(it->second);
      continue;
    }
    const auto* const* rows = std::get_if<const sql::RowSet*>(&v);
    if (!rows) throw sql::DbError("mailroster_rows(?" + std::to_string(p.number) + ") unbound");
    const auto column_types = (*rows)->types();
    const int columns = static_cast<int>(column_types.size());
    auto it = placed.find(p.number);
    if (it == placed.end()) {
      int first = 0;
      for (int c = 0; c < columns; ++c) {
        const int at =
            add(own(array_text(**rows, c)), column_types[c] == 'i' ? kInt8Array : kTextArray);
        if (c == 0) first = at;
      }
      it = placed.emplace(p.number, first).first;
    }
    std::string names;
    std::string arrays;
    for (int c = 0; c < columns; ++c) {
      names += "c" + std::to_string(c) + ", ";
      arrays += (c ? ", $" : "$") + std::to_string(it->second + c);
    }
    sql += "(SELECT mr_.ord - 1 AS rowid, " + names.substr(0, names.size() - 2) + " FROM unnest(" +
           arrays + ") WITH ORDINALITY AS mr_(" + names + "ord)) AS " + p.text;
  }
  if (result_) PQclear(result_);
  result_ = nullptr;
  std::string key = sql;
  key.append(reinterpret_cast<const char*>(types.data()), types.size() * sizeof(types[0]));
  const int count = static_cast<int>(params.size());
  result_ = db_.run(
      [&]() -> pg_result* {
        auto known = db_.prepared_.find(key);
        if (known == db_.prepared_.end()) {
          auto name = "mr" + std::to_string(db_.prepared_.size());
          pg_result* made = PQprepare(db_.conn_, name.c_str(), sql.c_str(), count, types.data());
          if (!made || PQresultStatus(made) != PGRES_COMMAND_OK) return made;  // run() reports it
          PQclear(made);
          known = db_.prepared_.emplace(key, std::move(name)).first;
        }
        return PQexecPrepared(db_.conn_, known->second.c_str(), count, params.data(), nullptr,
                              nullptr, 0);
      },
      "query");
  rows_ = PQntuples(result_);
  row_ = -1;
}

bool Statement::step() {
  if (!result_) execute();
  if (row_ + 1 >= rows_) {
    row_ = rows_;
    return false;
  }
  ++row_;
  return true;
}

std::int64_t Statement::int64(int column) const {
  if (PQgetisnull(result_, row_, column)) return 0;
  const char* v = PQgetvalue(result_, row_, column);
  const int n = PQgetlength(result_, row_, column);
  if (n == 1 && (v[0] == 't' || v[0] == 'f')) return v[0] == 't' ? 1 : 0;
  std::int64_t out = 0;
  const auto [end, ec] = std::from_chars(v, v + n, out);
  if (ec != std::errc() || end != v + n) {
    throw sql::DbError("not an integer in column " + std::to_string(column) + ": " + v);
  }
  return out;
}

std::string Statement::text(int column) const {
  return std::string(PQgetvalue(result_, row_, column),
                     static_cast<std::size_t>(PQgetlength(result_, row_, column)));
}

bool Statement::is_null(int column) const { return PQgetisnull(result_, row_, column) != 0; }

void Statement::reset() {
  if (result_) PQclear(result_);
  result_ = nullptr;
  row_ = -1;
  rows_ = 0;
  std::fill(values_.begin(), values_.end(), Value(NullText{}));
}

Database::Database(const std::string& conninfo) {
  conn_ = PQconnectdb(conninfo.c_str());
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    std::string message = conn_ ? PQerrorMessage(conn_) : "out of memory";
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    message = one_line(std::move(message));
    throw sql::DbError(sql::DbError::Kind::unavailable, "cannot connect to PostgreSQL: " + message);
  }
  PQsetNoticeProcessor(conn_, ignore_notice, nullptr);
  configure();
}

void Database::configure() {
  if (listening_) PQclear(check(PQexec(conn_, "LISTEN mailroster_lookups"), "listen"));
  for (const auto& [channel, messages] : heard_) {
    const std::string listen = "LISTEN " + channel;
    PQclear(check(PQexec(conn_, listen.c_str()), "listen"));
  }
  // random_page_cost as for data in memory or on SSD: the store's batches probe indexes by
  // key, and at the default (4, for spinning disks) PostgreSQL scanned a million address claims
  // for 5,000 probes (a third of a million-user import's time).
  PQclear(check(PQexec(conn_,
                       "SET TIME ZONE 'UTC'; SET application_name = 'mailroster'; "
                       "SET random_page_cost = 1.1"),
                "configure"));
}

Database::~Database() {
  cache_.clear();
  if (conn_) PQfinish(conn_);
}

template <class Send>
pg_result* Database::run(Send&& send, std::string_view what) {
  pg_result* result = send();
  const auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  const bool failed = status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;
  if (failed && PQstatus(conn_) == CONNECTION_BAD && !in_transaction()) {
    if (result) PQclear(result);
    reconnect();
    result = send();
  }
  return check(result, what);
}

void Database::reconnect() {
  ++change_count_;    // notifications sent while the connection was down are lost
  prepared_.clear();  // a new session
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) return;  // the command sent next reports it
  try {
    configure();
  } catch (const sql::DbError&) {  // NOLINT(bugprone-empty-catch): the next command reports it
  }
}

pg_result* Database::check(pg_result* result, std::string_view what) {
  const auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    const char* tuples = PQcmdTuples(result);
    changes_ = tuples && *tuples ? std::atoi(tuples) : 0;
    return result;
  }
  std::string message = result ? PQresultErrorMessage(result) : PQerrorMessage(conn_);
  const char* field = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string_view state = field ? field : "";
  const bool lost = PQstatus(conn_) == CONNECTION_BAD;
  auto kind = sql::DbError::Kind::other;
  if (state.starts_with("23")) {
    kind = sql::DbError::Kind::constraint;  // integrity constraint violation
  } else if (lost || state.starts_with("08") || state.starts_with("53") ||
             state.starts_with("57P") || state.starts_with("58")) {
    // The connection, the server's resources (disk full, out of memory, too many
    // connections), a shutdown or restart, a system (I/O) error: not the statement's fault.
    kind = sql::DbError::Kind::unavailable;
  }
  message = one_line(std::move(message));
  if (result) PQclear(result);
  // A connection the server closed is opened again for the next call (this one failed).
  if (lost) reconnect();
  throw sql::DbError(kind, std::string(what) + ": " + message);
}

void Database::exec(std::string_view sql) {
  const std::string text(sql);
  PQclear(run([&] { return PQexec(conn_, text.c_str()); }, "exec"));
}

sql::ScopedStatement Database::prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    it = cache_.emplace(std::string(sql), std::make_unique<Statement>(*this, sql)).first;
  }
  return sql::ScopedStatement(*it->second);
}

std::int64_t Database::last_insert_id() {
  const int changes = changes_;
  auto* r = check(PQexec(conn_, "SELECT lastval()"), "lastval");
  const std::int64_t id = std::atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  changes_ = changes;
  return id;
}

int Database::changes() { return changes_; }

const std::string& Database::schema() {
  if (schema_.empty()) {
    auto s = prepare("SELECT current_schema()");
    s.step();
    schema_ = s.text(0);
  }
  return schema_;
}

void Database::read_notifications() {
  if (PQconsumeInput(conn_) == 0) ++change_count_;  // cannot tell: the next command reconnects
  while (PGnotify* n = PQnotifies(conn_)) {
    const std::string_view channel = n->relname;
    const std::string_view payload = n->extra;
    if (channel == "mailroster_lookups") {
      if (payload == schema_) ++change_count_;
    } else if (auto it = heard_.find(channel); it != heard_.end()) {
      // "<schema>\n<message>" (tell_nodes)
      if (payload.size() > schema_.size() && payload.starts_with(schema_) &&
          payload[schema_.size()] == '\n') {
        it->second.emplace_back(payload.substr(schema_.size() + 1));
      }
    }
    PQfreemem(n);
  }
}

std::uint64_t Database::change_count() {
  if (!listening_) {
    schema();
    exec("LISTEN mailroster_lookups");
    listening_ = true;
    return ++change_count_;
  }
  // Reads what the server has sent (no round trip); notifications that came with the answers
  // to earlier commands are already queued.
  read_notifications();
  return change_count_;
}

// Channel names are the program's own identifiers, never input.
void Database::tell_nodes(std::string_view channel, std::string_view message) {
  std::string payload = schema();
  payload += '\n';
  payload += message;
  auto s = prepare("SELECT pg_notify(?1, ?2)");
  s.bind(1, channel).bind(2, payload);
  s.step();
}

std::vector<std::string> Database::heard_from_nodes(std::string_view channel) {
  auto it = heard_.find(channel);
  if (it == heard_.end()) {
    schema();
    exec("LISTEN " + std::string(channel));
    heard_.emplace(std::string(channel), std::vector<std::string>{});
    return {};
  }
  read_notifications();  // adds no channel: `it` stays valid
  return std::exchange(it->second, {});
}

// Write transactions queue, across every node, as SQLite's BEGIN IMMEDIATE makes them queue
// within one file: the store reads, decides and writes in one transaction (an address is free,
// a count goes up by one), which under PostgreSQL's READ COMMITTED alone could interleave with
// another node's. Reads and single-statement writes (the lease) do not wait for it. The lock is
// the schema's (several mailroster databases may share one PostgreSQL database in schemas of
// their own, as the tests do).
void Database::begin() {
  exec("BEGIN; SELECT pg_advisory_xact_lock(7244918, hashtext(current_schema()))");
}

}  // namespace mailroster::store::postgres
