// Microsoft Graph over libcurl: the OAuth2 client-credentials token (cached until a minute
// before it expires), GETs with the bearer token, 429/503 answered by waiting Retry-After
// (bounded: at most max_retries tries and max_retry_after_seconds each), one new token after
// a 401, timeouts, @odata.nextLink paging. What an answer may do is bounded: links are
// followed on graph_url's server only, a page at most once, and an answer is at most 64 MiB.
// Base URLs are settings, so national clouds and
// the tests' local server work.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/error.hpp"

namespace mailroster::directory::graph {

struct GraphSettings {
  std::string tenant_id;
  std::string client_id;
  std::string login_url = "https://login.microsoftonline.com";
  std::string graph_url = "https://graph.microsoft.com";
  int timeout_seconds = 30;
  int max_retries = 5;
  int max_retry_after_seconds = 120;
  int page_size = 999;
};
void to_json(nlohmann::json& j, const GraphSettings& s);
core::Result<GraphSettings> settings_from_json(const nlohmann::json& j);

// Tokens by tenant, client and secret, until shortly before they expire. Thread-safe: the
// scheduler and the admin API's workers share it.
class TokenCache {
 public:
  struct Token {
    std::string value;
    core::TimePoint expires;
  };
  std::optional<std::string> get(const std::string& key, core::TimePoint now) const;
  void put(const std::string& key, Token token);
  void drop(const std::string& key);

 private:
  mutable std::mutex mutex_;
  std::map<std::string, Token> tokens_;
};

class GraphClient {
 public:
  using Sleep = std::function<void(std::chrono::seconds)>;
  GraphClient(GraphSettings settings, std::string secret, TokenCache& cache,
              const core::Clock& clock, Sleep sleep);
  ~GraphClient();
  GraphClient(const GraphClient&) = delete;
  GraphClient& operator=(const GraphClient&) = delete;

  struct Failure {
    long status = 0;      // HTTP status; 0: no answer (connection, timeout)
    std::string code;     // Graph's error.code, when it gave one
    std::string message;  // complete: "GET /v1.0/users (page 3): HTTP 500 ...: ..."
  };
  // One GET of a path ("/v1.0/users?...") or an absolute URL (nextLink, deltaLink). An
  // absolute URL on another server than graph_url's is refused: the token never goes there.
  // An answer larger than 64 MiB is a failure.
  std::variant<nlohmann::json, Failure> get(const std::string& path_or_url);
  // Whether a link (an answer's deltaLink) is on graph_url's server (scheme, host, port).
  bool on_graph(const std::string& url) const;
  // Follows @odata.nextLink; every page's "value" items, and the last page (deltaLink). A
  // nextLink that repeats an earlier page is a failure, not an endless listing.
  struct Pages {
    std::vector<nlohmann::json> items;
    nlohmann::json last;
    std::size_t pages = 0;
  };
  std::variant<Pages, Failure> get_all(const std::string& path_or_url);
  // The same, a page at a time: each page's items go to on_page as it arrives (false from it
  // stops the listing, a failure); items stays empty. For listings too large to hold.
  using PageSink = std::function<bool(std::vector<nlohmann::json>&&)>;
  std::variant<Pages, Failure> for_each_page(const std::string& path_or_url,
                                             const PageSink& on_page);

 private:
  struct Response {
    long status = 0;
    std::string body;
    std::optional<int> retry_after;
    std::string error;  // transport error (curl)
  };
  Response request(const std::string& url, const std::string* form, const std::string& bearer);
  std::variant<std::string, Failure> token(bool fresh);
  std::string absolute(const std::string& path_or_url) const;

  GraphSettings settings_;
  std::string secret_;
  TokenCache& cache_;
  const core::Clock& clock_;
  Sleep sleep_;
  void* curl_ = nullptr;
};

}  // namespace mailroster::directory::graph
