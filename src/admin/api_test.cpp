#include "admin/api.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <set>
#include <utility>

#include "store/sqlite/sqlite_store.hpp"
#include "test_support.hpp"

namespace mailroster::admin {
namespace {

// Every route the server has is in the OpenAPI document, with its method, and nothing more.
TEST(AdminApi, TheOpenApiDocumentMatchesTheRoutes) {
  testing::TempDir dir;
  core::ManualClock clock(core::TimePoint{});
  store::sqlite::SqliteStore store(dir.file("s.db"), clock);
  boost::asio::io_context io;
  HttpServer server(io, {});
  Auth auth(store, clock);
  lifecycle::DiscoveryService discovery(store, clock);
  const auto secrets = store::SecretBox::open_key_file(dir.file("key"));
  directory::SyncService syncs(store, secrets, clock);
  Api api(store, auth, discovery, syncs, clock);
  api.install(server);
  std::set<std::pair<std::string, std::string>> routed, documented;
  for (auto [method, path] : server.routes()) {
    for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    routed.emplace(method, path);
  }
  const auto doc = api.openapi();
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      documented.emplace(method, path);
      EXPECT_TRUE(op.contains("summary")) << method << " " << path;
    }
  }
  EXPECT_EQ(routed, documented);
  EXPECT_GE(routed.size(), 14u);
  // The bodies, from what install() checks: their fields, types and the required ones.
  const auto login = doc["paths"]["/api/v1/login"]["post"]["requestBody"];
  EXPECT_EQ(login["content"]["application/json"]["schema"],
            nlohmann::json::parse(R"({"type": "object", "additionalProperties": false,
              "properties": {"email": {"type": "string"}, "password": {"type": "string"}},
              "required": ["email", "password"]})"));
  const auto run = doc["paths"]["/api/v1/companies/{company}/sync/{kind}/run"]["post"];
  EXPECT_EQ(run["requestBody"]["content"]["application/json"]["schema"]["properties"]["full"],
            nlohmann::json::parse(R"({"type": "boolean"})"));
  EXPECT_FALSE(run["requestBody"]["content"]["application/json"]["schema"].contains("required"));
  EXPECT_TRUE(doc["paths"]["/api/v1/companies/{company}/imports"]["post"]["requestBody"]["content"]
                  .contains("text/csv"));
  EXPECT_FALSE(doc["paths"]["/api/v1/users/{id}"]["delete"].contains("requestBody"));
  EXPECT_FALSE(doc["paths"]["/api/v1/logout"]["post"].contains("requestBody"));
  std::set<std::string> mail_log;
  for (const auto& p : doc["paths"]["/api/v1/mail-log"]["get"]["parameters"]) {
    if (p["in"] == "query") mail_log.insert(p["name"].get<std::string>());
  }
  EXPECT_EQ(mail_log, (std::set<std::string>{"limit", "offset", "address", "id", "result",
                                             "direction", "since", "before"}));
}

}  // namespace
}  // namespace mailroster::admin
