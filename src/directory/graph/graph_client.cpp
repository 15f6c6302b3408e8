#include "directory/graph/graph_client.hpp"

#include <curl/curl.h>
#include <sodium.h>

#include <cctype>
#include <charconv>
#include <mutex>
#include <unordered_set>
#include <variant>

#include "core/address.hpp"

namespace mailroster::directory::graph {

using nlohmann::json;

void to_json(json& j, const GraphSettings& s) {
  j = {{"tenant_id", s.tenant_id},
       {"client_id", s.client_id},
       {"login_url", s.login_url},
       {"graph_url", s.graph_url},
       {"timeout_seconds", s.timeout_seconds},
       {"max_retries", s.max_retries},
       {"max_retry_after_seconds", s.max_retry_after_seconds},
       {"page_size", s.page_size}};
}

core::Result<GraphSettings> settings_from_json(const json& j) {
  if (!j.is_object()) return core::invalid("Azure settings must be an object");
  GraphSettings s;
  for (const auto& [key, v] : j.items()) {
    auto bad = [&](const char* what) {
      return core::invalid("Azure setting '" + key + "' " + what, key);
    };
    auto text = [&](std::string& out, bool url) {
      if (!v.is_string() || v.get<std::string>().empty()) return false;
      out = v.get<std::string>();
      if (url) {
        if (out.rfind("https://", 0) != 0 && out.rfind("http://", 0) != 0) return false;
        while (!out.empty() && out.back() == '/') out.pop_back();
      }
      return out.find_first_of(" \r\n") == std::string::npos;
    };
    auto number = [&](int& out, int lo, int hi) {
      if (!v.is_number_integer() || v.get<long long>() < lo || v.get<long long>() > hi) {
        return false;
      }
      out = v.get<int>();
      return true;
    };
    bool ok = false;
    if (key == "tenant_id") {
      ok = text(s.tenant_id, false) && s.tenant_id.find('/') == std::string::npos;
    } else if (key == "client_id") {
      ok = text(s.client_id, false);
    } else if (key == "login_url") {
      ok = text(s.login_url, true);
    } else if (key == "graph_url") {
      ok = text(s.graph_url, true);
    } else if (key == "timeout_seconds") {
      ok = number(s.timeout_seconds, 1, 600);
    } else if (key == "max_retries") {
      ok = number(s.max_retries, 1, 20);
    } else if (key == "max_retry_after_seconds") {
      ok = number(s.max_retry_after_seconds, 1, 3600);
    } else if (key == "page_size") {
      ok = number(s.page_size, 1, 999);
    } else {
      return bad("is not a setting");
    }
    if (!ok) return bad("has a bad value");
  }
  if (s.tenant_id.empty())
    return core::invalid("Azure setting 'tenant_id' is required", "tenant_id");
  if (s.client_id.empty())
    return core::invalid("Azure setting 'client_id' is required", "client_id");
  return s;
}

std::optional<std::string> TokenCache::get(const std::string& key, core::TimePoint now) const {
  std::lock_guard lock(mutex_);
  auto it = tokens_.find(key);
  if (it == tokens_.end() || now >= it->second.expires) return std::nullopt;
  return it->second.value;
}
void TokenCache::put(const std::string& key, Token token) {
  std::lock_guard lock(mutex_);
  tokens_[key] = std::move(token);
}
void TokenCache::drop(const std::string& key) {
  std::lock_guard lock(mutex_);
  tokens_.erase(key);
}

namespace {

// The largest answer read (a page of 999 users is about 1 MiB): a server that sends more is
// broken or hostile, and is not allowed to fill the memory.
constexpr std::size_t kMaxAnswer = 64 * 1024 * 1024;

struct Body {
  std::string text;
  bool too_large = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* out) {
  auto& body = *static_cast<Body*>(out);
  if (body.text.size() + size * n > kMaxAnswer) {
    body.too_large = true;
    return 0;  // curl stops: CURLE_WRITE_ERROR
  }
  body.text.append(data, size * n);
  return size * n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* out) {
  std::string line(data, size * n);
  const auto colon = line.find(':');
  if (colon != std::string::npos && core::ascii_lower(line.substr(0, colon)) == "retry-after") {
    // Seconds (what Graph sends). An HTTP date or anything else is not read as 0 (which
    // would retry at once): the client's own backoff applies.
    std::string_view value(line);
    value.remove_prefix(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
      value.remove_suffix(1);
    }
    int seconds = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc() && end == value.data() + value.size() && seconds >= 0) {
      *static_cast<std::optional<int>*>(out) = seconds;
    }
  }
  return size * n;
}

std::string cache_key(const GraphSettings& s, const std::string& secret) {
  unsigned char hash[16];
  crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(secret.data()),
                     secret.size(), nullptr, 0);
  std::string hex(32, '0');
  sodium_bin2hex(hex.data(), hex.size() + 1, hash, sizeof hash);
  return s.login_url + "|" + s.tenant_id + "|" + s.client_id + "|" + hex;
}

