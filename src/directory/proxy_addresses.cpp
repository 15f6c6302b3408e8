#include "directory/proxy_addresses.hpp"

#include <algorithm>

namespace mailroster::directory {

namespace {

bool starts_with_ci(const std::string& s, std::string_view prefix) {
  return s.size() >= prefix.size() && core::ascii_lower(s.substr(0, prefix.size())) == prefix;
}

}  // namespace

ProxyAddresses parse_proxy_addresses(const std::vector<std::string>& values) {
  ProxyAddresses out;
  for (const auto& v : values) {
    if (!starts_with_ci(v, "smtp:")) continue;  // X500:, SIP:, X400:, ... are not mail
    auto a = core::Address::parse(v.substr(5));
    if (!a) {
      out.problems.push_back("proxyAddresses value '" + v + "': " + a.error().message);
      continue;
    }
    if (v.compare(0, 5, "SMTP:") == 0 && !out.primary) {
      out.primary = *a;
    } else {
      out.aliases.push_back(*a);
    }
  }
  if (out.primary) {
    std::erase_if(out.aliases, [&](const core::Address& a) { return a == *out.primary; });
  }
  return out;
}

core::Result<MailAddresses> mail_addresses(const std::vector<std::string>& proxy_values,
                                           const std::string& mail) {
  const auto proxies = parse_proxy_addresses(proxy_values);
  MailAddresses out;
  if (proxies.primary) {
    out.primary = *proxies.primary;
  } else {
    if (mail.empty()) return core::invalid("no mail address");
    auto a = core::Address::parse(mail);
    if (!a) return core::invalid("mail '" + mail + "': " + a.error().message);
    out.primary = *a;
  }
  for (const auto& a : proxies.aliases) {
    if (!(a == out.primary)) out.aliases.push_back(a);
  }
  return out;
}

}  // namespace mailroster::directory
