#include "verify/harvest_guard.hpp"

namespace mailroster::verify {

void HarvestGuard::prune(Client& c, core::TimePoint now) const {
  while (!c.unknown.empty() && c.unknown.front() <= now - settings_.window) c.unknown.pop_front();
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
  auto& c = clients_[client];
  prune(c, now);
  c.unknown.push_back(now);
}

}  // namespace mailroster::verify
