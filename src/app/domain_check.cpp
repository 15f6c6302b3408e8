#include "app/domain_check.hpp"

#include <algorithm>

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

const verify::DestinationCheck& serving_server(
    const std::vector<verify::DestinationCheck>& checks) {
  const auto it = std::find_if(checks.begin(), checks.end(),
                               [](const verify::DestinationCheck& c) { return c.connected(); });
  return it != checks.end() ? *it : checks.at(0);
}

namespace {

nlohmann::json server_json(const verify::DestinationCheck& c) {
  using nlohmann::json;
  const auto described = [](const std::optional<smtp::ClientResult>& r) {
    return r ? json(r->describe()) : json(nullptr);
  };
  return {{"server", c.destination.str()},
          {"connected", c.connected()},
          {"session", c.hello.describe()},
          {"ms", c.took.count()},
          {"extensions", c.extensions},
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

}  // namespace

nlohmann::json domain_check_json(const core::Domain& domain,
                                 const std::vector<verify::DestinationCheck>& checks,
                                 smtp::TlsPolicy policy) {
  auto out = server_json(serving_server(checks));
  out["domain"] = domain.name;
  out["destination"] = domain.destination.str();
  out["tls_policy"] = smtp::to_string(policy);
  auto& servers = out["servers"] = nlohmann::json::array();
  for (const auto& c : checks) servers.push_back(server_json(c));
  return out;
}

}  // namespace mailroster::app
