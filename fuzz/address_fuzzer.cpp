// libFuzzer target: address parsing. A parsed address must parse again to the same key.
#include <cstdint>
#include <string_view>

#include "core/address.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto a = mailroster::core::Address::parse(text);
  if (a) {
    const auto again = mailroster::core::Address::parse(a->str());
    if (!again || again->key() != a->key()) __builtin_trap();
  }
  return 0;
}
