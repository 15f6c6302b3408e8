// libFuzzer target: address parsing, and the network values beside it (a domain's mail servers,
// CIDR blocks). Whatever parses must parse again from what it prints, to the same value.
#include <cstdint>
#include <string_view>

#include "core/address.hpp"
#include "core/network.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mailroster::core;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto a = Address::parse(text);
  if (a) {
    const auto again = Address::parse(a->str());
    if (!again || again->key() != a->key()) __builtin_trap();
  }
  if (const auto d = Destination::parse(text)) {
    if (d->hosts.empty() || d->hosts.size() > Destination::max_hosts) __builtin_trap();
    const auto again = Destination::parse(d->str());
    if (!again || !(*again == *d)) __builtin_trap();
  }
  if (const auto c = Cidr::parse(text)) {
    const auto again = Cidr::parse(c->str());
    if (!again || !(*again == *c)) __builtin_trap();
  }
  return 0;
}
