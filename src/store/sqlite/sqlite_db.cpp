#include "store/sqlite/sqlite_db.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <mutex>
#include <thread>

namespace mailroster::store::sqlite {
namespace {
// What the caller can do about an error, by its (extended) result code.
DbError::Kind kind_of(int extended_code) {
  switch (extended_code & 0xFF) {
    case SQLITE_CONSTRAINT:
      return DbError::Kind::constraint;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return DbError::Kind::busy;
    case SQLITE_FULL:      // the disk (or the file system's quota) is full
    case SQLITE_IOERR:     // the disk failed a read or a write
    case SQLITE_READONLY:  // the file system went read-only (as ext4 does on disk errors)
    case SQLITE_CANTOPEN:  // the journal or the WAL cannot be opened
      return DbError::Kind::unavailable;
    default:
      return DbError::Kind::other;
  }
}

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view what) {
  const int extended = db ? sqlite3_extended_errcode(db) : rc;
  const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw DbError(kind_of(extended), std::string(what) + ": " + msg);
}

// A RowSet's cell as the result of the table function's column.
class ContextCell final : public Cell {
 public:
  explicit ContextCell(sqlite3_context* context) : context_(context) {}
  using Cell::set;
  void set(std::int64_t value) override { sqlite3_result_int64(context_, value); }
  void set(std::string_view value) override {
    sqlite3_result_text64(context_, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  }
  void set_lasting(std::string_view value) override {
    sqlite3_result_text64(context_, value.data(), value.size(), SQLITE_STATIC, SQLITE_UTF8);
  }
  void set(std::nullopt_t) override { sqlite3_result_null(context_); }

 private:
  sqlite3_context* context_;
};
constexpr const char* kRowSetType = "mailroster.RowSet";

// The table-valued function mailroster_rows(?): the rows of the RowSet bound to its one
// argument (a hidden column after c0 ... c15), in order, rowid their position.
namespace rows_vtab {

struct Cursor {
  sqlite3_vtab_cursor base{};
  const RowSet* rows = nullptr;
  std::size_t row = 0;
};

int connect(sqlite3* db, void*, int, const char* const*, sqlite3_vtab** out, char**) {
  std::string sql = "CREATE TABLE x(";
  for (int i = 0; i < kRowSetColumns; ++i) sql += "c" + std::to_string(i) + ", ";
  sql += "rows HIDDEN)";
  if (const int rc = sqlite3_declare_vtab(db, sql.c_str()); rc != SQLITE_OK) return rc;
  *out = static_cast<sqlite3_vtab*>(sqlite3_malloc(sizeof(sqlite3_vtab)));
  if (!*out) return SQLITE_NOMEM;
  **out = sqlite3_vtab{};
  return SQLITE_OK;
}

int disconnect(sqlite3_vtab* vtab) {
  sqlite3_free(vtab);
  return SQLITE_OK;
}

// Usable only with its argument given; rows come in rowid order.
int best_index(sqlite3_vtab*, sqlite3_index_info* info) {
  int argument = -1;
  for (int i = 0; i < info->nConstraint; ++i) {
    const auto& c = info->aConstraint[i];
    if (c.iColumn == kRowSetColumns && c.op == SQLITE_INDEX_CONSTRAINT_EQ) {
      if (!c.usable) return SQLITE_CONSTRAINT;
      argument = i;
    }
  }
  if (argument < 0) return SQLITE_CONSTRAINT;
  info->aConstraintUsage[argument].argvIndex = 1;
  info->aConstraintUsage[argument].omit = 1;
  info->orderByConsumed =
      info->nOrderBy == 1 && info->aOrderBy[0].iColumn < 0 && !info->aOrderBy[0].desc;
  info->estimatedCost = 1;
  return SQLITE_OK;
}

int open(sqlite3_vtab*, sqlite3_vtab_cursor** out) {
  auto* cursor = static_cast<Cursor*>(sqlite3_malloc(sizeof(Cursor)));
  if (!cursor) return SQLITE_NOMEM;
  *cursor = Cursor{};
  *out = &cursor->base;
  return SQLITE_OK;
}

int close(sqlite3_vtab_cursor* cursor) {
  sqlite3_free(cursor);
  return SQLITE_OK;
}

int filter(sqlite3_vtab_cursor* base, int, const char*, int argc, sqlite3_value** argv) {
  auto* cursor = reinterpret_cast<Cursor*>(base);
  cursor->rows =
      argc == 1 ? static_cast<const RowSet*>(sqlite3_value_pointer(argv[0], kRowSetType)) : nullptr;
  cursor->row = 0;
  return SQLITE_OK;
}

int next(sqlite3_vtab_cursor* base) {
  ++reinterpret_cast<Cursor*>(base)->row;
  return SQLITE_OK;
}

int eof(sqlite3_vtab_cursor* base) {
  const auto* cursor = reinterpret_cast<Cursor*>(base);
  return !cursor->rows || cursor->row >= cursor->rows->size();
}

int column(sqlite3_vtab_cursor* base, sqlite3_context* context, int n) {
  const auto* cursor = reinterpret_cast<Cursor*>(base);
  ContextCell cell(context);
  if (n >= kRowSetColumns) {
    cell.set(std::nullopt);
    return SQLITE_OK;
  }
  try {
    cursor->rows->cell(cursor->row, n, cell);
  } catch (const std::exception& e) {
    sqlite3_result_error(context, e.what(), -1);
  }
  return SQLITE_OK;
}

int rowid(sqlite3_vtab_cursor* base, sqlite3_int64* out) {
  *out = static_cast<sqlite3_int64>(reinterpret_cast<Cursor*>(base)->row);
  return SQLITE_OK;
}

sqlite3_module module() {
  sqlite3_module m{};
  m.xConnect = connect;  // eponymous-only: no xCreate
  m.xBestIndex = best_index;
  m.xDisconnect = disconnect;
  m.xOpen = open;
  m.xClose = close;
  m.xFilter = filter;
  m.xNext = next;
  m.xEof = eof;
  m.xColumn = column;
  m.xRowid = rowid;
  return m;
}

const sqlite3_module kModule = module();

}  // namespace rows_vtab
}  // namespace

Statement::~Statement() { sqlite3_finalize(stmt_); }

sql::Statement& Statement::bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), rc, "bind");
  return *this;
}

