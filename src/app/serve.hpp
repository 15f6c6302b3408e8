// `mailroster serve`: builds the long-running objects (store, admin HTTP server) and runs the
// event loop until SIGINT or SIGTERM, then stops cleanly.
#pragma once

#include "app/config.hpp"
#include "store/store.hpp"

namespace mailroster::app {

// Returns the process exit status.
int serve(const Config& config, store::Store& store);

}  // namespace mailroster::app
