#include "app/lease.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <fstream>
#include <vector>

#include <unistd.h>

#include "core/random.hpp"
#include "core/split.hpp"

namespace mailroster::app {

namespace {

// "<first 8 of the boot id>-<PID namespace inode>"; "" when /proc cannot tell.
std::string place() {
  std::string boot;
  std::ifstream("/proc/sys/kernel/random/boot_id") >> boot;
  char ns[64] = {};
  const auto n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);  // "pid:[4026531836]"
  const std::string_view link(ns, n > 0 ? std::size_t(n) : 0);
  const auto open = link.find('['), close = link.find(']');
  if (boot.size() < 8 || open == std::string_view::npos || close == std::string_view::npos) {
    return {};
  }
  return boot.substr(0, 8) + "-" + std::string(link.substr(open + 1, close - open - 1));
}

const std::string& this_place() {
  static const std::string p = place();
  return p;
}

}  // namespace

std::string lease_holder_id() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + core::random_hex(4) + ":" +
         this_place();
}

bool lease_holder_gone(std::string_view holder) {
  const auto parts = core::split(holder, ':');
  if (parts.size() != 4 || this_place().empty() || parts[3] != this_place()) return false;
  pid_t pid = 0;
  const auto [end, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), pid);
  if (ec != std::errc() || end != parts[1].data() + parts[1].size() || pid <= 1) return false;
  return kill(pid, 0) != 0 && errno == ESRCH;
}

LeaseTaken take_lease(store::Store& store, const std::string& name, const std::string& holder,
                      core::TimePoint now, std::chrono::seconds term) {
  if (store.hold_lease(name, holder, now, term)) return {true, std::nullopt};
  const auto current = store.lease_holder(name, now);
  // Freed, or taken over by another thread of this process, since: held as ever.
  if (!current || *current == holder) return {store.hold_lease(name, holder, now, term), {}};
  if (!lease_holder_gone(*current)) return {};
  // Given up on its behalf; when two processes restart at once, one of them gets it.
  store.release_lease(name, *current);
  if (!store.hold_lease(name, holder, now, term)) return {};
  // A warning: a process died without giving its lease up (and `maintain` logs warnings only).
  spdlog::warn("the scheduler lease's holder {} is no longer running; taken over", *current);
  return {true, current};
}

}  // namespace mailroster::app
