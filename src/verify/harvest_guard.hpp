// The directory-harvest guard (SPEC.md "Inbound"): a client that collects many
// unknown-recipient rejections is first slowed down, then refused (421), per client address.
// Counts are kept in a sliding window; a refused client stays refused for `block`.
//
// Across the nodes of one database the counts are shared (serve passes them through the store
// every second): a harvester that a load balancer spreads over N nodes gets the budget of one
// node, not N times it. What this node counted is taken with take_outgoing(); what the other
// nodes counted comes in through record_remote().
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"
#include "core/model.hpp"

namespace mailroster::verify {

struct HarvestSettings {
  std::size_t slow_after = 10;    // unknown recipients in the window before each RCPT waits
  std::size_t refuse_after = 30;  // ... before the client gets 421
  std::chrono::seconds window{600};
  std::chrono::milliseconds delay{2000};  // the wait per RCPT once slowed
  std::chrono::seconds block{600};        // how long a refused client stays refused
};

using core::HarvestCount;

class HarvestGuard {
 public:
  enum class Verdict { ok, slow, refuse };

  explicit HarvestGuard(HarvestSettings settings) : settings_(settings) {}
  // Before a RCPT from this client.
  Verdict check(const std::string& client, core::TimePoint now);
  // The client's RCPT was rejected as unknown (or invalid) here.
  void record_unknown(const std::string& client, core::TimePoint now);
  // Another node rejected this client's recipients (counted as if at now).
  void record_remote(const std::string& client, std::uint32_t unknown, core::TimePoint now);
  // What record_unknown() counted since the previous call, per client, for the other nodes.
  std::vector<HarvestCount> take_outgoing();
  // Forgets the clients with nothing left in the window and no block: the map holds only the
  // clients of the last window (a client that never comes back is not checked again).
  void sweep(core::TimePoint now);
  std::size_t clients() const { return clients_.size(); }
  const HarvestSettings& settings() const { return settings_; }

 private:
  struct Client {
    std::deque<core::TimePoint> unknown;
    core::TimePoint blocked_until{};
  };
  void prune(Client& c, core::TimePoint now) const;
  void add(Client& c, std::uint32_t unknown, core::TimePoint now) const;
  HarvestSettings settings_;
  std::unordered_map<std::string, Client> clients_;
  std::unordered_map<std::string, std::uint32_t> outgoing_;
};

}  // namespace mailroster::verify
