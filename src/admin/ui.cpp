#include "admin/ui.hpp"

namespace mailroster::admin {

void install_ui(HttpServer& server) {
  auto serve = [](const UiAsset& asset) {
    HttpResponse r{200, asset.content_type, asset.body, {}};
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; frame-ancestors 'none'");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    return r;
  };
  for (const auto& [name, asset] : ui_assets()) {
    const auto path = name == "index.html" ? std::string("/") : "/ui/" + name;
    server.route("GET", path, [serve, &asset = asset](const HttpRequest&) { return serve(asset); });
  }
}

}  // namespace mailroster::admin
