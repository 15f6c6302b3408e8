// The directory-harvest guard (SPEC.md "Inbound"): a client that collects many
// unknown-recipient rejections is first slowed down, then refused (421), per client address.
// Counts are kept in a sliding window; a refused client stays refused for `block`.
#pragma once

#include <chrono>
#include <deque>
#include <string>
#include <unordered_map>

#include "core/clock.hpp"

namespace mailroster::verify {

struct HarvestSettings {
  std::size_t slow_after = 10;    // unknown recipients in the window before each RCPT waits
  std::size_t refuse_after = 30;  // ... before the client gets 421
  std::chrono::seconds window{600};
  std::chrono::milliseconds delay{2000};  // the wait per RCPT once slowed
  std::chrono::seconds block{600};        // how long a refused client stays refused
};

class HarvestGuard {
 public:
  enum class Verdict { ok, slow, refuse };

  explicit HarvestGuard(HarvestSettings settings) : settings_(settings) {}
  // Before a RCPT from this client.
  Verdict check(const std::string& client, core::TimePoint now);
  // The client's RCPT was rejected as unknown (or invalid).
  void record_unknown(const std::string& client, core::TimePoint now);
  const HarvestSettings& settings() const { return settings_; }

 private:
  struct Client {
    std::deque<core::TimePoint> unknown;
    core::TimePoint blocked_until{};
  };
  void prune(Client& c, core::TimePoint now) const;
  HarvestSettings settings_;
  std::unordered_map<std::string, Client> clients_;
};

}  // namespace mailroster::verify
