// Who first claimed a key (an address, a directory identity) during one read of a source: a
// CSV file's line numbers, an LDAP read's entries. The first holder keeps the key; the caller
// reports later ones.
//
// Kept per key: a 64-bit hash of it and the holder's number, 16 bytes whatever the key's
// length, in one flat table, so a read of any size stays small and quick (a node-based map of
// the keys themselves was a tenth of an LDAP sync's CPU). Two distinct keys sharing a hash make the
// later one look claimed: at a million keys the chance is about 1 in 30 million.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include <absl/container/flat_hash_map.h>
#include <absl/hash/hash.h>

namespace mailroster::core {

class FirstClaims {
 public:
  // The holder of key, if it has one.
  std::optional<std::size_t> holder(std::string_view key) const {
    const auto it = holders_.find(hash(key));
    if (it == holders_.end()) return std::nullopt;
    return it->second;
  }

  // Gives key to `by` unless it has a holder already; returns its holder (`by` when it was
  // free, or when `by` held it before).
  std::size_t claim(std::string_view key, std::size_t by) {
    return holders_.try_emplace(hash(key), by).first->second;
  }

 private:
  static std::uint64_t hash(std::string_view key) { return absl::Hash<std::string_view>{}(key); }

  absl::flat_hash_map<std::uint64_t, std::size_t> holders_;
};

}  // namespace mailroster::core
