#include "store/secret_box.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <vector>

namespace mailroster::store {

using core::ErrorCode;
using core::Failure;

namespace {

void init_sodium() {
  if (sodium_init() < 0) throw Failure(ErrorCode::internal, "libsodium failed to initialise");
}

}  // namespace

SecretBox SecretBox::open_key_file(const std::string& path) {
  init_sodium();
  std::ifstream in(path, std::ios::binary);
  if (in) {
    std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (key.size() != crypto_secretbox_KEYBYTES) {
      throw Failure(ErrorCode::internal, "secret key file '" + path + "' is not a key (" +
                                             std::to_string(key.size()) + " bytes, not " +
                                             std::to_string(crypto_secretbox_KEYBYTES) + ")");
    }
    return SecretBox(std::move(key));
  }
  std::string key(crypto_secretbox_KEYBYTES, '\0');
  crypto_secretbox_keygen(reinterpret_cast<unsigned char*>(key.data()));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) throw Failure(ErrorCode::internal, "cannot create secret key file '" + path + "'");
  const bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size());
  ::close(fd);
  if (!ok) throw Failure(ErrorCode::internal, "cannot write secret key file '" + path + "'");
  return SecretBox(std::move(key));
}

std::string SecretBox::seal(const std::string& plain) const {
  std::vector<unsigned char> box(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES +
                                 plain.size());
  unsigned char* nonce = box.data();
  randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(box.data() + crypto_secretbox_NONCEBYTES,
                        reinterpret_cast<const unsigned char*>(plain.data()), plain.size(), nonce,
                        reinterpret_cast<const unsigned char*>(key_.data()));
  std::string out(sodium_base64_ENCODED_LEN(box.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), box.data(), box.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.find('\0'));
  return out;
}

core::Result<std::string> SecretBox::unseal(const std::string& sealed) const {
  std::vector<unsigned char> box(sealed.size());
  std::size_t len = 0;
  if (sodium_base642bin(box.data(), box.size(), sealed.data(), sealed.size(), nullptr, &len,
                        nullptr, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
    return core::Error{ErrorCode::internal, "a stored secret is damaged", ""};
  }
  std::string plain(len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES, '\0');
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()),
                                 box.data() + crypto_secretbox_NONCEBYTES,
                                 len - crypto_secretbox_NONCEBYTES, box.data(),
                                 reinterpret_cast<const unsigned char*>(key_.data())) != 0) {
    return core::Error{ErrorCode::internal,
                       "a stored secret cannot be opened with this key file (was it replaced?)",
                       ""};
  }
  return plain;
}

std::string SecretBox::derive(std::string_view purpose) const {
  unsigned char out[32];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(purpose.data()),
                     purpose.size(), reinterpret_cast<const unsigned char*>(key_.data()),
                     key_.size());
  std::string hex(2 * sizeof out + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), out, sizeof out);
  hex.pop_back();
  return hex;
}

}  // namespace mailroster::store