sql::Statement& Statement::bind(int index, std::string_view value) {
  const int rc =
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), rc, "bind");
  return *this;
}

sql::Statement& Statement::bind(int index, const RowSet& rows) {
  const int rc = sqlite3_bind_pointer(stmt_, index, const_cast<RowSet*>(&rows),  // NOLINT
                                      kRowSetType, nullptr);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), rc, "bind");
  return *this;
}

sql::Statement& Statement::bind_null(int index, bool) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) fail(sqlite3_db_handle(stmt_), rc, "bind");
  return *this;
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(stmt_);
  const int extended = sqlite3_extended_errcode(db);
  std::string message = sqlite3_errmsg(db);
  sqlite3_reset(stmt_);
  throw DbError(kind_of(extended), "step: " + message);
}

std::int64_t Statement::int64(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::text(int column) const {
  const auto* p = sqlite3_column_text(stmt_, column);
  const int n = sqlite3_column_bytes(stmt_, column);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n))
           : std::string();
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int Database::on_busy(void* self, int count) {
  auto& d = *static_cast<Database*>(self);
  const auto now = std::chrono::steady_clock::now();
  if (count == 0) {
    d.waiting_since_ = now;
    d.told_ = false;
  }
  const auto waited = now - d.waiting_since_;
  if (waited >= d.wait_.limit) return 0;  // SQLITE_BUSY to the caller
  if (!d.told_ && waited >= std::chrono::seconds(2) && d.wait_.waiting) {
    d.told_ = true;
    d.wait_.waiting();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(count < 20 ? 1 : 10));
  return 1;
}

