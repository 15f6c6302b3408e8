// A thin RAII layer over the SQLite C API: one connection, prepared statements cached by their
// SQL text, typed binds and columns, and a transaction guard. SQL text is always a constant;
// values are always bound, never spliced.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;
struct sqlite3_context;

namespace mailroster::store::sqlite {

// The value of one cell of a RowSet, as SQL reads it.
class Cell {
 public:
  explicit Cell(sqlite3_context* context) : context_(context) {}
  void set(std::int64_t value);
  void set(std::string_view value);  // copied
  void set(std::nullopt_t);
  template <class T>
  void set(const std::optional<T>& value) {
    value ? set(*value) : set(std::nullopt);
  }

 private:
  sqlite3_context* context_;
};

// Rows in memory that one statement reads as the table-valued function
// mailroster_rows(?N), bound with Statement::bind: columns c0, c1, ... (at most
// kRowSetColumns), and rowid the row's position. A bulk write reads its rows from here
// instead of staging a copy in a temporary table first: for a million-row import that copy
// was a million more inserts. Rows come in order: ORDER BY rowid costs nothing.
inline constexpr int kRowSetColumns = 16;
class RowSet {
 public:
  virtual ~RowSet() = default;
  virtual std::size_t size() const = 0;
  virtual void cell(std::size_t row, int column, Cell& out) const = 0;
};

// A RowSet over a vector, each cell written by fn(row, column, cell).
template <class T, class Fn>
class RowsOf final : public RowSet {
 public:
  RowsOf(const std::vector<T>& rows, Fn fn) : rows_(rows), fn_(std::move(fn)) {}
  std::size_t size() const override { return rows_.size(); }
  void cell(std::size_t row, int column, Cell& out) const override { fn_(rows_[row], column, out); }

 private:
  const std::vector<T>& rows_;
  Fn fn_;
};

// SQLite's extended result code of a failed call, for telling constraint violations apart.
class SqliteError : public std::runtime_error {
 public:
  SqliteError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const noexcept { return code_; }
  bool is_constraint() const noexcept;

 private:
  int code_;
};

class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binds by 1-based position.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, bool value) { return bind(index, value ? 1 : 0); }
  Statement& bind(int index, std::string_view value);
  Statement& bind(int index, const std::string& value) {
    return bind(index, std::string_view(value));
  }
  Statement& bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Statement& bind(int index, std::nullopt_t);
  // Binds rows for mailroster_rows(?index); they must outlive the statement's use.
  Statement& bind(int index, const RowSet& rows);
  template <class T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind(index, std::nullopt);
  }

  // Steps once: true when a row is available.
  bool step();
  // Runs a statement that returns no rows.
  void run();

  std::int64_t int64(int column) const;
  int int32(int column) const { return static_cast<int>(int64(column)); }
  bool boolean(int column) const { return int64(column) != 0; }
  std::string text(int column) const;
  bool is_null(int column) const;

 private:
  friend class Database;
  friend class ScopedStatement;
  void reset();
  sqlite3_stmt* stmt_;
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
  // Opens (creating if needed) with WAL journaling, foreign keys on and a busy timeout.
  explicit Database(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs SQL that takes no parameters (DDL, PRAGMA); may hold several statements.
  void exec(std::string_view sql);
  // A cached statement ready for binding, reset again when the returned scope ends. Do not
  // hold two uses of one SQL text at once.
  ScopedStatement prepare(std::string_view sql);
  std::int64_t last_insert_id() const;
  int changes() const;

 private:
  friend class Statement;
  sqlite3* db_ = nullptr;
  // Looked up by the SQL text as given (no std::string is built per call).
  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::unique_ptr<Statement>, TextHash, std::equal_to<>> cache_;
  int transaction_depth_ = 0;
  friend class Transaction;
};

// BEGIN IMMEDIATE on construction (so writers queue instead of failing mid-transaction),
// ROLLBACK on destruction unless commit() was called. Inside another Transaction it is a
// SAVEPOINT, so a multi-step operation composes single-step ones and stays all-or-nothing.
// Joining (Nesting::join) skips that SAVEPOINT: for bulk writes inside a caller's transaction,
// where a savepoint's sub-journal would copy every page touched (a million-row import ran
// 5x slower); a failure then leaves the caller's transaction to be rolled back by the caller.
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

}  // namespace mailroster::store::sqlite
