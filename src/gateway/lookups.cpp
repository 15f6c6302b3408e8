#include "gateway/lookups.hpp"

#include <mutex>
#include <string>
#include <unordered_map>

#include "core/address.hpp"
#include "core/network.hpp"

namespace mailroster::gateway {

struct Lookups::Impl {
  store::Store& store;
  std::size_t max_entries;
  mutable std::mutex mutex;
  std::unordered_map<std::string, std::optional<core::Domain>> domains;  // by lower-case name
  std::unordered_map<std::string, store::AddressOwner> owners;           // by address key
  std::unordered_map<core::Id, core::DiscoverySettings> settings;
  std::unordered_map<core::Id, std::optional<int>> sync_hours;
  std::optional<std::vector<core::Company>> companies;
  Stats stats;

  std::size_t entries() const {
    return domains.size() + owners.size() + settings.size() + sync_hours.size() +
           (companies ? 1 : 0);
  }

  // Forgets everything when the store says something changed. Under the lock.
  void forget_if_changed() {
    if (!store.lookups_changed()) return;
    domains.clear();
    owners.clear();
    settings.clear();
    sync_hours.clear();
    companies.reset();
    ++stats.clears;
  }

  // The answer for key in map: remembered, or read from the store (fetch) and remembered.
  template <class Map, class Key, class Fetch>
  typename Map::mapped_type answer(Map& map, const Key& key, Fetch&& fetch) {
    std::lock_guard lock(mutex);
    forget_if_changed();
    if (auto it = map.find(key); it != map.end()) {
      ++stats.hits;
      return it->second;
    }
    ++stats.misses;
    auto value = fetch();
    // Each kind on its own: a harvest's random addresses never push out the domains.
    if (map.size() >= max_entries) map.clear();
    map.emplace(key, value);
    return value;
  }
};

Lookups::Lookups(store::Store& store, std::size_t max_entries)
    : impl_(new Impl{store, max_entries, {}, {}, {}, {}, {}, {}, {}}) {}

Lookups::~Lookups() = default;

std::optional<core::Domain> Lookups::find_domain(std::string_view name) {
  return impl_->answer(impl_->domains, core::ascii_lower(name),
                       [&] { return impl_->store.find_domain(name); });
}

store::AddressOwner Lookups::resolve(const core::Address& address) {
  return impl_->answer(impl_->owners, address.key(), [&] { return impl_->store.resolve(address); });
}

Lookups::Meant Lookups::resolve(const core::Address& address, std::string_view delimiters) {
  auto owner = resolve(address);
  if (owner.kind != store::AddressOwner::Kind::none) return {std::move(owner), address};
  auto base = core::without_extension(address, delimiters);
  if (!base) return {std::move(owner), address};
  return {resolve(*base), std::move(*base)};
}

core::DiscoverySettings Lookups::discovery_settings(core::Id company_id) {
  return impl_->answer(impl_->settings, company_id,
                       [&] { return impl_->store.discovery_settings(company_id); });
}

std::optional<int> Lookups::directory_sync_hours(core::Id company_id) {
  return impl_->answer(impl_->sync_hours, company_id,
                       [&] { return impl_->store.directory_sync_hours(company_id); });
}

std::vector<core::Company> Lookups::companies_of(const std::string& client_ip) {
  std::vector<core::Company> out;
  const auto ip = core::IpAddress::parse(client_ip);
  if (!ip) return out;
  auto& I = *impl_;
  std::lock_guard lock(I.mutex);
  I.forget_if_changed();
  if (I.companies) {
    ++I.stats.hits;
  } else {
    ++I.stats.misses;
    I.companies = I.store.list_companies();
  }
  for (const auto& c : *I.companies) {
    for (const auto& n : c.relay_networks) {
      if (n.contains(*ip)) {
        out.push_back(c);
        break;
      }
    }
  }
  return out;
}

void Lookups::poll() {
  std::lock_guard lock(impl_->mutex);
  impl_->forget_if_changed();
}

Lookups::Stats Lookups::stats() const {
  std::lock_guard lock(impl_->mutex);
  auto s = impl_->stats;
  s.entries = impl_->entries();
  return s;
}

}  // namespace mailroster::gateway
