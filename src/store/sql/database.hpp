// What the store needs of a SQL database, whichever it is: one connection, statements with
// typed binds and columns, bulk rows read in place, and a transaction guard. Two drivers
// implement it: SQLite (store/sqlite/sqlite_db) and PostgreSQL (store/postgres/pg_db). SQL text
// is always a constant written in the dialect both accept; values are always bound, never
// spliced. Parameters are SQLite's: `?` or `?N` (a bare `?` is one more than the largest number
// before it); the PostgreSQL driver renumbers them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace mailroster::store::sql {

// The value of one cell of a RowSet, as SQL reads it.
class Cell {
 public:
  virtual ~Cell() = default;
  virtual void set(std::int64_t value) = 0;
  virtual void set(std::string_view value) = 0;  // copied
  // Text that stays in place until the statement has run (the rows' own strings, static text):
  // SQLite reads it where it is instead of copying every cell (a million-user import copied
  // each user's fields twice, once per statement that reads its rows).
  virtual void set_lasting(std::string_view value) { set(value); }
  virtual void set(std::nullopt_t) = 0;
  void set(const std::string& value) { set(std::string_view(value)); }
  template <class T>
  void set(const std::optional<T>& value) {
    value ? set(*value) : set(std::nullopt);
  }
};

// Rows in memory that one statement reads as the table mailroster_rows(?N), bound with
// Statement::bind: columns c0, c1, ... (at most kRowSetColumns), and rowid the row's position
// (0, 1, ...). A bulk write reads its rows from here instead of staging a copy in a table
// first: for a million-row import that copy was a million more inserts. Rows come in order.
// types() names each column's type, one letter each: 'i' integer, 't' text (PostgreSQL needs
// them even when there are no rows).
inline constexpr int kRowSetColumns = 16;
class RowSet {
 public:
  virtual ~RowSet() = default;
  virtual std::size_t size() const = 0;
  virtual std::string_view types() const = 0;
  virtual void cell(std::size_t row, int column, Cell& out) const = 0;
};

// A RowSet over a vector, each cell written by fn(row, column, cell).
template <class T, class Fn>
class RowsOf final : public RowSet {
 public:
  RowsOf(const std::vector<T>& rows, std::string_view types, Fn fn)
      : rows_(rows), types_(types), fn_(std::move(fn)) {}
  std::size_t size() const override { return rows_.size(); }
  std::string_view types() const override { return types_; }
  void cell(std::size_t row, int column, Cell& out) const override { fn_(rows_[row], column, out); }

 private:
  const std::vector<T>& rows_;
  std::string_view types_;
  Fn fn_;
};

// A failed database call, by what the caller can do about it.
class DbError : public std::runtime_error {
 public:
  enum class Kind {
    other,
    // A unique, foreign key, check or not-null rule refused it.
    constraint,
    // Another connection held the database past the wait (SQLite's busy timeout): an import
    // or a directory sync writing. Worth trying again.
    busy,
    // The database cannot do it now, whatever was asked: its disk is full, an I/O error, the
    // server is gone, shutting down or out of resources. Worth trying again later.
    unavailable,
  };
  DbError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  explicit DbError(const std::string& message) : DbError(Kind::other, message) {}
  bool is_constraint() const noexcept { return kind_ == Kind::constraint; }
  bool is_busy() const noexcept { return kind_ == Kind::busy; }
  bool is_unavailable() const noexcept { return kind_ == Kind::unavailable; }

 private:
  Kind kind_;
};

class Statement {
 public:
  virtual ~Statement() = default;
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binds by 1-based position.
  virtual Statement& bind(int index, std::int64_t value) = 0;
  virtual Statement& bind(int index, std::string_view value) = 0;
  // NULL, of an integer (integer = true) or a text: PostgreSQL infers a parameter's type from
  // what is bound, and `?1 IS NULL OR company_id = ?1` needs it to be an integer.
  virtual Statement& bind_null(int index, bool integer) = 0;
  // Binds rows for mailroster_rows(?index); they must outlive the statement's use.
  virtual Statement& bind(int index, const RowSet& rows) = 0;

  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, bool value) { return bind(index, value ? 1 : 0); }
  Statement& bind(int index, const std::string& value) {
    return bind(index, std::string_view(value));
  }
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Statement& bind(int index, std::nullopt_t) { return bind_null(index, false); }
  template <class T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind_null(index, std::is_arithmetic_v<T>);
  }

  // Steps once: true when a row is available.
  virtual bool step() = 0;
  // Runs a statement that returns no rows.
  void run() {
    while (step()) {
    }
  }

  virtual std::int64_t int64(int column) const = 0;
  int int32(int column) const { return static_cast<int>(int64(column)); }
  bool boolean(int column) const { return int64(column) != 0; }
  virtual std::string text(int column) const = 0;
  virtual bool is_null(int column) const = 0;

  // Back to unbound and unrun (ScopedStatement does it).
  virtual void reset() = 0;
};

