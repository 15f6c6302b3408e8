// Secrets at rest (LDAP bind passwords, Azure client secrets): sealed with libsodium's
// crypto_secretbox (XSalsa20-Poly1305, a fresh random nonce each time) under a 32-byte key
// kept in a file outside the database (created 0600 on first use). A database copied
// without its key file reveals no secret. Sealed text is base64, for a TEXT column.
#pragma once

#include <string>

#include "core/error.hpp"

namespace mailroster::store {

class SecretBox {
 public:
  // Reads the key file, creating it (mode 0600, random key) when missing. Throws
  // core::Failure when it cannot, or when the file is not a key.
  static SecretBox open_key_file(const std::string& path);

  std::string seal(const std::string& plain) const;
  // Fails when the text was not sealed with this key (another key file, tampering).
  core::Result<std::string> unseal(const std::string& sealed) const;
  // A token for `purpose` only holders of the key file can make (keyed BLAKE2b, hex): how the
  // CLI on this machine proves itself to the running service.
  std::string derive(std::string_view purpose) const;

 private:
  explicit SecretBox(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace mailroster::store
