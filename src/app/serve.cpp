#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include "app/serve.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <nlohmann/json.hpp>

#include "admin/http_server.hpp"

namespace mailroster::app {

int serve(const Config& config, store::Store& store) {
  boost::asio::io_context io;

  admin::HttpServer http(io, admin::HttpServerSettings{.listen = config.admin_listen});
  http.route("GET", "/healthz", [&store](const admin::HttpRequest&) {
    try {
      store.ping();
    } catch (const core::Failure& f) {
      return admin::HttpResponse{
          503, "application/json",
          nlohmann::json{{"status", "unavailable"}, {"reason", f.what()}}.dump()};
    }
    return admin::HttpResponse{200, "application/json", R"({"status":"ok"})"};
  });
  http.start();
  spdlog::info("database {}", config.database_path);
  spdlog::info("admin HTTP listening on {}:{}", config.admin_listen.host, http.port());

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("received {}, stopping", signal == SIGINT ? "SIGINT" : "SIGTERM");
    http.stop();
    io.stop();
  });

  io.run();
  spdlog::info("stopped");
  return 0;
}

}  // namespace mailroster::app
