// What the SMTP path reads for every message, answered from memory: the domain of an address,
// who owns an address, a company's discovery settings and directory sync frequency, and the
// companies (their outbound relay networks). Everything is forgotten at once whenever the store
// says any of it may have changed (Store::lookups_changed: a commit by another connection on
// SQLite; a notification from another node's or process's transaction on PostgreSQL), so an
// answer is never older than the last commit this node has heard of. On PostgreSQL that takes
// an RCPT from three or four round trips to the server to none.
//
// Bounded: past `max_entries` answers of one kind (owners, domains, ...) that kind starts
// again empty; a harvest of random addresses fills the owners with "unknown" and leaves the
// domains and settings be. Thread-safe; the store calls run under its lock.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.hpp"
#include "store/store.hpp"

namespace mailroster::gateway {

class Lookups {
 public:
  explicit Lookups(store::Store& store, std::size_t max_entries = 200'000);
  ~Lookups();
  Lookups(const Lookups&) = delete;
  Lookups& operator=(const Lookups&) = delete;

  std::optional<core::Domain> find_domain(std::string_view name);
  store::AddressOwner resolve(const core::Address& address);
  // Who an address stands for, with sub-addressing ([smtp] recipient_delimiter): the address
  // itself when it is known (a user, an alias, invalid, discovered); else, when it has an
  // extension, the address without it (core::without_extension), known or not: mail to
  // alice+news@ is alice's, and an unknown one is discovered once, not once per extension.
  struct Meant {
    store::AddressOwner owner;
    core::Address address;  // the one owner describes
  };
  Meant resolve(const core::Address& address, std::string_view delimiters);
  core::DiscoverySettings discovery_settings(core::Id company_id);
  std::optional<int> directory_sync_hours(core::Id company_id);
  // The companies whose outbound relay networks hold this client address (none when it is
  // not an IP address).
  std::vector<core::Company> companies_of(const std::string& client_ip);

  // Hears what the store has to say, dropping what is in memory if something changed (the
  // lookups do it anyway; serve calls this now and then so that an idle node keeps up).
  void poll();

  struct Stats {
    std::uint64_t hits = 0, misses = 0, clears = 0;
    std::size_t entries = 0;
  };
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailroster::gateway
