// The store for several gateway nodes sharing one state: a PostgreSQL database
// (store/sql/sql_store.hpp; the schema in migrations/postgres/).
#pragma once

#include <string>
#include <string_view>

#include "store/sql/sql_store.hpp"

namespace mailroster::store::postgres {

class PostgresStore final : public sql::SqlStore {
 public:
  // conninfo: a libpq connection URI or string, e.g. "postgresql://mailroster@127.0.0.1/mail".
  // Keep the password out of it (PGPASSWORD or a ~/.pgpass file): it is not a secret here.
  // Brings the schema up to date; nodes starting together take turns at it. Throws
  // core::Failure when the server cannot be reached or its schema is newer than this binary.
  PostgresStore(const std::string& conninfo, const core::Clock& clock);
};

// Whether a database setting names PostgreSQL (a postgres:// or postgresql:// URI, or a libpq
// key=value string) rather than a SQLite file.
bool is_postgres_url(std::string_view database);

// The connection string as key=value pairs, with any password in it masked (password=***),
// for logs and messages.
std::string redact_password(std::string_view conninfo);

}  // namespace mailroster::store::postgres