// scheme://host:port of a URL (host lower-cased, the scheme's default port written out), or
// nothing when it is not a URL.
std::optional<std::string> origin_of(const std::string& url) {
  CURLU* u = curl_url();
  if (!u) return std::nullopt;
  std::optional<std::string> out;
  char *scheme = nullptr, *host = nullptr, *port = nullptr;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    out = core::ascii_lower(scheme) + "://" + core::ascii_lower(host) + ":" + port;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return out;
}

std::string path_of(const std::string& url) {
  const auto scheme = url.find("://");
  const auto slash = scheme == std::string::npos ? 0 : url.find('/', scheme + 3);
  auto path = slash == std::string::npos ? url : url.substr(slash);
  const auto q = path.find('?');
  return q == std::string::npos ? path : path.substr(0, q);
}

}  // namespace

GraphClient::GraphClient(GraphSettings settings, std::string secret, TokenCache& cache,
                         const core::Clock& clock, Sleep sleep)
    : settings_(std::move(settings)),
      secret_(std::move(secret)),
      cache_(cache),
      clock_(clock),
      sleep_(std::move(sleep)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
  if (!curl_) throw core::Failure(core::ErrorCode::internal, "libcurl failed to initialise");
}

GraphClient::~GraphClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

GraphClient::Response GraphClient::request(const std::string& url, const std::string* form,
                                           const std::string& bearer) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  Response r;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(settings_.timeout_seconds));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
                   static_cast<long>(std::min(settings_.timeout_seconds, 10)));
  Body body;
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.retry_after);
  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  const std::string auth = "Authorization: Bearer " + bearer;
  if (!bearer.empty()) headers = curl_slist_append(headers, auth.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (form) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, form->c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(form->size()));
  }
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (body.too_large) {
    r.error = "the answer is larger than " + std::to_string(kMaxAnswer >> 20) + " MiB";
    return r;
  }
  if (rc != CURLE_OK) {
    r.error = curl_easy_strerror(rc);
    return r;
  }
  r.body = std::move(body.text);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

std::variant<std::string, GraphClient::Failure> GraphClient::token(bool fresh) {
  const auto key = cache_key(settings_, secret_);
  if (!fresh) {
    if (auto t = cache_.get(key, clock_.now())) return *t;
  }
  cache_.drop(key);
  CURL* c = static_cast<CURL*>(curl_);
  auto escape = [&](const std::string& v) {
    char* e = curl_easy_escape(c, v.c_str(), static_cast<int>(v.size()));
    std::string out(e ? e : "");
    curl_free(e);
    return out;
  };
  const std::string form =
      "grant_type=client_credentials&client_id=" + escape(settings_.client_id) +
      "&client_secret=" + escape(secret_) + "&scope=" + escape(settings_.graph_url + "/.default");
  const auto url = settings_.login_url + "/" + settings_.tenant_id + "/oauth2/v2.0/token";
  const auto r = request(url, &form, "");
  if (!r.error.empty()) return Failure{0, "", "token request to " + url + ": " + r.error};
  const auto j = json::parse(r.body, nullptr, false);
  if (r.status != 200 || !j.is_object() || !j.contains("access_token") ||
      !j["access_token"].is_string()) {
    std::string why = j.is_object() ? j.value("error_description", j.value("error", "")) : "";
    if (why.empty()) why = "unexpected answer";
    return Failure{
        r.status, j.is_object() ? j.value("error", "") : "",
        "Azure AD refused the token request (HTTP " + std::to_string(r.status) + "): " + why};
  }
  const int expires_in = j.contains("expires_in") && j["expires_in"].is_number_integer()
                             ? j["expires_in"].get<int>()
                             : 300;
  const auto value = j["access_token"].get<std::string>();
  cache_.put(key, {value, clock_.now() + std::chrono::seconds(std::max(0, expires_in - 60))});
  return value;
}

