#include "store/postgres/postgres_store.hpp"

#include <libpq-fe.h>

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

std::string redact_password(std::string_view conninfo) {
  // libpq's own reading of it (a URI or key=value pairs), written out again as key=value.
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(std::string(conninfo).c_str(), &error);
  if (!options) {
    PQfreemem(error);
    return "(a connection string libpq cannot read)";
  }
  std::string out;
  for (const auto* o = options; o->keyword; ++o) {
    if (!o->val || !*o->val) continue;
    if (!out.empty()) out += ' ';
    out += std::string(o->keyword) + "=" +
           (std::string_view(o->keyword) == "password" ? std::string("***") : std::string(o->val));
  }
  PQconninfoFree(options);
  return out;
}

}  // namespace mailroster::store::postgres
