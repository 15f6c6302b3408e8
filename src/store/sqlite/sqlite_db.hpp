// The SQLite driver of store/sql/database.hpp: one connection in WAL mode, prepared statements
// cached by their SQL text, and mailroster_rows(?) as a table-valued function over the bound
// RowSet.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "store/sql/database.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace mailroster::store::sqlite {

using sql::Cell;
using sql::DbError;
using sql::kRowSetColumns;
using sql::RowSet;
using sql::RowsOf;
using sql::ScopedStatement;
using sql::Transaction;

class Statement final : public sql::Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Statement() override;

  using sql::Statement::bind;
  sql::Statement& bind(int index, std::int64_t value) override;
  sql::Statement& bind(int index, std::string_view value) override;
  sql::Statement& bind_null(int index, bool integer) override;
  sql::Statement& bind(int index, const RowSet& rows) override;
  bool step() override;
  std::int64_t int64(int column) const override;
  std::string text(int column) const override;
  bool is_null(int column) const override;
  void reset() override;

 private:
  sqlite3_stmt* stmt_;
};

// How long a write waits while another connection writes (an import, a sync) before it fails
// as busy, and what to do once it has waited a while (a command line says so).
struct BusyWait {
  std::chrono::milliseconds limit = std::chrono::seconds(5);
  std::function<void()> waiting;  // once per wait of 2 s or more; may be empty
};

class Database final : public sql::Database {
 public:
  enum class Mode { read_write, read_only };
  // Opens (creating if needed) with WAL journaling, foreign keys on and a busy wait;
  // read_only: an existing file as it is, to read (a backup's source and its copy).
  explicit Database(const std::string& path, Mode mode = Mode::read_write, BusyWait wait = {});
  ~Database() override;

  void exec(std::string_view sql) override;
  ScopedStatement prepare(std::string_view sql) override;
  std::int64_t last_insert_id() override;
  int changes() override;
  std::uint64_t change_count() override;

 protected:
  void begin() override;

 private:
  sqlite3* db_ = nullptr;
  BusyWait wait_;
  std::chrono::steady_clock::time_point waiting_since_{};
  bool told_ = false;
  static int on_busy(void* self, int count);
  // change_count(): what the file and this connection said last time, and the count.
  std::int64_t data_version_ = -1;
  std::int64_t total_changes_ = -1;
  std::uint64_t change_count_ = 0;
  // Looked up by the SQL text as given (no std::string is built per call).
  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::unique_ptr<Statement>, TextHash, std::equal_to<>> cache_;
};

struct BackupResult {
  std::uint64_t bytes = 0;
  std::int64_t users = 0;
};

// A consistent copy of the database file at `from` (SQLite's VACUUM INTO: one read
// transaction, so a running serve or import goes on, and the copy holds whole transactions
// only), checked (PRAGMA quick_check) and then renamed to `to`: a failed backup leaves no file
// and an earlier backup at `to` stays whole until the new one is. Throws DbError.
BackupResult backup(const std::string& from, const std::string& to);

}  // namespace mailroster::store::sqlite
