// The store a configuration names: SQLite (database.path, the embedded default) or PostgreSQL
// (database.url, for several gateway nodes sharing one state).
#pragma once

#include <memory>
#include <string>

#include "app/config.hpp"
#include "core/clock.hpp"
#include "store/store.hpp"

namespace mailroster::app {

// Opens (and migrates) the configured database. Throws core::Failure when it cannot.
// command_line: a command, not serve: a SQLite write waits up to a minute for another
// process's (an import, a sync), saying so on stderr after 2 s, where serve's wait 5 s (its
// API answers 503, its discovery counts try again).
std::unique_ptr<store::Store> open_store(const Config& config, const core::Clock& clock,
                                         bool command_line = false);

// The configured database for logs and messages: the SQLite file, or the PostgreSQL URL with
// any password in it masked.
std::string describe_database(const Config& config);

}  // namespace mailroster::app
