// mailroster's configuration: one TOML file, every key optional with a default, so `serve`
// starts with no file at all. Unknown keys and bad values are errors that name the key and
// line (`mailroster check-config` prints "configuration OK" otherwise).
//
//   [database]
//   path = "mailroster.db"          # SQLite file (WAL); created and migrated at start
//
//   [admin]
//   listen = "127.0.0.1:8080"       # admin HTTP (healthz, metrics, API); port 0 = any free port
//
//   [log]
//   level = "info"                  # trace, debug, info, warn, error, critical, off
#pragma once

#include <optional>
#include <string>

#include "core/error.hpp"
#include "core/network.hpp"

namespace mailroster::app {

struct Config {
  std::string database_path = "mailroster.db";
  core::Endpoint admin_listen{"127.0.0.1", 8080};
  std::string log_level = "info";
};

// Parses TOML text; source names the file in error messages.
core::Result<Config> parse_config(std::string_view toml_text, std::string_view source);
// Reads the file at path, or returns the defaults when path is empty.
core::Result<Config> load_config(const std::string& path);

}  // namespace mailroster::app
