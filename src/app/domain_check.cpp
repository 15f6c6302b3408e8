#include "app/domain_check.hpp"

namespace mailroster::app {

std::string domain_check_verdict(const verify::DestinationCheck& c) {
  if (!c.random_rcpt) return {};
  if (c.verifies_recipients()) return "recipients are verified by callout";
  if (c.accepts_any_address()) {
    return "accepts any address (catch-all): mail is relayed, but its addresses are never "
           "counted for discovery";
  }
  return "the answer was temporary: callouts would say try again later";
}

nlohmann::json domain_check_json(const core::Domain& domain, const verify::DestinationCheck& c,
                                 smtp::TlsPolicy policy) {
  using nlohmann::json;
  const auto described = [](const std::optional<smtp::ClientResult>& r) {
    return r ? json(r->describe()) : json(nullptr);
  };
  return {{"domain", domain.name},
          {"destination", domain.destination.str()},
          {"connected", c.connected()},
          {"session", c.hello.describe()},
          {"ms", c.took.count()},
          {"extensions", c.extensions},
          {"tls_policy", smtp::to_string(policy)},
          {"tls",
           {{"active", c.tls.active},
            {"version", c.tls.version},
            {"cipher", c.tls.cipher},
            {"certificate", c.tls.peer_subject},
            {"trusted", c.tls.chain_trusted},
            {"untrusted_because", c.tls.chain_error},
            {"names_host", c.tls.names_host}}},
          {"mail_from", described(c.mail)},
          {"random_recipient", described(c.random_rcpt)},
          {"verifies_recipients", c.verifies_recipients()},
          {"accepts_any_address", c.accepts_any_address()},
          {"verdict", domain_check_verdict(c)}};
}

}  // namespace mailroster::app