Database::Database(const std::string& path, Mode mode, BusyWait wait) : wait_(std::move(wait)) {
  // No memory statistics: SQLite otherwise takes a process-wide mutex on every allocation
  // (5 % of a bulk import's writing). Only possible before SQLite is first used.
  static std::once_flag configured;
  std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  const int flags =
      mode == Mode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw DbError("cannot open database '" + path + "': " + message);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_handler(db_, &Database::on_busy, this);
  if (const int vrc =
          sqlite3_create_module_v2(db_, "mailroster_rows", &rows_vtab::kModule, nullptr, nullptr);
      vrc != SQLITE_OK) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw DbError("cannot register mailroster_rows");
  }
  // page_size 16 KiB (takes effect when the file is created; an existing database keeps its
  // own): a quarter of the pages to split, spill and checkpoint for a bulk write. A full LDAP
  // sync of 100,000 users spends about 10 % less, most of it in the commit's checkpoint;
  // RCPT lookups and discovery's small writes measured the same (bench/README.md). A single-row
  // write into a table with triggers (users, aliases) costs more, its statement journal
  // copying whole pages: the store writes plans' rows in sets (SqliteStore::apply_plan).
  // temp_store: savepoint (statement) journals in memory, not temp files. cache_size 16 MiB:
  // a large sync or import spills pages to the WAL as it goes (written once either way), and
  // reuses its cache instead of faulting in fresh memory for every page it writes; measured
  // (bench/README.md) faster than 64 MiB, and with half the memory. journal_size_limit 64 MiB:
  // the WAL file is cut back to that once a checkpoint lets it start over; without it, a
  // million-user import under a running serve (whose readers keep the WAL from being removed)
  // left a 1.3 GB WAL file beside the database for as long as serve ran.
  if (mode == Mode::read_only) return;
  exec(
      "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
      "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384; "
      "PRAGMA journal_size_limit = 67108864;");
}

Database::~Database() {
  cache_.clear();  // finalize statements before closing the connection
  sqlite3_close(db_);
}

void Database::exec(std::string_view sql) {
  char* err = nullptr;
  const std::string s(sql);
  const int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string message = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    const int extended = sqlite3_extended_errcode(db_);
    throw DbError(kind_of(extended), message);
  }
}

ScopedStatement Database::prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return ScopedStatement(*it->second);
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) fail(db_, rc, "prepare");
  auto [pos, inserted] = cache_.emplace(std::string(sql), std::make_unique<Statement>(stmt));
  return ScopedStatement(*pos->second);
}

std::int64_t Database::last_insert_id() { return sqlite3_last_insert_rowid(db_); }
int Database::changes() { return sqlite3_changes(db_); }

std::uint64_t Database::change_count() {
  auto s = prepare("PRAGMA data_version");
  s.step();
  const auto version = s.int64(0);
  const auto total = sqlite3_total_changes64(db_);
  if (version != data_version_ || total != total_changes_) ++change_count_;
  data_version_ = version;
  total_changes_ = total;
  return change_count_;
}
void Database::begin() { exec("BEGIN IMMEDIATE"); }

BackupResult backup(const std::string& from, const std::string& to) {
  const auto part = to + ".part";
  std::remove(part.c_str());  // what a backup that was cut short left
  try {
    Database(from, Database::Mode::read_only).prepare("VACUUM INTO ?").bind(1, part).run();
    BackupResult result;
    {
      Database copy(part, Database::Mode::read_only);
      auto check = copy.prepare("PRAGMA quick_check");
      const auto verdict = check.step() ? check.text(0) : std::string("no answer");
      if (verdict != "ok") throw DbError("the copy does not check out: " + verdict);
      auto users = copy.prepare("SELECT count(*) FROM users");
      users.step();
      result.users = users.int64(0);
    }
    if (std::rename(part.c_str(), to.c_str()) != 0) {
      throw DbError("cannot rename '" + part + "' to '" + to + "': " + std::strerror(errno));
    }
    struct stat st {};
    if (::stat(to.c_str(), &st) == 0) result.bytes = static_cast<std::uint64_t>(st.st_size);
    return result;
  } catch (...) {
    std::remove(part.c_str());
    throw;
  }
}

}  // namespace mailroster::store::sqlite
