#include "app/database.hpp"

#include <iostream>

#include "store/postgres/postgres_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace mailroster::app {

std::unique_ptr<store::Store> open_store(const Config& config, const core::Clock& clock,
                                         bool command_line) {
  if (!config.database_url.empty()) {
    return std::make_unique<store::postgres::PostgresStore>(config.database_url, clock);
  }
  store::sqlite::BusyWait wait;
  if (command_line) {
    wait.limit = std::chrono::minutes(1);
    wait.waiting = [] {
      std::cerr << "waiting for another write to the database to end (an import or a "
                   "directory sync?)\n"
                << std::flush;
    };
  }
  return std::make_unique<store::sqlite::SqliteStore>(config.database_path, clock, wait);
}

std::string describe_database(const Config& config) {
  if (config.database_url.empty()) return "SQLite " + config.database_path;
  return "PostgreSQL " + store::postgres::redact_password(config.database_url);
}

}  // namespace mailroster::app
