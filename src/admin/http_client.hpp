// A minimal blocking HTTP/1.1 client for the CLI to reach a running `serve` on its admin
// port (for example `verify flush`, which must clear the running process's cache).
#pragma once

#include <string>

#include "admin/http_server.hpp"
#include "core/network.hpp"

namespace mailroster::admin {

// Throws core::Failure(unavailable) when the server cannot be reached. tls_trust_file: speak
// HTTPS and accept only a server certificate that chains to this PEM file (the admin port's
// own [admin] tls_cert); empty: plain HTTP.
HttpResponse http_request(const core::Endpoint& server, const std::string& method,
                          const std::string& path, const std::string& json_body,
                          const std::vector<std::pair<std::string, std::string>>& headers = {},
                          const std::string& tls_trust_file = "");

}  // namespace mailroster::admin
