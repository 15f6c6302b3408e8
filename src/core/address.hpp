// Mail addresses as the gateway stores and compares them.
//
// Parsing follows RFC 5321 section 4.1.2 (Mailbox = Local-part "@" Domain) with RFC 6531's
// UTF-8 extension of atext. The domain is stored in lower case; the local part is stored as
// given (case-preserving) but compared case-insensitively, as SPEC.md's model says. A quoted
// local part that needs no quoting ("john"@x) is stored unquoted, so it equals john@x.
// Address literals (user@[192.0.2.1]) are valid SMTP paths but never a company user.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace mailroster::core {

// RFC 5321 section 4.5.3.1: local part 64 octets, domain 255 octets, path 256 octets
// including the angle brackets, so a mailbox is at most 254 octets.
inline constexpr std::size_t kMaxLocalPart = 64;
inline constexpr std::size_t kMaxDomain = 255;
inline constexpr std::size_t kMaxAddress = 254;

class Address {
 public:
  Address() = default;  // empty; only as a placeholder before assignment
  // Parses "local@domain". No surrounding whitespace or angle brackets.
  static Result<Address> parse(std::string_view text);
  // An address this program parsed and stored (its str()), read back: split at the last '@',
  // not checked again (reading a large company back is a hot path). nullopt unless it has a
  // local part, an '@' and a domain.
  static std::optional<Address> stored(std::string_view text);

  const std::string& local() const noexcept { return local_; }
  const std::string& domain() const noexcept { return domain_; }
  // The address as stored and displayed: local part as given, domain lower-cased.
  std::string str() const;
  // The comparison key: both parts lower-cased (ASCII letters only).
  const std::string& key() const noexcept { return key_; }

  friend bool operator==(const Address& a, const Address& b) { return a.key_ == b.key_; }

 private:
  Address(std::string local, std::string domain);
  std::string local_;
  std::string domain_;
  std::string key_;
};

// Sub-addressing (RFC 5233, Postfix's recipient_delimiter): "alice+news@example.com" is
// alice@example.com with the extension "news". The address without its extension: the local
// part up to the first of `delimiters` ("+", or "+-" for either), when one stands after its
// first character; nullopt when there is none, when delimiters is empty, or for a quoted local
// part.
std::optional<Address> without_extension(const Address& address, std::string_view delimiters);

// Validates and lower-cases a domain name (RFC 5321 sub-domain syntax, labels of at most 63
// octets, at most 255 in all). A trailing dot is removed.
Result<std::string> parse_domain(std::string_view text);

// ASCII lower-casing; bytes >= 0x80 are left alone.
std::string ascii_lower(std::string_view text);

// True when every byte is 7-bit ASCII.
bool is_ascii(std::string_view text);

// True when text is well-formed UTF-8 (no overlongs, no surrogates, no code points > U+10FFFF).
bool is_valid_utf8(std::string_view text);

}  // namespace mailroster::core