// A prepared statement in use: resets it when it goes out of scope, so that a read that did
// not step to the end never keeps its snapshot (in WAL mode an unreset statement holds a read
// transaction open, and the connection would not see other processes' commits).
class ScopedStatement {
 public:
  explicit ScopedStatement(Statement& s) : s_(s) {}
  ~ScopedStatement() { s_.reset(); }
  ScopedStatement(const ScopedStatement&) = delete;
  ScopedStatement& operator=(const ScopedStatement&) = delete;

  operator Statement&() { return s_; }  // NOLINT(google-explicit-constructor)
  template <class T>
  Statement& bind(int index, const T& value) {
    return s_.bind(index, value);
  }
  bool step() { return s_.step(); }
  void run() { s_.run(); }
  std::int64_t int64(int column) const { return s_.int64(column); }
  int int32(int column) const { return s_.int32(column); }
  bool boolean(int column) const { return s_.boolean(column); }
  std::string text(int column) const { return s_.text(column); }
  bool is_null(int column) const { return s_.is_null(column); }

 private:
  Statement& s_;
};

class Database {
 public:
  virtual ~Database() = default;
  Database() = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs SQL that takes no parameters (DDL, settings); may hold several statements.
  virtual void exec(std::string_view sql) = 0;
  // A statement ready for binding, reset again when the returned scope ends. Do not hold two
  // uses of one SQL text at once.
  virtual ScopedStatement prepare(std::string_view sql) = 0;
  // The id the last INSERT gave its (last) row.
  virtual std::int64_t last_insert_id() = 0;
  // Rows the last INSERT, UPDATE or DELETE changed.
  virtual int changes() = 0;
  // A count that has grown since the previous call whenever the tables the SMTP path reads
  // may have changed since, by any connection (this one's included); cheap enough to ask
  // before every lookup. SQLite: a commit to the file by another connection (PRAGMA
  // data_version) or a row this one changed. PostgreSQL: a notification from the schema's
  // triggers (migrations/postgres/0002; no round trip, the connection listens from the first
  // call), or a connection opened again, which may have missed some.
  virtual std::uint64_t change_count() = 0;
  // Messages between the nodes that share this database, on a channel of their own (the
  // harvest guard's counts): PostgreSQL's NOTIFY within this schema, received by every
  // connection that listens (this one's included). SQLite's file has one node: nothing to send
  // or hear.
  virtual void tell_nodes(std::string_view /*channel*/, std::string_view /*message*/) {}
  // What was sent on the channel since the previous call; listens from the first call, so the
  // first returns nothing. No round trip.
  virtual std::vector<std::string> heard_from_nodes(std::string_view /*channel*/) { return {}; }

 protected:
  // Starts a transaction that takes the write lock at once, so writers queue instead of
  // failing mid-transaction (SQLite: BEGIN IMMEDIATE).
  virtual void begin() = 0;
  bool in_transaction() const { return transaction_depth_ > 0; }

 private:
  friend class Transaction;
  int transaction_depth_ = 0;
};

// begin() on construction, ROLLBACK on destruction unless commit() was called. Inside another
// Transaction it is a SAVEPOINT, so a multi-step operation composes single-step ones and stays
// all-or-nothing. Joining (Nesting::join) skips that SAVEPOINT: for bulk writes inside a
// caller's transaction, where a savepoint's sub-journal would copy every page touched (a
// million-row import ran 5x slower on SQLite); a failure then leaves the caller's transaction
// to be rolled back by the caller.
class Transaction {
 public:
  enum class Nesting { savepoint, join };
  explicit Transaction(Database& db, Nesting nesting = Nesting::savepoint);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Database& db_;
  bool done_ = false;
  bool nested_ = false;
  bool joined_ = false;
};

}  // namespace mailroster::store::sql
