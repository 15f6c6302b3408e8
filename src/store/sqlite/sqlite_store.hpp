// The embedded store: one SQLite database file in WAL mode (store/sql/sql_store.hpp).
#pragma once

#include <string>

#include "store/sql/sql_store.hpp"
#include "store/sqlite/sqlite_db.hpp"

namespace mailroster::store::sqlite {

class SqliteStore final : public sql::SqlStore {
 public:
  // Opens or creates the database at path (":memory:" for a private in-memory one) and
  // brings its schema up to date. Throws core::Failure when the file cannot be opened or
  // the schema is newer than this binary knows.
  // wait: how long a write waits for another process's (BusyWait).
  SqliteStore(const std::string& path, const core::Clock& clock, BusyWait wait = {});
};

}  // namespace mailroster::store::sqlite
