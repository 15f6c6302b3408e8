// Events per key in a sliding window: the rate limits' counts (unknown recipients per SMTP
// client for the harvest guard; failed logins and password mails per client and per email).
//
// The nodes that share a database share these counts (serve passes them through the store
// every second), so that a limit holds across the nodes behind one balancer: what this node
// counted since the last call is taken with take_outgoing(), and what the other nodes counted
// comes in through add_remote() as if it had happened here at that moment.
//
// Bounded: no more than `keep` events are kept per key (the limits only ask whether a count
// reached theirs), and keys whose window emptied are forgotten on count() and sweep(). Not
// thread-safe: the owner locks.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.hpp"
#include "core/model.hpp"

namespace mailroster::core {

class WindowCounts {
 public:
  WindowCounts(std::chrono::seconds window, std::size_t keep);

  // One event here, now (also told to the other nodes).
  void add(const std::string& key, TimePoint now);
  // n events another node counted.
  void add_remote(const std::string& key, std::uint32_t n, TimePoint now);
  // The events of key within the window ending at now.
  std::size_t count(const std::string& key, TimePoint now);
  // What add() counted since the previous call, summed per key.
  std::vector<TallyCount> take_outgoing();
  // Forgets the keys with nothing left in the window.
  void sweep(TimePoint now);
  std::size_t keys() const { return events_.size(); }
  // A new window and bound (a configuration reload): the counts stay, and are read with them.
  void reconfigure(std::chrono::seconds window, std::size_t keep);

 private:
  // Drops the events that left the window ending at now.
  void prune(std::deque<TimePoint>& events, TimePoint now) const;
  void push(std::deque<TimePoint>& events, std::uint32_t n, TimePoint now) const;
  std::chrono::seconds window_;
  std::size_t keep_;
  std::unordered_map<std::string, std::deque<TimePoint>> events_;
  std::unordered_map<std::string, std::uint32_t> outgoing_;
};

}  // namespace mailroster::core
