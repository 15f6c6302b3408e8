// The web UI's files (src/admin/ui/), built into the binary by cmake/EmbedUi.cmake, and the
// routes that serve them: "/" is index.html, "/ui/<file>" the rest, with a strict Content
// Security Policy (only this origin's scripts and styles).
#pragma once

#include <map>
#include <string>

#include "admin/http_server.hpp"

namespace mailroster::admin {

struct UiAsset {
  std::string content_type;
  std::string body;
};
const std::map<std::string, UiAsset>& ui_assets();

void install_ui(HttpServer& server);

}  // namespace mailroster::admin
