// The admin JSON API under /api/v1/ (SPEC "Interfaces"), on the admin HTTP server. Every
// route is declared once in a table that both registers it and writes the OpenAPI 3 document
// served at /api/v1/openapi.json. Roles: operator (every company), company admin (its
// company), end user (its own account and aliases). Tenant isolation: every object is looked
// up within the caller's reach, and anything outside it is 404, never its data. Changes
// need the session's CSRF token in X-CSRF-Token. Bodies are strict JSON objects: malformed
// JSON, unknown fields and wrong types are 400 with {"error": {"code", "message", "field"}}.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "admin/auth.hpp"
#include "admin/http_server.hpp"
#include "directory/sync_service.hpp"
#include "lifecycle/discovery_service.hpp"
#include "store/store.hpp"

namespace mailroster::admin {

// How the API mails password links: "forgot my password", and the invitation of a login made
// without a password. serve sets it; without it no link can be mailed (503, or 400 for a login
// without a password).
struct PasswordMail {
  // Where users reach the web UI ("https://gw.example.com"); links are BASE/#/reset/TOKEN.
  // "" when not known: no link can be mailed.
  std::function<std::string()> base_url;
  // Hands a message to the relay; does not wait for it (a failure is logged there).
  std::function<void(const std::string& to, const std::string& message)> send;
  std::string from = "mailroster@localhost";
  std::string hostname = "localhost";  // in the Message-ID
  std::chrono::seconds reset_ttl{std::chrono::hours(1)};
  std::chrono::seconds invitation_ttl{std::chrono::hours(24 * 7)};
};

// BASE/#/reset/TOKEN: the web UI's page that takes the link ("" when base is "").
std::string password_link_url(std::string base, const std::string& token);

// The mail that carries a password link, RFC 5322, text/plain UTF-8.
std::string password_link_message(const PasswordMail& mail, const std::string& to,
                                  const std::string& link, bool invitation, core::TimePoint now);

// The serve processes on the database (Store::list_nodes) as `node list --json` and GET
// /api/v1/nodes show them: each with whether it is alive at now and runs the scheduler.
nlohmann::json nodes_json(store::Store& store, core::TimePoint now);

// Licensed users per company over a filter's days (Store::license_usage, store::summarize_usage)
// as `usage --json` and GET /api/v1/usage show them: the days, then each company's peak,
// average, last day and every day counted.
nlohmann::json usage_json(store::Store& store, const store::UsageFilter& filter);
// The same days as CSV, for a billing system or a spreadsheet: a header, then one CRLF line
// per company and day (day, company, users, peak_users, end_users, silent_users, functional,
// from_discovery), by company, then day.
std::string usage_csv(store::Store& store, const store::UsageFilter& filter);

// A user as JSON with last_mail_at: when it last had clean mail (ISO 8601, to the hour;
// Store::record_mail), or null; `last` as Store::last_mail answers.
nlohmann::json user_json(const core::User& user,
                         const std::unordered_map<core::Id, core::TimePoint>& last);
// Users so, their last mail read at once.
nlohmann::json users_json(store::Store& store, const std::vector<core::User>& users);

class Api {
 public:
  Api(store::Store& store, Auth& auth, lifecycle::DiscoveryService& discovery,
      directory::SyncService& syncs, const core::Clock& clock);
  ~Api();
  // A route that lives elsewhere (it needs objects the API does not hold), registered and
  // documented with the others; it does its own authentication and, like the others, runs on
  // a worker thread. Before install(). body: the fields of its JSON body, none required, for
  // the document (the handler checks them).
  void add_route(const std::string& method, const std::string& path, const std::string& summary,
                 HttpHandler handler,
                 std::optional<std::map<std::string, nlohmann::json::value_t>> body = {});
  void set_password_mail(PasswordMail mail) { password_mail_ = std::move(mail); }
  // The company a path names, when the caller administers it (an operator, or its admin):
  // every route on a company, here and add_route's, is absent (404) to anyone else.
  std::optional<core::Company> company_for(const std::string& name, const Caller& c);
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
  PasswordMail password_mail_;
  // Where mailed links point, or "" when links cannot be mailed.
  std::string password_link_base() const;
  // Mails a new link for the login; whether it could.
  bool mail_password_link(const store::Login& login, bool invitation);
};

}  // namespace mailroster::admin
