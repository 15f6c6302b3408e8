#include "store/sqlite/sqlite_store.hpp"

#include "store/sqlite/sqlite_db.hpp"

namespace mailroster::store::sqlite {

SqliteStore::SqliteStore(const std::string& path, const core::Clock& clock, BusyWait wait)
    : SqlStore(
          sql::Backend{
              .dialect = sql::Dialect::sqlite,
              .connect = [path, wait]() -> std::unique_ptr<sql::Database> {
                return std::make_unique<Database>(path, Database::Mode::read_write, wait);
              },
              .migrations = sqlite_migrations(),
              .second_reader = path != ":memory:",
          },
          clock) {}

}  // namespace mailroster::store::sqlite
