// `mailroster serve`: builds the long-running objects (store, admin HTTP server) and runs the
// event loop until SIGINT or SIGTERM, then stops cleanly.
#pragma once

#include <functional>

#include "app/config.hpp"
#include "store/store.hpp"

namespace mailroster::app {

// Returns the process exit status. SIGHUP rereads the configuration with `reread` (none:
// nothing to reread) and applies what can change while serving (app::reloadable), and reloads
// the TLS certificates.
int serve(const Config& config, store::Store& store,
          const std::function<core::Result<Config>()>& reread = {});

}  // namespace mailroster::app
