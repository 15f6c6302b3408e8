// `mailroster serve`: builds the long-running objects (store, admin HTTP server) and runs the
// event loop until SIGINT or SIGTERM, then stops cleanly.
#pragma once

#include "app/config.hpp"
#include "store/store.hpp"

namespace mailroster::app {

// Returns the process exit status.
int serve(const Config& config, store::Store& store);

// The lease (Store::hold_lease) under which scheduled work runs: directory syncs, expiry and
// reports, by `serve` or by `maintain` run by hand.
inline constexpr const char* kSchedulerLease = "scheduler";
// This process's name as a lease holder: host:pid:random.
std::string lease_holder_id();

}  // namespace mailroster::app
