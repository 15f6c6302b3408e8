// Random identifiers: a tag, a boundary, a Message-ID's local part, a pending plan's id.
#pragma once

#include <cstddef>
#include <string>

namespace mailroster::core {

// `bytes` random bytes (libsodium's generator) as lower-case hex: 2 × bytes characters.
std::string random_hex(std::size_t bytes);

}  // namespace mailroster::core
