// proxyAddresses, as Active Directory and Microsoft Graph both give them: "SMTP:" marks the
// primary wherever it stands, "smtp:" values are aliases, every other type (X500:, SIP:,
// X400:, ...) is never a mail address; the primary is never its own alias.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/error.hpp"

namespace mailroster::directory {

struct ProxyAddresses {
  std::optional<core::Address> primary;
  std::vector<core::Address> aliases;
  std::vector<std::string> problems;  // values that looked like mail but were not addresses
};

ProxyAddresses parse_proxy_addresses(const std::vector<std::string>& values);

// An entry's addresses, as AD and Graph both give them: the primary is the SMTP: proxy
// address, else `mail`; the aliases are the other smtp: values. Fails without a usable
// primary ("no mail address", or why `mail` is not an address).
struct MailAddresses {
  core::Address primary;
  std::vector<core::Address> aliases;
};
core::Result<MailAddresses> mail_addresses(const std::vector<std::string>& proxy_values,
                                           const std::string& mail);

}  // namespace mailroster::directory
