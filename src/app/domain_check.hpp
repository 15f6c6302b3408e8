// `domain check` (what the gateway finds at a domain's delivery destination), written once for
// the CLI (text and --json) and the admin API (the same JSON), so they never disagree.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/model.hpp"
#include "smtp/client.hpp"
#include "verify/verifier.hpp"

namespace mailroster::app {

// What the random recipient's answer means for callouts and discovery; empty when the session
// never got that far.
std::string domain_check_verdict(const verify::DestinationCheck& c);

// The server mail would go to now: the first that gave a session, else the first. `checks`
// holds one check per server of the destination, in its order (at least one).
const verify::DestinationCheck& serving_server(const std::vector<verify::DestinationCheck>& checks);

// {domain, destination, tls_policy, the serving server's fields, servers: [every server's]}.
nlohmann::json domain_check_json(const core::Domain& domain,
                                 const std::vector<verify::DestinationCheck>& checks,
                                 smtp::TlsPolicy policy);

}  // namespace mailroster::app