bool GraphClient::on_graph(const std::string& url) const {
  const auto origin = origin_of(url);
  return origin && origin == origin_of(settings_.graph_url);
}

std::string GraphClient::absolute(const std::string& path_or_url) const {
  return path_or_url.rfind('/', 0) == 0 ? settings_.graph_url + path_or_url : path_or_url;
}

std::variant<json, GraphClient::Failure> GraphClient::get(const std::string& path_or_url) {
  const auto url = absolute(path_or_url);
  // A link from an answer (nextLink, deltaLink) is followed only on graph_url's own server:
  // the access token must not go anywhere else.
  if (!on_graph(url)) {
    return Failure{0, "",
                   "refused to follow a link to " + origin_of(url).value_or("'" + url + "'") +
                       ": not graph_url's server (" + origin_of(settings_.graph_url).value_or("") +
                       "), and the access token goes nowhere else"};
  }
  bool refreshed = false;
  for (int attempt = 1;; ++attempt) {
    auto t = token(false);
    if (auto* f = std::get_if<Failure>(&t)) return *f;
    const auto r = request(url, nullptr, std::get<std::string>(t));
    if (!r.error.empty()) return Failure{0, "", r.error};
    if (r.status == 401 && !refreshed) {  // expired or revoked: one new token
      refreshed = true;
      cache_.drop(cache_key(settings_, secret_));
      continue;
    }
    if ((r.status == 429 || r.status == 503) && attempt < settings_.max_retries) {
      const int wait =
          std::min(r.retry_after.value_or(attempt * 2), settings_.max_retry_after_seconds);
      sleep_(std::chrono::seconds(wait));
      continue;
    }
    const auto j = json::parse(r.body, nullptr, false);
    if (r.status == 200 && j.is_object()) return j;
    Failure f{r.status, "", ""};
    std::string message = "unexpected answer";
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
      f.code = j["error"].value("code", "");
      message = j["error"].value("message", message);
    }
    f.message =
        "HTTP " + std::to_string(r.status) + (f.code.empty() ? "" : " " + f.code) + ": " + message;
    return f;
  }
}

std::variant<GraphClient::Pages, GraphClient::Failure> GraphClient::get_all(
    const std::string& path_or_url) {
  std::vector<json> items;
  auto r = for_each_page(path_or_url, [&items](std::vector<json>&& page) {
    items.insert(items.end(), std::make_move_iterator(page.begin()),
                 std::make_move_iterator(page.end()));
    return true;
  });
  if (auto* pages = std::get_if<Pages>(&r)) pages->items = std::move(items);
  return r;
}

std::variant<GraphClient::Pages, GraphClient::Failure> GraphClient::for_each_page(
    const std::string& path_or_url, const PageSink& on_page) {
  Pages out;
  std::string next = path_or_url;
  std::unordered_set<std::string> seen = {absolute(next)};
  while (!next.empty()) {
    auto r = get(next);
    if (auto* f = std::get_if<Failure>(&r)) {
      f->message =
          "GET " + path_of(next) + " (page " + std::to_string(out.pages + 1) + "): " + f->message;
      return *f;
    }
    auto& page = std::get<json>(r);
    ++out.pages;
    if (!page.contains("value") || !page["value"].is_array()) {
      return Failure{200, "", "GET " + path_of(next) + ": no \"value\" list in the answer"};
    }
    std::vector<json> items;
    items.reserve(page["value"].size());
    for (auto& item : page["value"]) items.push_back(std::move(item));
    if (!on_page(std::move(items))) {
      return Failure{0, "",
                     "GET " + path_of(next) + ": stopped after page " + std::to_string(out.pages)};
    }
    const auto here = path_of(next);
    next = page.contains("@odata.nextLink") && page["@odata.nextLink"].is_string()
               ? page["@odata.nextLink"].get<std::string>()
               : std::string();
    if (!next.empty() && !seen.insert(absolute(next)).second) {
      return Failure{200, "",
                     "GET " + here + " (page " + std::to_string(out.pages) +
                         "): its @odata.nextLink repeats an earlier page; the listing would "
                         "never end"};
    }
    page.erase("value");
    out.last = std::move(page);
  }
  return out;
}

}  // namespace mailroster::directory::graph
