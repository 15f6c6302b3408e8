// The PostgreSQL driver of store/sql/database.hpp, over libpq: one connection; the store's
// SQLite-style SQL made PostgreSQL's when a statement runs:
//  - parameters `?` and `?N` become `$M` (typed by what is bound: an integer is int8, a text is
//    left for the server to infer from its use, as SQLite's are untyped);
//  - mailroster_rows(?N) becomes unnest() of one typed array per RowSet column, WITH ORDINALITY
//    for rowid (0, 1, ... as SQLite's);
//  - json_object( becomes json_build_object( (the same arguments, key-value pairs);
//  - instr() and strftime() are SQL functions of the schema (migrations/postgres/0001).
// Results come in text form; an integer column reads t/f (a boolean expression) as 1/0.
// Each statement is prepared on the server the first time it runs on the connection.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "store/sql/database.hpp"

struct pg_conn;
struct pg_result;

namespace mailroster::store::postgres {

class Database;

class Statement final : public sql::Statement {
 public:
  Statement(Database& db, std::string_view sql);
  ~Statement() override;

  using sql::Statement::bind;
  sql::Statement& bind(int index, std::int64_t value) override;
  sql::Statement& bind(int index, std::string_view value) override;
  sql::Statement& bind_null(int index, bool integer) override;
  sql::Statement& bind(int index, const sql::RowSet& rows) override;
  bool step() override;
  std::int64_t int64(int column) const override;
  std::string text(int column) const override;
  bool is_null(int column) const override;
  void reset() override;

 private:
  struct NullInteger {};
  struct NullText {};
  using Value = std::variant<NullText, NullInteger, std::int64_t, std::string, const sql::RowSet*>;
  // The SQL as pieces: text, a parameter (by its SQLite number), or a RowSet parameter with the
  // alias that follows it in the SQL (empty: none).
  struct Piece {
    enum class Kind { text, parameter, rows } kind;
    std::string text;  // text: the SQL; rows: the alias
    int number = 0;
  };
  void execute();
  Value& slot(int index);

  Database& db_;
  std::vector<Piece> pieces_;
  std::vector<Value> values_;  // by SQLite number - 1
  pg_result* result_ = nullptr;
  int row_ = -1;
  int rows_ = 0;
};

class Database final : public sql::Database {
 public:
  // conninfo: a libpq connection string or URI ("postgresql://user@127.0.0.1:5432/mailroster").
  explicit Database(const std::string& conninfo);
  ~Database() override;

  void exec(std::string_view sql) override;
  sql::ScopedStatement prepare(std::string_view sql) override;
  std::int64_t last_insert_id() override;
  int changes() override;
  std::uint64_t change_count() override;
  void tell_nodes(std::string_view channel, std::string_view message) override;
  std::vector<std::string> heard_from_nodes(std::string_view channel) override;

 protected:
  void begin() override;

 private:
  friend class Statement;
  // Sends a command (send() returns its result) and checks the result: throws DbError unless it
  // succeeded; records its row count. A connection the server dropped (a restart, a failover,
  // an idle timeout) is opened again, and the command sent again when no transaction was open
  // on it (one was lost with the connection: that command fails, the next one works).
  template <class Send>
  pg_result* run(Send&& send, std::string_view what);
  pg_result* check(pg_result* result, std::string_view what);
  // The session's settings, on a new connection and on one opened again.
  void configure();
  // Opens the connection again (PQreset) and restores the session's settings.
  void reconnect();
  pg_conn* conn_ = nullptr;
  int changes_ = 0;
  // The schema this connection works in: notifications say which one they are about.
  const std::string& schema();
  // Takes the notifications the server has sent (no round trip) to their channels.
  void read_notifications();
  // change_count(): listening on mailroster_lookups for notifications about this schema.
  bool listening_ = false;
  std::string schema_;
  std::uint64_t change_count_ = 0;
  // heard_from_nodes(): the channels listened on, and what they said about this schema since.
  std::map<std::string, std::vector<std::string>, std::less<>> heard_;
  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::unique_ptr<Statement>, TextHash, std::equal_to<>> cache_;
  // Statements prepared on the server (by their SQL and parameter types) and their names:
  // each runs as Bind/Execute, not parsed and planned again every time. A connection opened
  // again has none.
  std::unordered_map<std::string, std::string> prepared_;
};

}  // namespace mailroster::store::postgres
