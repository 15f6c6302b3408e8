// The directory-harvest guard (SPEC.md "Inbound"): a client that collects many
// unknown-recipient rejections is first slowed down, then refused (421), per client network:
// the session's smtp::SessionInfo::client_network, an IPv4 address or an IPv6 address's /64
// ([smtp] ipv6_prefix; a site sends from any address of its /64, and would otherwise get a
// fresh budget with each).
// Counts are kept in a sliding window; a refused client stays refused for `block`.
//
// Across the nodes of one database the counts are shared (core::WindowCounts; serve passes
// them every second): a harvester that a load balancer spreads over N nodes gets the budget
// of one node, not N times it.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"
#include "core/network.hpp"
#include "core/window_counts.hpp"

namespace mailroster::verify {

struct HarvestSettings {
  std::size_t slow_after = 10;    // unknown recipients in the window before each RCPT waits
  std::size_t refuse_after = 30;  // ... before the client gets 421
  std::chrono::seconds window{600};
  std::chrono::milliseconds delay{2000};  // the wait per RCPT once slowed
  std::chrono::seconds block{600};        // how long a refused client stays refused
  // Clients never slowed or refused, whose unknown recipients are not counted: senders that
  // are known and busy (a partner's servers, a mail provider's outbound relays), which send
  // to a large company's typos and departed staff all day.
  std::vector<core::Cidr> exempt;
};

class HarvestGuard {
 public:
  enum class Verdict { ok, slow, refuse };

  explicit HarvestGuard(HarvestSettings settings);
  // Whether the client (its address as text) is exempt: its RCPTs are neither checked nor
  // recorded.
  bool exempt(std::string_view client_ip) const;
  // Before a RCPT from this client network.
  Verdict check(const std::string& client, core::TimePoint now);
  // The client's RCPT was rejected as unknown (or invalid) here.
  void record_unknown(const std::string& client, core::TimePoint now);
  // The counts of this node and of the others (keyed by client network).
  core::WindowCounts& counts() { return unknown_; }
  // Forgets the clients whose window emptied and whose block ended.
  void sweep(core::TimePoint now);
  std::size_t blocked() const { return blocked_until_.size(); }
  const HarvestSettings& settings() const { return settings_; }
  // New thresholds, window, delay and block (SIGHUP): the counts and blocks stay.
  void reconfigure(const HarvestSettings& settings);

 private:
  HarvestSettings settings_;
  core::WindowCounts unknown_;
  std::unordered_map<std::string, core::TimePoint> blocked_until_;
};

}  // namespace mailroster::verify
