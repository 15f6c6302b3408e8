#include "verify/harvest_guard.hpp"

#include <algorithm>

namespace mailroster::verify {

void HarvestGuard::prune(Client& c, core::TimePoint now) const {
  while (!c.unknown.empty() && c.unknown.front() <= now - settings_.window) c.unknown.pop_front();
}

// Past refuse_after the verdict is the same, so no more than that is kept: a client refused
// everywhere, or a flood of reports, cannot grow a client's memory.
void HarvestGuard::add(Client& c, std::uint32_t unknown, core::TimePoint now) const {
  prune(c, now);
  const auto keep = std::max<std::size_t>(settings_.refuse_after, 1);
  for (std::uint32_t i = 0; i < unknown && i < keep; ++i) c.unknown.push_back(now);
  while (c.unknown.size() > keep) c.unknown.pop_front();
}

HarvestGuard::Verdict HarvestGuard::check(const std::string& client, core::TimePoint now) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return Verdict::ok;
  auto& c = it->second;
  if (now < c.blocked_until) return Verdict::refuse;
  prune(c, now);
  if (c.unknown.empty()) {
    clients_.erase(it);  // forget well-behaved clients, so the map stays small
    return Verdict::ok;
  }
  if (c.unknown.size() >= settings_.refuse_after) {
    c.blocked_until = now + settings_.block;
    return Verdict::refuse;
  }
  return c.unknown.size() >= settings_.slow_after ? Verdict::slow : Verdict::ok;
}

void HarvestGuard::record_unknown(const std::string& client, core::TimePoint now) {
  add(clients_[client], 1, now);
  ++outgoing_[client];
}

void HarvestGuard::record_remote(const std::string& client, std::uint32_t unknown,
                                 core::TimePoint now) {
  if (unknown > 0) add(clients_[client], unknown, now);
}

std::vector<HarvestCount> HarvestGuard::take_outgoing() {
  std::vector<HarvestCount> out;
  out.reserve(outgoing_.size());
  for (auto& [client, unknown] : outgoing_) out.push_back({client, unknown});
  outgoing_.clear();
  return out;
}

void HarvestGuard::sweep(core::TimePoint now) {
  const auto cut = now - settings_.window;
  std::erase_if(clients_, [&](const auto& entry) {
    const auto& c = entry.second;
    return (c.unknown.empty() || c.unknown.back() <= cut) && c.blocked_until <= now;
  });
}

}  // namespace mailroster::verify
