// The admin JSON API under /api/v1/ (SPEC "Interfaces"), on the admin HTTP server. Every
// route is declared once in a table that both registers it and writes the OpenAPI 3 document
// served at /api/v1/openapi.json. Roles: operator (every company), company admin (its
// company), end user (its own account and aliases). Tenant isolation: every object is looked
// up within the caller's reach, and anything outside it is 404, never its data. Changes
// need the session's CSRF token in X-CSRF-Token. Bodies are strict JSON objects: malformed
// JSON, unknown fields and wrong types are 400 with {"error": {"code", "message", "field"}}.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <mutex>

#include "admin/auth.hpp"
#include "admin/http_server.hpp"
#include "directory/sync_service.hpp"
#include "lifecycle/discovery_service.hpp"
#include "store/store.hpp"

namespace mailroster::admin {

class Api {
 public:
  Api(store::Store& store, Auth& auth, lifecycle::DiscoveryService& discovery,
      directory::SyncService& syncs, const core::Clock& clock);
  ~Api();
  // A route that lives elsewhere (it needs objects the API does not hold), registered and
  // documented with the others; it does its own authentication and, like the others, runs on
  // a worker thread. Before install().
  void add_route(const std::string& method, const std::string& path, const std::string& summary,
                 HttpHandler handler);
  // Registers every route, and the OpenAPI document.
  void install(HttpServer& server);
  // The OpenAPI 3 document of the routes install() registers.
  nlohmann::json openapi() const;

 private:
  struct Route;
  store::Store& store_;
  Auth& auth_;
  lifecycle::DiscoveryService& discovery_;
  directory::SyncService& syncs_;
  const core::Clock& clock_;
  // Previewed plans (api.cpp): CSV imports waiting to be applied, exactly as shown, and
  // Search Now's plans, both paged through while they wait (an hour at most).
  struct PendingPlan;
  std::mutex plans_mutex_;
  std::map<std::string, std::shared_ptr<PendingPlan>> plans_;
  std::uint64_t plans_kept_ = 0;
  // Keeps a plan for an hour; its id.
  std::string keep_plan(std::shared_ptr<PendingPlan> plan);
  // The company's plan with this id, unless expired.
  std::shared_ptr<PendingPlan> pending_plan(const std::string& id, core::Id company_id);
  std::vector<Route> routes_;
};

}  // namespace mailroster::admin
