#include "store/postgres/postgres_store.hpp"

#include "store/postgres/pg_db.hpp"

namespace mailroster::store::postgres {

PostgresStore::PostgresStore(const std::string& conninfo, const core::Clock& clock)
    : SqlStore(
          sql::Backend{
              .dialect = sql::Dialect::postgres,
              .connect = [conninfo]() -> std::unique_ptr<sql::Database> {
                return std::make_unique<Database>(conninfo);
              },
              .migrations = postgres_migrations(),
          },
          clock) {}

bool is_postgres_url(std::string_view database) {
  return database.starts_with("postgresql://") || database.starts_with("postgres://") ||
         database.find("dbname=") != std::string_view::npos ||
         database.find("host=") != std::string_view::npos;
}

}  // namespace mailroster::store::postgres
