#include "core/address.hpp"

#include <idn2.h>

#include <algorithm>

namespace mailroster::core {
namespace {

bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

// RFC 5322 atext, extended by RFC 6531 with any UTF-8 non-ASCII octet (checked separately).
bool is_atext(unsigned char c) {
  if (is_alpha(c) || is_digit(c) || c >= 0x80) return true;
  static constexpr std::string_view kSpecials = "!#$%&'*+-/=?^_`{|}~";
  return kSpecials.find(static_cast<char>(c)) != std::string_view::npos;
}

// RFC 5321 Dot-string = Atom *("." Atom)
bool is_dot_string(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '.') {
      if (prev == '.') return false;
    } else if (!is_atext(c)) {
      return false;
    }
    prev = ch;
  }
  return true;
}

// Parses an RFC 5321 Quoted-string (qtextSMTP / quoted-pairSMTP) into its content.
Result<std::string> unquote(std::string_view s) {
  std::string out;
  for (std::size_t i = 1; i + 1 < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\') {
      if (i + 2 >= s.size()) return invalid("quoted local part ends in a backslash", "address");
      const auto next = static_cast<unsigned char>(s[++i]);
      if (next < 32 || next > 126) return invalid("bad quoted pair in local part", "address");
      out.push_back(static_cast<char>(next));
    } else if (c == '"') {
      return invalid("unescaped quote inside quoted local part", "address");
    } else if ((c >= 32 && c <= 126) || c >= 0x80) {
      out.push_back(static_cast<char>(c));
    } else {
      return invalid("control character in local part", "address");
    }
  }
  return out;
}

// Canonical quoted form: quotes only where the content is not a dot-string.
std::string requote(std::string_view content) {
  if (is_dot_string(content)) return std::string(content);
  std::string out = "\"";
  for (char ch : content) {
    if (ch == '"' || ch == '\\') out.push_back('\\');
    out.push_back(ch);
  }
  out.push_back('"');
  return out;
}

}  // namespace

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

bool is_valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++p;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) < len) return false;
    for (std::size_t i = 1; i < len; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    static constexpr std::uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += len;
  }
  return true;
}

Result<std::string> parse_domain(std::string_view text) {
  if (!text.empty() && text.back() == '.') text.remove_suffix(1);
  if (text.empty()) return invalid("empty domain", "domain");
  if (text.size() > kMaxDomain) return invalid("domain longer than 255 octets", "domain");
  // An internationalised domain (U-labels, RFC 6531) is kept in its A-label form (xn--...), so
  // it matches however it was written: IDNA2008 with UTS #46 mapping, as Postfix does.
  std::string a_labels;
  if (!is_ascii(text)) {
    const std::string given(text);
    if (!is_valid_utf8(given)) return invalid("domain is not valid UTF-8", "domain");
    char* out = nullptr;
    const int rc = idn2_to_ascii_8z(given.c_str(), &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK) {
      return invalid("invalid internationalised domain '" + given + "': " + idn2_strerror(rc),
                     "domain");
    }
    a_labels = out;
    idn2_free(out);
    text = a_labels;
    if (text.size() > kMaxDomain) return invalid("domain longer than 255 octets", "domain");
  }
  std::size_t label_start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == '.') {
      const auto label = text.substr(label_start, i - label_start);
      if (label.empty())
        return invalid("empty label in domain '" + std::string(text) + "'", "domain");
      if (label.size() > 63) return invalid("domain label longer than 63 octets", "domain");
      // RFC 5321 sub-domain: Let-dig [Ldh-str]; a hyphen never starts or ends a label.
      if (label.front() == '-' || label.back() == '-') {
        return invalid("domain label starts or ends with '-' in '" + std::string(text) + "'",
                       "domain");
      }
      label_start = i + 1;
      continue;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (!is_alpha(c) && !is_digit(c) && c != '-') {
      return invalid("invalid character in domain '" + std::string(text) + "'", "domain");
    }
  }
  return ascii_lower(text);
}

bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

Address::Address(std::string local, std::string domain)
    : local_(std::move(local)), domain_(std::move(domain)) {
  key_ = ascii_lower(local_) + "@" + domain_;
}

std::string Address::str() const { return local_ + "@" + domain_; }

std::optional<Address> Address::stored(std::string_view text) {
  const auto at = text.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == text.size()) return std::nullopt;
  return Address(std::string(text.substr(0, at)), std::string(text.substr(at + 1)));
}

Result<Address> Address::parse(std::string_view text) {
  if (text.empty()) return invalid("empty address", "address");
  if (text.size() > kMaxAddress) return invalid("address longer than 254 octets", "address");
  if (!is_valid_utf8(text)) return invalid("address is not valid UTF-8", "address");
  const auto at = text.rfind('@');
  if (at == std::string_view::npos) {
    return invalid("'" + std::string(text) + "' is not an address (no '@')", "address");
  }
  const auto local_text = text.substr(0, at);
  const auto domain_text = text.substr(at + 1);
  if (local_text.empty()) return invalid("empty local part", "address");
  if (local_text.size() > kMaxLocalPart) {
    return invalid("local part longer than 64 octets", "address");
  }

  std::string local;
  if (local_text.size() >= 2 && local_text.front() == '"' && local_text.back() == '"') {
    auto content = unquote(local_text);
    if (!content) return content.error();
    local = requote(*content);
  } else if (is_dot_string(local_text)) {
    local = std::string(local_text);
  } else {
    return invalid("invalid local part in '" + std::string(text) + "'", "address");
  }

  if (!domain_text.empty() && domain_text.front() == '[') {
    return invalid("address literals cannot be used for company addresses", "address");
  }
  auto domain = parse_domain(domain_text);
  if (!domain) {
    return invalid("invalid domain in '" + std::string(text) + "': " + domain.error().message,
                   "address");
  }
  // The limits hold for the address as stored too: an internationalised domain grows in its
  // A-label form (xn--...), and a local part may be quoted again; what is stored must parse.
  if (local.size() > kMaxLocalPart) return invalid("local part longer than 64 octets", "address");
  if (local.size() + 1 + domain->size() > kMaxAddress) {
    return invalid("address longer than 254 octets (its domain as A-labels: " + *domain + ")",
                   "address");
  }
  return Address(std::move(local), std::move(domain).value());
}

std::optional<Address> without_extension(const Address& address, std::string_view delimiters) {
  const auto& local = address.local();
  if (delimiters.empty() || local.empty() || local.front() == '"') return std::nullopt;
  const auto at = local.find_first_of(delimiters, 1);
  if (at == std::string::npos) return std::nullopt;
  auto base = Address::parse(local.substr(0, at) + "@" + address.domain());
  if (!base) return std::nullopt;  // "a.+x": a dot-string no more without its extension
  return std::move(base).value();
}

}  // namespace mailroster::core
