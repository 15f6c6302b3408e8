// The scheduler lease (Store::hold_lease) under which scheduled work runs: directory syncs,
// expiry and reports, by `serve` or by `maintain` run by hand. Nodes sharing a database do that
// work once: the holder renews the lease, and another takes it when it has run out, or at once
// when the holder is a process of the same machine that has ended (a serve killed by the
// watchdog, the OOM killer or kill -9 is restarted without waiting out the term).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "store/store.hpp"

namespace mailroster::app {

inline constexpr const char* kSchedulerLease = store::kSchedulerLease;

// This process's name as a lease holder: host:pid:random:place, where place says in which
// process space the pid means this process (the boot's id and the PID namespace).
std::string lease_holder_id();

// Whether `holder` names a process of this machine and PID namespace that has ended. False
// whenever that cannot be known for sure: another machine or namespace, a name without a place
// (an older version's), a pid in use (perhaps by another process since).
bool lease_holder_gone(std::string_view holder);

struct LeaseTaken {
  bool held = false;
  std::optional<std::string> from;  // the ended holder it was taken over from
};

// Takes or renews the lease `name` for `holder` until now + term; when another holds it and
// lease_holder_gone() says that one has ended, takes it over, with a warning in the log.
LeaseTaken take_lease(store::Store& store, const std::string& name, const std::string& holder,
                      core::TimePoint now, std::chrono::seconds term);

}  // namespace mailroster::app
