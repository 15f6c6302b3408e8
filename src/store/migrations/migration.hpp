// A versioned schema change. Each dialect's list is compiled in from
// src/store/migrations/<dialect>/NNNN_name.sql (cmake/EmbedMigrations.cmake) and applied in
// order at start-up; schema_migrations records what a database already has.
#pragma once

#include <string_view>
#include <vector>

namespace mailroster::store {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

const std::vector<Migration>& sqlite_migrations();
const std::vector<Migration>& postgres_migrations();

}  // namespace mailroster::store
