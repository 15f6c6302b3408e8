// `domain check` (what the gateway finds at a domain's delivery destination), written once for
// the CLI (text and --json) and the admin API (the same JSON), so they never disagree.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "core/model.hpp"
#include "smtp/client.hpp"
#include "verify/verifier.hpp"

namespace mailroster::app {

// What the random recipient's answer means for callouts and discovery; empty when the session
// never got that far.
std::string domain_check_verdict(const verify::DestinationCheck& c);

nlohmann::json domain_check_json(const core::Domain& domain, const verify::DestinationCheck& c,
                                 smtp::TlsPolicy policy);

}  // namespace mailroster::app
