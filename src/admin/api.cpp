#include "admin/api.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>
#include <stdexcept>
#include <variant>

#include <fmt/format.h>

#include <ext/stdio_filebuf.h>
#include <sstream>

#include "core/discovery.hpp"
#include "core/json.hpp"
#include "core/random.hpp"
#include "directory/csv/csv_export.hpp"
#include "directory/csv/csv_import.hpp"
#include "directory/plan_spool.hpp"
#include "directory/sync_apply.hpp"
#include "lifecycle/user_actions.hpp"
#include "reports/weekly_report.hpp"

namespace mailroster::admin {

using nlohmann::json;
using store::LoginRole;

namespace {

HttpResponse ok(const json& body, int status = 200) {
  return HttpResponse{status, "application/json", body.dump(), {}};
}

// A login as the API shows it: never its password hash.
json login_json(const store::Login& l) {
  return {{"email", l.email},
          {"role", store::to_string(l.role)},
          {"created_at", core::format_iso8601(l.created_at)}};
}

HttpResponse not_found(const std::string& what) {
  return json_error(404, "not_found", "no such " + what);
}

std::map<std::string, std::string> query_params(const std::string& query) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos < query.size()) {
    const auto amp = query.find('&', pos);
    const auto part = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    const auto eq = part.find('=');
    out[percent_decode(part.substr(0, eq), true)] =
        eq == std::string::npos ? "" : percent_decode(part.substr(eq + 1), true);
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return out;
}

// Field names a JSON object may have, with their JSON types (null is always allowed).
using Fields = std::map<std::string, json::value_t>;

// Why a JSON object does not fit: a field not in `allowed` or of another type, or a
// required one missing; nullopt when it fits.
std::optional<HttpResponse> check_fields(const json& obj, const Fields& allowed,
                                         const std::set<std::string>& required = {}) {
  for (const auto& [key, v] : obj.items()) {
    auto it = allowed.find(key);
    if (it == allowed.end()) {
      return json_error(400, "invalid_argument", "unknown field '" + key + "'", key);
    }
    const bool number_ok = it->second == json::value_t::number_unsigned && v.is_number_unsigned();
    if (v.type() != it->second && !number_ok && !v.is_null()) {
      return json_error(400, "invalid_argument", "field '" + key + "' has the wrong type", key);
    }
  }
  for (const auto& r : required) {
    if (!obj.contains(r) || obj[r].is_null()) {
      return json_error(400, "invalid_argument", "field '" + r + "' is required", r);
    }
  }
  return std::nullopt;
}

// Why a list of actions ({"actions": [...]}) does not fit: an item that is no JSON object, or
// whose fields do not fit (check_fields); nullopt when every item fits.
std::optional<HttpResponse> check_actions(const json& actions, const Fields& allowed,
                                          const std::set<std::string>& required) {
  for (const auto& a : actions) {
    if (!a.is_object()) {
      return json_error(400, "invalid_argument", "each action must be a JSON object", "actions");
    }
    if (auto error = check_fields(a, allowed, required)) return error;
  }
  return std::nullopt;
}

struct Body {
  json value;
  std::optional<HttpResponse> error;
};

// The body as a JSON object, whatever its fields.
Body parse_object(const HttpRequest& req) {
  Body b;
  // No body at all: no fields (POST .../run with nothing to say).
  b.value = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
  if (b.value.is_discarded()) {
    b.error = json_error(400, "invalid_argument", "the body is not valid JSON");
  } else if (!b.value.is_object()) {
    b.error = json_error(400, "invalid_argument", "the body must be a JSON object");
  }
  return b;
}

// A strict JSON object body: fields must be among `allowed` with the given JSON types.
Body parse_body(const HttpRequest& req, const Fields& allowed,
                const std::set<std::string>& required = {}) {
  auto b = parse_object(req);
  if (!b.error) b.error = check_fields(b.value, allowed, required);
  return b;
}

struct Page {
  std::size_t limit = 100, offset = 0;
};
// Past any list's end, and far from where SQLite's 64-bit OFFSET would turn negative (= 0).
constexpr std::size_t kMaxOffset = std::size_t{1} << 40;

// A query's whole number, digits only ("12abc", "-1" and "" are none).
std::optional<std::size_t> whole_number(std::string_view text) {
  std::size_t n = 0;
  const auto end = text.data() + text.size();
  const auto [at, ec] = std::from_chars(text.data(), end, n);
  if (text.empty() || ec != std::errc() || at != end) return std::nullopt;
  return n;
}

// ?limit=&offset=: 1 to 1000 (100 when not given) from 0, or a 400.
std::variant<Page, HttpResponse> page_params(const std::map<std::string, std::string>& q) {
  Page p;
  for (auto [name, value] : {std::pair{"limit", &p.limit}, std::pair{"offset", &p.offset}}) {
    if (!q.count(name)) continue;
    const auto n = whole_number(q.at(name));
    if (!n) {
      return json_error(400, "invalid_argument", "limit and offset are whole numbers", name);
    }
    *value = *n;
  }
  if (p.limit == 0 || p.limit > 1000) {
    return json_error(400, "invalid_argument", "limit must be 1 to 1000", "limit");
  }
  if (p.offset > kMaxOffset) {
    return json_error(400, "invalid_argument", "offset is too large", "offset");
  }
  return p;
}

// A page of a list of `total`: {"items", "limit", "offset", "total", "next_offset"?}.
HttpResponse page_json(json items, const Page& p, std::size_t total) {
  json out = {
      {"items", std::move(items)}, {"limit", p.limit}, {"offset", p.offset}, {"total", total}};
  if (p.offset < total && total - p.offset > p.limit) out["next_offset"] = p.offset + p.limit;
  return HttpResponse{200, "application/json", out.dump(), {}};
}

// ?limit=&offset= of a list the store pages (list(window)) and counts (count()), or a 400.
template <class List, class Count>
HttpResponse page_of(const std::string& query, List&& list, Count&& count) {
  const auto page = page_params(query_params(query));
  if (auto* e = std::get_if<HttpResponse>(&page)) return *e;
  const auto& p = std::get<Page>(page);
  return page_json(list(store::Window{p.limit, p.offset}), p, count());
}

// As page_of, for a store filter with its own limit and offset (store::AuditFilter, ...):
// list(filter) with the page's window, count(filter) without.
template <class Filter, class List, class Count>
HttpResponse filtered_page_of(const std::string& query, const Filter& filter, List&& list,
                              Count&& count) {
  return page_of(
      query,
      [&](store::Window w) {
        auto page = filter;
        page.limit = w.limit;
        page.offset = w.offset;
        return list(page);
      },
      [&] { return count(filter); });
}

// A string read where it is, as a stream; tellg() works.
class InPlace : public std::streambuf {
 public:
  explicit InPlace(const std::string& s) {
    auto* p = const_cast<char*>(s.data());  // only ever read
    setg(p, p, p + s.size());
  }

 protected:
  pos_type seekoff(off_type off, std::ios_base::seekdir dir, std::ios_base::openmode) override {
    if (off != 0 || dir != std::ios_base::cur) return pos_type(off_type(-1));
    return pos_type(gptr() - eback());
  }
};

// An attachment's Content-Disposition (RFC 6266): the name as plain ASCII (other bytes and
// quotes become '_'), and as RFC 8187 UTF-8 for clients that read filename*.
std::string content_disposition(const std::string& name) {
  std::string plain, encoded;
  for (const unsigned char c : name) {
    plain.push_back(c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? static_cast<char>(c) : '_');
    if (std::isalnum(c) || (c != 0 && std::strchr("!#$&+-.^_`|~", c))) {
      encoded.push_back(static_cast<char>(c));
    } else {
      static constexpr char hex[] = "0123456789ABCDEF";
      encoded += {'%', hex[c >> 4], hex[c & 15]};
    }
  }
  return "attachment; filename=\"" + plain + "\"; filename*=UTF-8''" + encoded;
}

// A CSV file to download, named; never kept by a cache.
HttpResponse csv_file(const std::string& name, std::string body) {
  return HttpResponse{
      200,
      "text/csv; charset=utf-8",
      std::move(body),
      {{"Content-Disposition", content_disposition(name)}, {"Cache-Control", "no-store"}}};
}

std::string text_or(const json& j, const char* key, std::string fallback = "") {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : fallback;
}

// What a route's JSON object body may hold: install() checks it before the handler runs (a
// 400 naming the field), and openapi() documents it.
struct BodySpec {
  Fields fields;
  std::set<std::string> required;
  bool open = false;                       // any fields: the handler checks each
  std::string media = "application/json";  // another: the handler reads the body as it is
  bool handler_checks = false;             // described here, checked by the handler

  bool checked() const { return !open && !handler_checks && media == "application/json"; }
};

// A JSON type as OpenAPI names it.
const char* openapi_type(json::value_t t) {
  switch (t) {
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return "number";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    default:
      return "string";
  }
}

json openapi_schema(const BodySpec& spec) {
  if (spec.media != "application/json") return {{"type", "string"}};
  json schema = {{"type", "object"}};
  if (spec.open) return schema;
  json properties = json::object();
  for (const auto& [name, type] : spec.fields) properties[name] = {{"type", openapi_type(type)}};
  schema["properties"] = std::move(properties);
  schema["additionalProperties"] = false;
  if (!spec.required.empty()) schema["required"] = spec.required;
  return schema;
}

// The body of a route with a BodySpec, as install() checked it.
Body checked_body(const HttpRequest& req) { return parse_object(req); }

}  // namespace

struct Api::Route {
  std::string method;
  std::string path;
  std::string summary;
  bool public_route = false;  // no login needed
  std::function<HttpResponse(const HttpRequest&, const std::optional<Caller>&)> handler;
  RouteOptions options = {};
  std::optional<BodySpec> body = std::nullopt;
  // The query parameters it reads, with what each is; any other is a 400 naming it.
  std::vector<std::pair<std::string, std::string>> query = {};
};

namespace {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

const QueryParams& paging() {
  static const QueryParams p = {{"limit", "entries a page: 1 to 1000 (100)"},
                                {"offset", "entries before the page (0)"}};
  return p;
}

QueryParams paging_and(QueryParams more) {
  more.insert(more.begin(), paging().begin(), paging().end());
  return more;
}

// What each route reads from its query (by "METHOD path"); a route not named reads none.
const std::map<std::string, QueryParams>& route_queries() {
  static const QueryParams mail_log =
      paging_and({{"address", "to or from this address, or part of it (bob@, @acme.example)"},
                  {"id", "one message's queue id"},
                  {"result", "delivered, deferred, rejected or spam"},
                  {"direction", "inbound or outbound"},
                  {"since", "ISO-8601 time, or a duration back from now (2h, 7d)"},
                  {"before", "ISO-8601 time, or a duration back from now"}});
  static const QueryParams usage = {{"month", "YYYY-MM (the current month when nothing is given)"},
                                    {"from", "first day, YYYY-MM-DD"},
                                    {"to", "last day, YYYY-MM-DD (today)"}};
  static const QueryParams force = {{"force", "true: with its domains and addresses"}};
  static const std::map<std::string, QueryParams> q = {
      {"GET /api/v1/companies/{company}/users",
       paging_and({{"search", "part of an address (the user's or an alias's) or a name"},
                   {"role", "end_user, silent_user or functional"},
                   {"source", "manual, csv, ldap, azure or discovery"},
                   {"no_mail_days",
                    "only users with no clean mail in or out for this many days "
                    "(1 to 3650): licensed, but perhaps no longer needed"}})},
      {"GET /api/v1/companies/{company}/discovered",
       paging_and({{"search", "part of an address (\"@old.example\")"}})},
      {"GET /api/v1/companies/{company}/invalid",
       paging_and({{"search", "part of an address or of the reason it was marked"}})},
      {"GET /api/v1/companies/{company}/audit",
       paging_and({{"action", "one action: " + core::audit_action_list()},
                   {"object", "what the events are about: an address, in any case"}})},
      {"GET /api/v1/companies/{company}/plans/{plan}/{list}", paging()},
      {"GET /api/v1/companies/{company}/mail-log", mail_log},
      {"GET /api/v1/mail-log", mail_log},
      {"GET /api/v1/companies/{company}/usage", usage},
      {"GET /api/v1/companies/{company}/usage.csv", usage},
      {"GET /api/v1/usage", usage},
      {"GET /api/v1/usage.csv", usage},
      {"DELETE /api/v1/companies/{company}", force},
      {"DELETE /api/v1/companies/{company}/domains/{domain}",
       {{"force", "true: with the addresses in it"}}},
      {"POST /api/v1/companies/{company}/imports",
       {{"delete_missing", "true: plan deletes of CSV users not in the file"}}},
  };
  return q;
}

// A previewed plan's lists, as the API names them: PlanItem::Action's order, then bad rows
// (a CSV import's).
constexpr int kErrors = 4, kLists = 5;
const std::string kListNames[kLists] = {"creates", "updates", "deletes", "skips", "errors"};
constexpr std::size_t kShown = 100;     // of each list, in the preview's answer
constexpr std::size_t kPlansKept = 10;  // per company

}  // namespace

// A previewed plan, waiting (an hour at most) to be paged through, or applied (a CSV import).
// Nothing of it stays in memory but its digest: the plan's lists (as JSON) and an uploaded file
// wait on disk, so that a million-row preview costs no more memory than the import itself. An
// import's apply plans the kept file again, and applies it only if the digest is the same.
struct Api::PendingPlan {
  core::Id company_id = 0;
  bool delete_missing = false;       // a CSV import's option
  std::optional<std::string> guard;  // the deletion guard's refusal of the previewed plan
  directory::PlanDigest digest;
  core::TimePoint expires{};
  std::uint64_t order = 0;  // of keeping, among all plans
  bool applying = false;    // under Api::plans_mutex_
  directory::LineSpool lists[kLists];

  // Sinks for a run that plans this.
  void item(const core::PlanItem& i) {
    const auto line = json(i).dump();
    digest.item(i, line);
    lists[static_cast<int>(i.action)].append(line);
  }
  void error(const directory::csv::RowError& e) {
    digest.error(e.line, e.message);
    lists[kErrors].append(json{{"line", e.line}, {"error", e.message}}.dump());
  }
  // The run's counts, and the first kShown of each list.
  json answer(core::Source source, const directory::RunResult& r) {
    auto j = directory::summary_json(source, r);
    for (int l = 0; l < kLists; ++l) j[kListNames[l]] = page(l, 0, kShown);
    return j;
  }

  void keep(const std::string& csv) {
    csv_ = directory::temporary_file();
    if (std::fwrite(csv.data(), 1, csv.size(), csv_.get()) != csv.size() ||
        std::fflush(csv_.get()) != 0) {
      throw core::Failure(core::ErrorCode::internal, "cannot keep the file (disk full?)");
    }
  }
  bool has_file() const { return csv_ != nullptr; }
  // The kept file from its start (one reader at a time: the apply).
  std::unique_ptr<std::istream> file() {
    std::rewind(csv_.get());
    struct Stream : std::istream {
      explicit Stream(std::FILE* f) : std::istream(nullptr), buf(f, std::ios::in) { rdbuf(&buf); }
      __gnu_cxx::stdio_filebuf<char> buf;
    };
    return std::make_unique<Stream>(csv_.get());
  }
  json page(int list, std::size_t offset, std::size_t limit) {
    std::lock_guard lock(mutex_);  // the spool's file position
    json out = json::array();
    lists[list].read(offset, limit, [&](std::string_view j) { out.push_back(json::parse(j)); });
    return out;
  }
  std::size_t size(int list) const { return lists[list].size(); }

 private:
  directory::TempFile csv_;
  std::mutex mutex_;
};

std::string Api::keep_plan(std::shared_ptr<PendingPlan> plan) {
  const auto id = core::random_hex(16);
  std::lock_guard lock(plans_mutex_);
  const auto now = clock_.now();
  std::erase_if(plans_, [&](const auto& kv) { return kv.second->expires <= now; });
  // A company keeps its newest kPlansKept plans: previews cannot fill the disk.
  std::vector<std::map<std::string, std::shared_ptr<PendingPlan>>::iterator> own;
  for (auto it = plans_.begin(); it != plans_.end(); ++it) {
    if (it->second->company_id == plan->company_id && !it->second->applying) own.push_back(it);
  }
  if (own.size() >= kPlansKept) {
    std::sort(own.begin(), own.end(),
              [](const auto& a, const auto& b) { return a->second->order < b->second->order; });
    for (std::size_t i = 0; i + kPlansKept - 1 < own.size(); ++i) plans_.erase(own[i]);
  }
  plan->expires = now + std::chrono::hours(1);
  plan->order = ++plans_kept_;
  plans_[id] = std::move(plan);
  return id;
}

std::shared_ptr<Api::PendingPlan> Api::pending_plan(const std::string& id, core::Id company_id) {
  std::lock_guard lock(plans_mutex_);
  auto it = plans_.find(id);
  if (it == plans_.end() || it->second->company_id != company_id ||
      it->second->expires <= clock_.now()) {
    return nullptr;
  }
  return it->second;
}

json user_json(const core::User& user, const std::unordered_map<core::Id, core::TimePoint>& last) {
  json j = user;
  const auto it = last.find(user.id);
  j["last_mail_at"] = it == last.end() ? json() : json(core::format_iso8601(it->second));
  return j;
}

json users_json(store::Store& store, const std::vector<core::User>& users) {
  const auto last = store.last_mail(users);
  json out = json::array();
  for (const auto& u : users) out.push_back(user_json(u, last));
  return out;
}

std::optional<core::Company> Api::company_for(const std::string& name, const Caller& c) {
  auto company = store_.find_company(name);
  if (!company) return std::nullopt;
  if (c.is_operator()) return company;
  if (c.login.role == LoginRole::company_admin && c.login.company_id == company->id) return company;
  return std::nullopt;
}

Api::Api(store::Store& store, Auth& auth, lifecycle::DiscoveryService& discovery,
         directory::SyncService& syncs, const core::Clock& clock)
    : store_(store), auth_(auth), discovery_(discovery), syncs_(syncs), clock_(clock) {
  using Req = const HttpRequest&;
  using Who = const std::optional<Caller>&;

  // The user an id names, when the caller may see it (an end user: only itself).
  auto user_for = [this](const std::string& id_text, const Caller& c) -> std::optional<core::User> {
    core::Id id = 0;
    try {
      id = std::stoll(id_text);
    } catch (const std::exception&) {
      return std::nullopt;
    }
    auto u = store_.user_by_id(id);
    if (!u) return std::nullopt;
    if (c.is_operator()) return u;
    if (c.login.role == LoginRole::company_admin && c.login.company_id == u->company_id) return u;
    if (c.login.role == LoginRole::end_user && c.login.user_id == u->id) return u;
    return std::nullopt;
  };
  // A route on one company (its path has {company}), for its administrators: operators and the
  // company's own admins. Anyone else, an end user of that company too, gets a 404.
  auto in_company = [this](auto handler) {
    return [this, handler](Req req, Who c) -> HttpResponse {
      auto co = company_for(req.params.at("company"), *c);
      if (!co) return not_found("company");
      return handler(req, c, *co);
    };
  };
  auto admin_of = [](const Caller& c) { return c.login.role != LoginRole::end_user; };
  // A page of the mail log of one company, or (nullopt) of every company, each entry naming
  // its company then; its filters from the query, or a 400 naming the one that is wrong.
  auto mail_log = [this](const HttpRequest& req, std::optional<core::Id> company) {
    auto f = store::mail_log_filter(query_params(req.query), clock_.now());  // or a 400
    f.company_id = company;
    std::map<core::Id, std::string> names;  // of the companies on the page
    return filtered_page_of(
        req.query, f,
        [&](const auto& page) {
          auto items = json::array();
          for (const auto& e : store_.list_mail_log(page)) {
            json item = e;
            if (!company) {
              auto it = names.find(e.company_id);
              if (it == names.end()) {
                const auto co = store_.company_by_id(e.company_id);
                it = names.emplace(e.company_id, co ? co->name : "").first;
              }
              item["company"] = it->second;
            }
            items.push_back(std::move(item));
          }
          return items;
        },
        [&](const auto& all) { return store_.count_mail_log(all); });
  };
  // The days of licensed users a request asks for (?month=, ?from=&to=; or a 400 naming the
  // one that is wrong), of one company or (nullopt) of every company.
  auto usage_filter = [this](const HttpRequest& req, std::optional<core::Id> company) {
    auto f = store::usage_filter(query_params(req.query), clock_.now());
    f.company_id = company;
    return f;
  };
  auto actor_of = [](const Caller& c) { return core::Actor{"admin:" + c.login.email}; };
  auto address_field = [](const json& j,
                          const char* key) -> std::variant<core::Address, HttpResponse> {
    auto a = core::Address::parse(text_or(j, key));
    if (!a) return json_error(400, "invalid_argument", a.error().message, key);
    return *a;
  };
  auto me_json = [this](const Caller& c) {
    json j = {{"email", c.login.email}, {"role", store::to_string(c.login.role)}};
    if (c.login.company_id) {
      const auto co = store_.company_by_id(*c.login.company_id);
      j["company"] = co ? co->name : "";
    }
    if (c.login.user_id) j["user_id"] = *c.login.user_id;
    return j;
  };

  routes_ = {
      {"POST",
       "/api/v1/login",
       "Log in: sets the session cookie; returns the CSRF token",
       true,
       [this, me_json](Req req, Who) {
         const auto b = checked_body(req);
         auto r = auth_.login(b.value["email"], b.value["password"], req.client);
         if (auto* refused = std::get_if<HttpResponse>(&r)) return *refused;
         const auto& g = std::get<Auth::Granted>(r);
         auto body = me_json(Caller{g.login, g.csrf});
         body["csrf_token"] = g.csrf;
         auto out = ok(body);
         out.headers.emplace_back("Set-Cookie", g.cookie);
         return out;
       },
       {},
       BodySpec{Fields{{"email", json::value_t::string}, {"password", json::value_t::string}},
                {"email", "password"}}},
      {"POST", "/api/v1/logout", "End the session", false,
       [this](Req req, Who) {
         auto out = ok({{"ok", true}});
         out.headers.emplace_back("Set-Cookie", auth_.logout(req));
         return out;
       }},
      {"GET", "/api/v1/me", "Who is logged in", false,
       [me_json](Req, Who c) {
         auto j = me_json(*c);
         j["csrf_token"] = c->csrf;
         return ok(j);
       }},
      {"POST",
       "/api/v1/me/password",
       "Change one's own password ({current_password, new_password}): every session ends",
       false,
       [this](Req req, Who c) {
         const auto b = checked_body(req);
         if (auto refused = auth_.change_password(*c, b.value["current_password"],
                                                  b.value["new_password"], req.client)) {
           return *refused;
         }
         auto out = ok({{"ok", true}});
         out.headers.emplace_back("Set-Cookie", auth_.logout(req));
         return out;
       },
       {},
       BodySpec{Fields{{"current_password", json::value_t::string},
                       {"new_password", json::value_t::string}},
                {"current_password", "new_password"}}},
      {"POST",
       "/api/v1/password/forgot",
       "Mail a link that sets a new password ({email}): the same answer whether or not the "
       "email logs in here",
       true,
       [this](Req req, Who) {
         const auto b = checked_body(req);
         if (password_link_base().empty()) {
           return json_error(503, "unavailable",
                             "password links cannot be mailed from this server: ask an "
                             "administrator (the operator sets [admin] public_url)");
         }
         const auto email = core::ascii_lower(text_or(b.value, "email"));
         if (!auth_.may_mail_link(req.client, email)) {
           return json_error(429, "rate_limited", "too many password mails; try again later");
         }
         if (const auto l = store_.find_login(email); l && auth_.may_log_in(*l)) {
           mail_password_link(*l, false);
         }
         return ok(
             {{"ok", true}, {"message", "if " + email + " logs in here, a link is on its way"}},
             202);
       },
       {},
       BodySpec{Fields{{"email", json::value_t::string}}, {"email"}}},
      {"POST",
       "/api/v1/password/reset",
       "Set a new password with a mailed link's token ({token, password}): the link is used up "
       "and every session of the login ends",
       true,
       [this](Req req, Who) {
         const auto b = checked_body(req);
         if (auto refused =
                 auth_.reset_password(text_or(b.value, "token"), text_or(b.value, "password"))) {
           return *refused;
         }
         return ok({{"ok", true}});
       },
       {},
       BodySpec{Fields{{"token", json::value_t::string}, {"password", json::value_t::string}},
                {"token", "password"}}},
      {"GET", "/api/v1/companies/{company}/logins",
       "Who logs in for the company: its administrators and end users", false,
       in_company([this](Req, Who, const core::Company& co) {
         json items = json::array();
         for (const auto& l : store_.list_logins()) {
           if (l.company_id == co.id) items.push_back(login_json(l));
         }
         return ok({{"items", items}});
       })},
      {"POST",
       "/api/v1/companies/{company}/logins",
       "Add a login ({email, role: company_admin | end_user, password}); an end user's email is "
       "a user of the company whose role is end_user. Without a password the login is invited: "
       "a mailed link sets it",
       false,
       in_company([this, actor_of](Req req, Who c, const core::Company& co) {
         const auto b = checked_body(req);
         const bool invite = !b.value.contains("password") || b.value["password"].is_null();
         if (invite && password_link_base().empty()) {
           return json_error(400, "invalid_argument",
                             "a password is needed: invitations cannot be mailed from this server "
                             "(the operator sets [admin] public_url)",
                             "password");
         }
         const auto role = store::parse_login_role(text_or(b.value, "role"));
         if (!role || *role == store::LoginRole::operator_role) {
           return json_error(400, "invalid_argument", "role must be company_admin or end_user",
                             "role");
         }
         // An invited login's first password is random, known to nobody: the link replaces it.
         const auto l = store_.add_login(
             admin::company_login(store_, text_or(b.value, "email"), *role, co.id,
                                  invite ? random_token() : text_or(b.value, "password")),
             actor_of(*c));
         auto body = login_json(l);
         body["invited"] = invite && mail_password_link(l, true);
         return ok(body, 201);
       }),
       {},
       BodySpec{Fields{{"email", json::value_t::string},
                       {"role", json::value_t::string},
                       {"password", json::value_t::string}},
                {"email", "role"}}},
      {"DELETE", "/api/v1/companies/{company}/logins/{email}",
       "Remove one of the company's logins (its sessions end); not one's own", false,
       in_company([this, actor_of](Req req, Who c, const core::Company& co) {
         const auto l = store_.find_login(core::ascii_lower(req.params.at("email")));
         if (!l || l->company_id != co.id) return not_found("login");
         if (l->id == c->login.id) {
           return json_error(409, "conflict", "one's own login is not removed here");
         }
         store_.remove_login(l->id, actor_of(*c));
         return ok({{"ok", true}});
       })},
      {"GET", "/api/v1/companies", "Companies the caller may see", false,
       [this, admin_of](Req, Who c) {
         if (!admin_of(*c)) return json_error(403, "forbidden", "administrators only");
         json out = json::array();
         for (const auto& co : store_.list_companies()) {
           if (c->is_operator() || c->login.company_id == co.id) out.push_back(co);
         }
         return ok({{"items", out}});
       }},
      {"GET", "/api/v1/companies/{company}", "One company", false,
       [this](Req req, Who c) {
         auto co = company_for(req.params.at("company"), *c);
         return co ? ok(*co) : not_found("company");
       }},
      {"GET", "/api/v1/companies/{company}/users",
       "A company's users, a page at a time, with company_users: how many it has in all, and "
       "with a search, role or source, matching: how many of them match",
       false, in_company([this](Req req, Who, const core::Company& co) {
         const auto q = query_params(req.query);
         store::UserFilter f;
         f.company_id = co.id;
         if (auto it = q.find("search"); it != q.end()) f.search = it->second;
         if (auto it = q.find("role"); it != q.end()) {
           auto role = core::parse_role(it->second);
           if (!role) return json_error(400, "invalid_argument", "unknown role", "role");
           f.role = *role;
         }
         if (auto it = q.find("source"); it != q.end()) {
           auto source = core::parse_source(it->second);
           if (!source) return json_error(400, "invalid_argument", "unknown source", "source");
           f.source = *source;
         }
         if (auto it = q.find("no_mail_days"); it != q.end()) {
           const auto days = whole_number(it->second);
           if (!days || *days < 1 || *days > 3650) {
             return json_error(400, "invalid_argument", "no_mail_days: 1 to 3650", "no_mail_days");
           }
           f.no_mail_since = clock_.now() - std::chrono::days{*days};
         }
         const auto page = page_params(q);
         if (auto* e = std::get_if<HttpResponse>(&page)) return *e;
         f.limit = std::get<Page>(page).limit;
         f.offset = std::get<Page>(page).offset;
         const auto users = store_.list_users(f);
         json out = {{"items", users_json(store_, users)},
                     {"limit", f.limit},
                     {"offset", f.offset},
                     {"company_users", store_.count_users(co.id)}};
         if (!f.search.empty() || f.role || f.source || f.no_mail_since) {
           // All of them, on every page: how far the pages go ("1–100 of 230 matching").
           auto every = f;
           every.limit = every.offset = 0;
           out["matching"] = store_.count_matching_users(every);
         }
         if (users.size() == f.limit) out["next_offset"] = f.offset + f.limit;
         return ok(out);
       })},
      {"GET", "/api/v1/companies/{company}/users.csv",
       "A company's users and aliases as a CSV file that the CSV import reads back", false,
       in_company([this](Req, Who, const core::Company& co) {
         std::ostringstream csv;
         directory::csv::export_users(store_, co.id, csv, true);  // for spreadsheets: a BOM
         return csv_file(co.name + "-users.csv", std::move(csv).str());
       })},
      {"POST",
       "/api/v1/companies/{company}/users",
       "Add a user",
       false,
       in_company([this](Req req, Who c, const core::Company& co) {
         const auto b = checked_body(req);
         auto address = core::Address::parse(b.value["address"].get<std::string>());
         if (!address)
           return json_error(400, "invalid_argument", address.error().message, "address");
         const auto domain = store_.find_domain(address->domain());
         if (!domain || domain->company_id != co.id) {
           return json_error(400, "invalid_argument",
                             "domain '" + address->domain() + "' is not a domain of " + co.name,
                             "address");
         }
         store::NewUser u;
         u.address = *address;
         u.first_name = text_or(b.value, "first_name");
         u.surname = text_or(b.value, "surname");
         auto role = core::parse_role(text_or(b.value, "role", "end_user"));
         if (!role) return json_error(400, "invalid_argument", "unknown role", "role");
         u.role = *role;
         return ok(store_.add_user(u, core::Actor{"admin:" + c->login.email}), 201);
       }),
       {},
       BodySpec{Fields{{"address", json::value_t::string},
                       {"first_name", json::value_t::string},
                       {"surname", json::value_t::string},
                       {"role", json::value_t::string}},
                {"address"}}},
      {"GET", "/api/v1/users/{id}", "One user (an end user: only itself)", false,
       [this, user_for](Req req, Who c) {
         auto u = user_for(req.params.at("id"), *c);
         if (!u) return not_found("user");
         json j = users_json(store_, {*u}).at(0);
         j["aliases"] = store_.list_aliases(std::nullopt, u->id);
         return ok(j);
       }},
      {"PATCH",
       "/api/v1/users/{id}",
       "Change a user (an end user: only its own names)",
       false,
       [this, user_for](Req req, Who c) {
         auto u = user_for(req.params.at("id"), *c);
         if (!u) return not_found("user");
         const auto b = checked_body(req);
         if (c->login.role == LoginRole::end_user && b.value.contains("role")) {
           return json_error(400, "invalid_argument", "an end user changes only its own names",
                             "role");
         }
         store::UserChange ch;
         if (b.value.contains("first_name")) ch.first_name = text_or(b.value, "first_name");
         if (b.value.contains("surname")) ch.surname = text_or(b.value, "surname");
         if (b.value.contains("role")) {
           auto role = core::parse_role(text_or(b.value, "role"));
           if (!role) return json_error(400, "invalid_argument", "unknown role", "role");
           ch.role = *role;
         }
         return ok(store_.update_user(u->id, ch, core::Actor{"admin:" + c->login.email}));
       },
       {},
       BodySpec{Fields{{"first_name", json::value_t::string},
                       {"surname", json::value_t::string},
                       {"role", json::value_t::string}},
                {}}},
      {"DELETE", "/api/v1/users/{id}", "Remove a user and its aliases", false,
       [this, user_for, admin_of](Req req, Who c) {
         auto u = user_for(req.params.at("id"), *c);
         if (!u) return not_found("user");
         if (!admin_of(*c)) return json_error(403, "forbidden", "administrators only");
         store_.remove_user(u->id, core::Actor{"admin:" + c->login.email});
         return ok({{"ok", true}});
       }},
      {"POST",
       "/api/v1/companies/{company}/users/actions",
       "Several of a company's users at once, all or nothing: set_role (role), remove (with "
       "their aliases). Removing two users or more passes the deletion guard unless {force}.",
       false,
       in_company([this, actor_of](Req req, Who c, const core::Company& co) {
         const auto b = checked_body(req);
         if (auto error = check_actions(b.value["actions"],
                                        {{"action", json::value_t::string},
                                         {"address", json::value_t::string},
                                         {"role", json::value_t::string}},
                                        {"action", "address"})) {
           return *error;
         }
         std::vector<lifecycle::UserAction> actions;
         for (const auto& a : b.value["actions"]) {
           lifecycle::UserAction u;
           const auto kind = text_or(a, "action");
           if (kind == "set_role") {
             auto role = core::parse_role(text_or(a, "role"));
             if (!role) return json_error(400, "invalid_argument", "unknown role", "role");
             u.role = *role;
           } else if (kind == "remove") {
             u.kind = lifecycle::UserAction::Kind::remove;
           } else {
             return json_error(400, "invalid_argument", "unknown action '" + kind + "'", "action");
           }
           const auto text = text_or(a, "address");
           auto address = core::Address::parse(text);
           if (!address) {
             return json_error(400, "invalid_argument",
                               "'" + text + "' is not a user of " + co.name, "address");
           }
           u.address = *address;
           actions.push_back(std::move(u));
         }
         const auto changed = lifecycle::apply_user_actions(
             store_, co, actions, b.value.value("force", false), actor_of(*c));
         return ok({{"changed", changed}});
       }),
       {},
       BodySpec{Fields{{"actions", json::value_t::array}, {"force", json::value_t::boolean}},
                {"actions"}}},
      {"GET", "/api/v1/companies/{company}/discovered",
       "SMTP Discovery: discovered addresses, with when each expires if no one handles it "
       "(expires_at) and the user it looks like an alias of (suggested_alias_target)",
       false, in_company([this](Req req, Who, const core::Company& co) {
         const auto settings = store_.discovery_settings(co.id);
         const auto q = query_params(req.query);
         const auto search = q.count("search") ? q.at("search") : std::string();
         return page_of(
             req.query,
             [&](store::Window w) {
               json items = json::array();
               for (const auto& d : store_.list_discovered(co.id, w, search)) {
                 json item = d;
                 const auto expires = core::expires_at(d, settings);
                 item["expires_at"] = expires ? json(core::format_iso8601(*expires)) : json();
                 const auto target =
                     d.suggested_alias_of ? store_.user_by_id(*d.suggested_alias_of) : std::nullopt;
                 item["suggested_alias_target"] = target ? json(target->address.str()) : json();
                 items.push_back(std::move(item));
               }
               return items;
             },
             [&] { return store_.count_discovered(co.id, search); });
       })},
      {"GET", "/api/v1/companies/{company}/invalid",
       "Addresses marked invalid; ?search= (part of the address or the reason), ?limit=&offset=",
       false, in_company([this](Req req, Who, const core::Company& co) {
         const auto q = query_params(req.query);
         const auto search = q.count("search") ? q.at("search") : std::string();
         return page_of(
             req.query, [&](store::Window w) { return store_.list_invalid(co.id, w, search); },
             [&] { return store_.count_invalid(co.id, search); });
       })},
      {"GET", "/api/v1/companies/{company}/audit",
       "The company's audit trail, newest first; ?object= (an address, any case), ?action=, "
       "?limit=&offset=",
       false, in_company([this](Req req, Who, const core::Company& co) {
         const auto q = query_params(req.query);
         store::AuditFilter f;
         f.company_id = co.id;
         if (auto it = q.find("object"); it != q.end()) f.object = it->second;
         if (auto it = q.find("action"); it != q.end()) {
           auto action = core::parse_audit_action(it->second);
           if (!action)
             return json_error(400, "invalid_argument", action.error().message, "action");
           f.action = *action;
         }
         return filtered_page_of(
             req.query, f, [&](const auto& page) { return store_.list_audit(page); },
             [&](const auto& all) { return store_.count_audit(all); });
       })},
      {"GET", "/api/v1/companies/{company}/mail-log",
       "What happened to the company's mail, newest first: each recipient refused, each "
       "message's outcome per recipient; ?address= (a part of the sender or recipient, any "
       "case), ?id= (a part of the gateway's id of the message, or of the reply, which holds the "
       "destination's), ?result= (delivered, deferred, rejected, spam), ?direction= (inbound, "
       "outbound), "
       "?since= and ?before= (ISO-8601, or a duration ago such as 2h), ?limit=&offset=",
       false, in_company([mail_log](Req req, Who, const core::Company& co) {
         return mail_log(req, co.id);
       })},
      {"GET", "/api/v1/mail-log",
       "Every company's mail log (operators), each entry with its company; the filters of a "
       "company's mail log",
       false,
       [mail_log](Req req, Who c) {
         if (!c->is_operator()) return json_error(403, "forbidden", "operators only");
         return mail_log(req, std::nullopt);
       }},
      {"GET", "/api/v1/companies/{company}/usage",
       "The company's licensed users per day (UTC), as maintenance counted them, with the "
       "peak and the average of the days: ?month=YYYY-MM, or ?from=&to= (YYYY-MM-DD); "
       "default the current month",
       false, in_company([this, usage_filter](Req req, Who, const core::Company& co) {
         return ok(usage_json(store_, usage_filter(req, co.id)));
       })},
      {"GET", "/api/v1/companies/{company}/usage.csv",
       "The company's licensed users per day as a CSV file; the filters of its usage", false,
       in_company([this, usage_filter](Req req, Who, const core::Company& co) {
         const auto f = usage_filter(req, co.id);
         return csv_file(co.name + "-usage-" + f.from + "-" + f.to + ".csv", usage_csv(store_, f));
       })},
      {"GET", "/api/v1/usage.csv",
       "Every company's licensed users per day as a CSV file (operators); the filters of a "
       "company's usage",
       false,
       [this, usage_filter](Req req, Who c) {
         if (!c->is_operator()) return json_error(403, "forbidden", "operators only");
         const auto f = usage_filter(req, std::nullopt);
         return csv_file("usage-" + f.from + "-" + f.to + ".csv", usage_csv(store_, f));
       }},
      {"GET", "/api/v1/usage",
       "Every company's licensed users per day (operators: what to bill), removed companies' "
       "days included; the filters of a company's usage",
       false,
       [this, usage_filter](Req req, Who c) {
         if (!c->is_operator()) return json_error(403, "forbidden", "operators only");
         return ok(usage_json(store_, usage_filter(req, std::nullopt)));
       }},
      {"GET", "/api/v1/audit-actions",
       "The actions of the audit trail, which its ?action= filter takes (administrators)", false,
       [admin_of](Req, Who c) {
         if (!admin_of(*c)) return json_error(403, "forbidden", "administrators only");
         return ok({{"items", std::vector<std::string>(std::begin(core::kAuditActions),
                                                       std::end(core::kAuditActions))}});
       }},
      {"GET", "/api/v1/sync-defaults",
       "The options a new directory sync starts with (administrators)", false,
       [admin_of](Req, Who c) {
         if (!admin_of(*c)) return json_error(403, "forbidden", "administrators only");
         return ok({{"options", core::to_json_value(core::SyncConfig{})}});
       }},
      {"GET", "/api/v1/syncs",
       "Every company's directory syncs: schedule, last success and attempt, the last error, "
       "whether the next run reads everything (operators)",
       false,
       [this](Req, Who c) {
         if (!c->is_operator()) return json_error(403, "forbidden", "operators only");
         auto items = json::array();
         for (const auto& s : syncs_.overview()) items.push_back(directory::to_json_value(s));
         return ok({{"items", items}});
       }},
      {"GET", "/api/v1/nodes",
       "The serve processes on this database, alive or gone, and the one running the scheduler "
       "(operators)",
       false,
       [this](Req, Who c) {
         if (!c->is_operator()) return json_error(403, "forbidden", "operators only");
         return ok({{"items", nodes_json(store_, clock_.now())}});
       }},
      {"POST",
       "/api/v1/companies",
       "Add a company (operators)",
       false,
       [this, actor_of](Req req, Who c) {
         if (!c->is_operator()) return json_error(403, "forbidden", "operators only");
         const auto b = checked_body(req);
         auto name = core::validate_company_name(text_or(b.value, "name"));
         if (!name) return json_error(400, "invalid_argument", name.error().message, "name");
         store::NewCompany n{
             *name, text_or(b.value, "tech_contact"), text_or(b.value, "admin_contact"), {}};
         for (const auto* field : {"tech_contact", "admin_contact"}) {
           auto v = core::validate_contact(text_or(b.value, field), field);
           if (!v) return json_error(400, "invalid_argument", v.error().message, field);
         }
         return ok(store_.add_company(n, actor_of(*c)), 201);
       },
       {},
       BodySpec{Fields{{"name", json::value_t::string},
                       {"tech_contact", json::value_t::string},
                       {"admin_contact", json::value_t::string}},
                {"name"}}},
      {"PATCH",
       "/api/v1/companies/{company}",
       "Change a company's contacts (administrators) or relay networks (operators)",
       false,
       in_company([this, actor_of](Req req, Who c, const core::Company& co) {
         const auto b = checked_body(req);
         store::CompanyChange ch;
         for (const auto* field : {"tech_contact", "admin_contact"}) {
           if (!b.value.contains(field)) continue;
           auto v = core::validate_contact(text_or(b.value, field), field);
           if (!v) return json_error(400, "invalid_argument", v.error().message, field);
           (std::string(field) == "tech_contact" ? ch.tech_contact : ch.admin_contact) = *v;
         }
         // Which hosts may send the company's outbound mail through the gateway: an
         // operator's decision (a company administrator could otherwise open the relay).
         if (b.value.contains("relay_networks") && !b.value["relay_networks"].is_null()) {
           if (!c->is_operator()) {
             return json_error(403, "forbidden", "operators only change relay networks",
                               "relay_networks");
           }
           ch.relay_networks.emplace();
           for (const auto& n : b.value["relay_networks"]) {
             auto cidr = core::Cidr::parse_trusted(n.is_string() ? n.get<std::string>() : n.dump());
             if (!cidr) {
               return json_error(400, "invalid_argument",
                                 "relay network " + n.dump() + ": " + cidr.error().message,
                                 "relay_networks");
             }
             ch.relay_networks->push_back(*cidr);
           }
         }
         return ok(store_.update_company(co.id, ch, actor_of(*c)));
       }),
       {},
       BodySpec{Fields{{"tech_contact", json::value_t::string},
                       {"admin_contact", json::value_t::string},
                       {"relay_networks", json::value_t::array}},
                {}}},
      {"DELETE", "/api/v1/companies/{company}",
       "Remove a company (operators; ?force=true with its domains and addresses)", false,
       in_company([this, actor_of](Req req, Who c, const core::Company& co) {
         if (!c->is_operator()) return json_error(403, "forbidden", "operators only");
         const auto q = query_params(req.query);
         store_.remove_company(co.id, q.count("force") && q.at("force") == "true", actor_of(*c));
         return ok({{"ok", true}});
       })},
      {"PATCH",
       "/api/v1/companies/{company}/domains/{domain}",
       "Change where a domain's mail is delivered (operators)",
       false,
       in_company([this, actor_of](Req req, Who c, const core::Company& co) {
         auto d = store_.find_domain(core::ascii_lower(req.params.at("domain")));
         if (!d || d->company_id != co.id) return not_found("domain");
         if (!c->is_operator()) return json_error(403, "forbidden", "operators only");
         const auto b = checked_body(req);
         auto dest = core::Destination::parse(text_or(b.value, "destination"));
         if (!dest) return json_error(400, "invalid_argument", dest.error().message, "destination");
         return ok(store_.set_domain_destination(d->id, *dest, actor_of(*c)));
       }),
       {},
       BodySpec{Fields{{"destination", json::value_t::string}}, {"destination"}}},
      {"DELETE", "/api/v1/companies/{company}/domains/{domain}",
       "Remove a domain (operators; ?force=true with its addresses)", false,
       in_company([this, actor_of](Req req, Who c, const core::Company& co) {
         auto d = store_.find_domain(core::ascii_lower(req.params.at("domain")));
         if (!d || d->company_id != co.id) return not_found("domain");
         if (!c->is_operator()) return json_error(403, "forbidden", "operators only");
         const auto q = query_params(req.query);
         store_.remove_domain(d->id, q.count("force") && q.at("force") == "true", actor_of(*c));
         return ok({{"ok", true}});
       })},
      {"GET", "/api/v1/companies/{company}/domains", "A company's domains", false,
       in_company([this](Req, Who, const core::Company& co) {
         return ok({{"items", store_.list_domains(co.id)}});
       })},
      {"POST",
       "/api/v1/companies/{company}/domains",
       "Add a domain and its delivery destination (operators)",
       false,
       in_company([this, actor_of](Req req, Who c, const core::Company& co) {
         if (!c->is_operator()) return json_error(403, "forbidden", "operators only");
         const auto b = checked_body(req);
         auto dest = core::Destination::parse(text_or(b.value, "destination"));
         if (!dest) return json_error(400, "invalid_argument", dest.error().message, "destination");
         return ok(store_.add_domain(co.id, core::ascii_lower(text_or(b.value, "name")), *dest,
                                     actor_of(*c)),
                   201);
       }),
       {},
       BodySpec{Fields{{"name", json::value_t::string}, {"destination", json::value_t::string}},
                {"name", "destination"}}},
      {"POST",
       "/api/v1/users/{id}/aliases",
       "Add an alias to a user",
       false,
       [this, user_for, admin_of, actor_of, address_field](Req req, Who c) {
         auto u = user_for(req.params.at("id"), *c);
         if (!u) return not_found("user");
         if (!admin_of(*c)) return json_error(403, "forbidden", "administrators only");
         const auto b = checked_body(req);
         auto a = address_field(b.value, "address");
         if (auto* e = std::get_if<HttpResponse>(&a)) return *e;
         return ok(store_.add_alias(u->id, std::get<core::Address>(a), actor_of(*c)), 201);
       },
       {},
       BodySpec{Fields{{"address", json::value_t::string}}, {"address"}}},
      {"DELETE", "/api/v1/users/{id}/aliases/{address}", "Remove one of a user's aliases", false,
       [this, user_for, admin_of, actor_of](Req req, Who c) {
         auto u = user_for(req.params.at("id"), *c);
         if (!u) return not_found("user");
         if (!admin_of(*c)) return json_error(403, "forbidden", "administrators only");
         auto a = core::Address::parse(req.params.at("address"));
         auto alias = a ? store_.find_alias(*a) : std::nullopt;
         if (!alias || alias->user_id != u->id) return not_found("alias");
         store_.remove_alias(alias->id, actor_of(*c));
         return ok({{"ok", true}});
       }},
      {"GET", "/api/v1/companies/{company}/report",
       "The next weekly SMTP Discovery report (Thursday) as it would be sent: week, recipients, "
       "text",
       false, in_company([this](Req, Who, const core::Company& co) {
         return ok(reports::preview_json(
             reports::build_report(store_, co, reports::next_report_day(clock_.now()))));
       })},
      {"GET", "/api/v1/companies/{company}/discovery-settings", "SMTP Discovery settings", false,
       in_company([this](Req, Who, const core::Company& co) {
         return ok(store_.discovery_settings(co.id));
       })},
      {"GET", "/api/v1/companies/{company}/discovery-status",
       "Whether SMTP Discovery is at work for the company, and why not: off in the settings, or "
       "forced off by a directory sync every 24 hours",
       false, in_company([this](Req, Who, const core::Company& co) {
         const auto settings = store_.discovery_settings(co.id);
         const auto hours = store_.directory_sync_hours(co.id);
         const auto why = core::discovery_off_reason(settings, hours);
         return ok({{"enabled", settings.enabled},
                    {"active", core::discovery_active(settings, hours)},
                    {"reason", why.empty() ? json(nullptr) : json(why)}});
       })},
      {"PATCH",
       "/api/v1/companies/{company}/discovery-settings",
       "Change SMTP Discovery settings (the fields given)",
       false,
       in_company([this, actor_of](Req req, Who c, const core::Company& co) {
         auto b = parse_object(req);  // each field checked by set_setting below
         if (b.error) return *b.error;
         auto s = store_.discovery_settings(co.id);
         for (const auto& [key, v] : b.value.items()) {
           const auto text = v.is_string() ? v.get<std::string>() : v.dump();
           if (auto err = core::set_setting(s, key, text)) {
             return json_error(400, "invalid_argument", err->message, key);
           }
         }
         if (auto err = core::validate(s)) {
           return json_error(400, "invalid_argument", err->message, err->field);
         }
         store_.set_discovery_settings(co.id, s, actor_of(*c));
         return ok(s);
       }),
       {},
       BodySpec{.open = true}},
      {"POST",
       "/api/v1/companies/{company}/discovered/actions",
       "The Select menu, on several discovered addresses at once (all or nothing): "
       "create_user (first_name, surname, role), create_functional, mark_invalid, add_alias "
       "(alias_of)",
       false,
       in_company([this, actor_of](Req req, Who c, const core::Company& co) {
         const auto b = checked_body(req);
         std::vector<lifecycle::DiscoveredAction> actions;
         if (auto error = check_actions(b.value["actions"],
                                        {{"action", json::value_t::string},
                                         {"address", json::value_t::string},
                                         {"first_name", json::value_t::string},
                                         {"surname", json::value_t::string},
                                         {"role", json::value_t::string},
                                         {"alias_of", json::value_t::string}},
                                        {"action", "address"})) {
           return *error;
         }
         for (const auto& a : b.value["actions"]) {
           lifecycle::DiscoveredAction d;
           const auto kind = text_or(a, "action");
           using K = lifecycle::DiscoveredAction::Kind;
           if (kind == "create_user") {
             d.kind = K::create_user;
           } else if (kind == "create_functional") {
             d.kind = K::create_functional;
           } else if (kind == "mark_invalid") {
             d.kind = K::mark_invalid;
           } else if (kind == "add_alias") {
             d.kind = K::add_alias;
           } else {
             return json_error(400, "invalid_argument", "unknown action '" + kind + "'", "action");
           }
           auto address = core::Address::parse(text_or(a, "address"));
           if (!address) {
             return json_error(400, "invalid_argument", address.error().message, "address");
           }
           d.address = *address;
           d.first_name = text_or(a, "first_name");
           d.surname = text_or(a, "surname");
           if (a.contains("role")) {
             auto role = core::parse_role(text_or(a, "role"));
             if (!role) return json_error(400, "invalid_argument", "unknown role", "role");
             d.role = *role;
           }
           if (d.kind == K::add_alias) {
             auto of = core::Address::parse(text_or(a, "alias_of"));
             if (!of)
               return json_error(400, "invalid_argument", "alias_of: the user's address",
                                 "alias_of");
             d.alias_of = *of;
           }
           actions.push_back(std::move(d));
         }
         discovery_.apply(co.id, actions, actor_of(*c));
         return ok({{"applied", actions.size()}});
       }),
       {},
       BodySpec{Fields{{"actions", json::value_t::array}}, {"actions"}}},
      {"POST",
       "/api/v1/companies/{company}/invalid",
       "Mark an address invalid",
       false,
       in_company([this, actor_of, address_field](Req req, Who c, const core::Company& co) {
         const auto b = checked_body(req);
         auto a = address_field(b.value, "address");
         if (auto* e = std::get_if<HttpResponse>(&a)) return *e;
         const auto& address = std::get<core::Address>(a);
         const auto domain = store_.find_domain(address.domain());
         if (!domain || domain->company_id != co.id) {
           return json_error(400, "invalid_argument", "not a domain of " + co.name, "address");
         }
         return ok(store_.add_invalid(address, text_or(b.value, "reason"), actor_of(*c)), 201);
       }),
       {},
       BodySpec{Fields{{"address", json::value_t::string}, {"reason", json::value_t::string}},
                {"address"}}},
      {"DELETE", "/api/v1/companies/{company}/invalid/{address}", "Forget an invalid address",
       false, in_company([this, actor_of](Req req, Who c, const core::Company& co) {
         auto a = core::Address::parse(req.params.at("address"));
         auto inv = a ? store_.find_invalid(*a) : std::nullopt;
         if (!inv || inv->company_id != co.id) return not_found("invalid address");
         store_.remove_invalid(inv->id, actor_of(*c));
         return ok({{"ok", true}});
       })},
      {"POST",
       "/api/v1/companies/{company}/invalid/{address}/user",
       "Create a user for an invalid address (fixing it)",
       false,
       in_company([this, actor_of](Req req, Who c, const core::Company& co) {
         auto a = core::Address::parse(req.params.at("address"));
         auto inv = a ? store_.find_invalid(*a) : std::nullopt;
         if (!inv || inv->company_id != co.id) return not_found("invalid address");
         const auto b = checked_body(req);
         std::optional<core::Role> role;
         if (b.value.contains("role")) {
           auto r = core::parse_role(text_or(b.value, "role"));
           if (!r) return json_error(400, "invalid_argument", "unknown role", "role");
           role = *r;
         }
         return ok(
             discovery_.create_user_from_invalid(*a, text_or(b.value, "first_name"),
                                                 text_or(b.value, "surname"), role, actor_of(*c)),
             201);
       }),
       {},
       BodySpec{Fields{{"first_name", json::value_t::string},
                       {"surname", json::value_t::string},
                       {"role", json::value_t::string}},
                {}}},
  };
  auto kind_of = [](const std::string& text) -> std::optional<core::Source> {
    if (text == "ldap") return core::Source::ldap;
    if (text == "azure") return core::Source::azure;
    return std::nullopt;
  };
  // A handler of a company's sync of one kind ({company}, {kind}), for administrators of that
  // company (as in_company): it gets the company and the kind, or the caller a 404.
  auto in_sync = [this, kind_of](auto handler) {
    return [this, kind_of, handler](Req req, Who c) -> HttpResponse {
      auto co = company_for(req.params.at("company"), *c);
      auto kind = kind_of(req.params.at("kind"));
      if (!co || !kind) return not_found("sync");
      return handler(req, c, *co, *kind);
    };
  };
  std::vector<Route> more = {
      {"GET", "/api/v1/companies/{company}/sync/{kind}",
       "Directory sync (kind: ldap or azure): settings, options, last success and error; never "
       "the secret",
       false, in_sync([this](Req, Who, const core::Company& co, core::Source kind) {
         return ok(syncs_.status(co.id, kind));
       })},
      {"PUT",
       "/api/v1/companies/{company}/sync/{kind}",
       "Configure a directory sync: {settings, options, secret} (secret write-only; left out: "
       "kept)",
       false,
       in_sync([this, actor_of](Req req, Who c, const core::Company& co, core::Source kind) {
         const auto b = checked_body(req);
         std::optional<std::string> secret;
         if (b.value.contains("secret") && b.value["secret"].is_string()) {
           secret = b.value["secret"].get<std::string>();
         }
         syncs_.configure(co.id, kind, b.value.value("settings", json::object()),
                          b.value.value("options", json::object()), secret, actor_of(*c));
         return ok(syncs_.status(co.id, kind));
       }),
       {},
       BodySpec{Fields{{"settings", json::value_t::object},
                       {"options", json::value_t::object},
                       {"secret", json::value_t::string}},
                {}}},
      {"POST", "/api/v1/companies/{company}/sync/{kind}/test", "Connect and authenticate", false,
       in_sync([this](Req, Who, const core::Company& co, core::Source kind) {
         return ok(syncs_.test(co.id, kind));
       })},
      {"POST",
       "/api/v1/companies/{company}/sync/{kind}/search",
       "Search Now: the plan a sync would apply (nothing is written): the counts and the first "
       "100 of each list, with an id to page through them (GET .../plans/{plan}/{list}); "
       "{full}: from the whole directory, as a run with {full} applies it",
       false,
       in_sync([this](Req req, Who, const core::Company& co, core::Source kind) {
         const auto b = checked_body(req);
         auto pending = std::make_shared<PendingPlan>();
         pending->company_id = co.id;
         const auto p = syncs_.preview(
             co.id, kind, [&](const core::PlanItem& i) { pending->item(i); },
             b.value.value("full", false));
         auto j = pending->answer(kind, p.result);
         j["rejected"] = directory::rejected_json(p.rejected);
         j["info"] = p.info;
         j["plan_id"] = keep_plan(std::move(pending));
         return ok(j);
       }),
       {},
       BodySpec{Fields{{"full", json::value_t::boolean}}, {}}},
      {"POST",
       "/api/v1/companies/{company}/sync/{kind}/run",
       "Sync now: read the directory and apply ({force} past the deletion guard; {full}: the "
       "whole directory, even where changes only would do)",
       false,
       in_sync([this](Req req, Who, const core::Company& co, core::Source kind) {
         const auto b = checked_body(req);
         const auto r =
             syncs_.run(co.id, kind, b.value.value("force", false), b.value.value("full", false));
         return ok({{"created", r.result.creates},
                    {"updated", r.result.updates},
                    {"deleted", r.result.deletes},
                    {"skipped", r.result.skips},
                    {"rejected", directory::rejected_json(r.rejected)},
                    {"info", r.info}});
       }),
       {},
       BodySpec{Fields{{"force", json::value_t::boolean}, {"full", json::value_t::boolean}}, {}}},
      {"POST", "/api/v1/companies/{company}/imports",
       "Upload a CSV (the body, text/csv) and get its plan with an id: the counts and the first "
       "100 of each list (GET .../plans/{plan}/{list} pages through them); nothing is written. "
       "?delete_missing=true plans deletes of CSV users not in the file",
       false, in_company([this](Req req, Who, const core::Company& co) {
         const auto q = query_params(req.query);
         auto pending = std::make_shared<PendingPlan>();
         pending->company_id = co.id;
         pending->delete_missing = q.count("delete_missing") && q.at("delete_missing") == "true";
         InPlace body(req.body);  // an istringstream would copy the upload (64 MiB at most)
         std::istream in(&body);
         directory::csv::ImportMode mode;
         mode.delete_missing = pending->delete_missing;
         auto run = directory::csv::import_users(
             store_, co.id, in, mode,
             {[&](const core::PlanItem& i) { pending->item(i); },
              [&](const directory::csv::RowError& e) { pending->error(e); },
              {}});
         if (!run) return json_error(400, "invalid_argument", run.error().message, "file");
         pending->keep(req.body);
         pending->guard = run->result.guard;
         auto j = pending->answer(core::Source::csv, run->result);
         j["rows"] = run->rows;
         j["bad_rows"] = run->bad_rows;
         j["unknown_columns"] = run->unknown_columns;
         j["separator"] = std::string(1, run->separator);
         j["plan_id"] = keep_plan(std::move(pending));
         return ok(j, 201);
       }),
       RouteOptions{.max_body_bytes = 64u << 20}, BodySpec{.media = "text/csv"}},
      {"GET", "/api/v1/companies/{company}/plans/{plan}/{list}",
       "A page of a previewed plan (a CSV import's or Search Now's); list: creates, updates, "
       "deletes, skips or errors (bad rows); ?limit=&offset=",
       false, in_company([this](Req req, Who, const core::Company& co) {
         const auto* name =
             std::find(std::begin(kListNames), std::end(kListNames), req.params.at("list"));
         if (name == std::end(kListNames)) return not_found("list");
         const auto page = page_params(query_params(req.query));
         if (auto* e = std::get_if<HttpResponse>(&page)) return *e;
         const auto pending = pending_plan(req.params.at("plan"), co.id);
         if (!pending) return not_found("plan (expired after an hour, or applied)");
         const auto& p = std::get<Page>(page);
         const auto list = static_cast<int>(name - std::begin(kListNames));
         return page_json(pending->page(list, p.offset, p.limit), p, pending->size(list));
       })},
      {"POST",
       "/api/v1/companies/{company}/imports/{plan}/apply",
       "Apply exactly the previewed plan ({force, skip_invalid}): the file is planned again and "
       "applied only if that plan is the same; else 409, and nothing is written",
       false,
       in_company([this](Req req, Who, const core::Company& co) {
         const auto b = checked_body(req);
         const auto id = req.params.at("plan");
         const auto pending = pending_plan(id, co.id);
         if (!pending || !pending->has_file()) {
           return not_found("import plan (expired after an hour, or applied)");
         }
         const auto skip_invalid = b.value.value("skip_invalid", false);
         if (pending->lists[kErrors].size() && !skip_invalid) {
           return json_error(400, "invalid_argument",
                             std::to_string(pending->lists[kErrors].size()) +
                                 " bad row(s); nothing was imported (fix them, or skip_invalid)",
                             "skip_invalid");
         }
         // The preview's deletes were past the guard: refused at once, not after the whole
         // file was planned and written again (a million rows: six seconds of the database).
         if (pending->guard && !b.value.value("force", false)) {
           return json_error(409, "conflict", directory::guard_failure(*pending->guard).what(),
                             "force");
         }
         {
           std::lock_guard lock(plans_mutex_);
           if (pending->applying) {
             return json_error(409, "conflict", "this import is being applied already");
           }
           pending->applying = true;
         }
         struct Done {
           Api& api;
           PendingPlan& p;
           ~Done() {
             std::lock_guard lock(api.plans_mutex_);
             p.applying = false;
           }
         } done{*this, *pending};

         directory::PlanDigest digest;
         directory::csv::ImportMode mode;
         mode.apply = true;
         mode.delete_missing = pending->delete_missing;
         mode.force = b.value.value("force", false);
         mode.skip_invalid = skip_invalid;
         mode.before_commit = [&](const directory::RunResult&) {
           if (digest.value() != pending->digest.value()) {
             throw core::Failure(core::ErrorCode::conflict,
                                 "the company's users or domains changed since the preview, and "
                                 "so did the plan; nothing was imported (preview the file again)");
           }
         };
         auto in = pending->file();
         const auto run = directory::csv::import_users(
             store_, co.id, *in, mode,
             {[&](const core::PlanItem& i) { digest.item(i, json(i).dump()); },
              [&](const directory::csv::RowError& e) { digest.error(e.line, e.message); },
              {}});
         if (!run || !run->applied) {
           return json_error(409, "conflict",
                             "the file no longer plans as previewed; nothing was imported "
                             "(preview it again)");
         }
         {
           std::lock_guard lock(plans_mutex_);
           plans_.erase(id);
         }
         return ok({{"created", run->result.creates},
                    {"updated", run->result.updates},
                    {"deleted", run->result.deletes}});
       }),
       {},
       BodySpec{Fields{{"force", json::value_t::boolean}, {"skip_invalid", json::value_t::boolean}},
                {}}},
  };
  for (auto& r : more) routes_.push_back(std::move(r));
  std::size_t declared = 0;
  for (auto& r : routes_) {
    const auto it = route_queries().find(r.method + " " + r.path);
    if (it == route_queries().end()) continue;
    r.query = it->second;
    ++declared;
  }
  // Each declaration names a route: one renamed without it would refuse every parameter.
  if (declared != route_queries().size()) {
    throw std::logic_error("a route's query parameters are declared for no route");
  }
}

Api::~Api() = default;

void Api::add_route(const std::string& method, const std::string& path, const std::string& summary,
                    HttpHandler handler, std::optional<Fields> body) {
  routes_.push_back(
      {method,
       path,
       summary,
       true,
       [handler = std::move(handler)](const HttpRequest& req, const std::optional<Caller>&) {
         return handler(req);
       },
       {},
       body ? std::optional(BodySpec{.fields = std::move(*body), .handler_checks = true})
            : std::nullopt});
}

json usage_json(store::Store& store, const store::UsageFilter& filter) {
  json companies = json::array();
  for (const auto& c : store::summarize_usage(store.license_usage(filter))) {
    companies.push_back({{"company_id", c.company_id},
                         {"company", c.company},
                         {"peak_users", c.peak_users},
                         {"average_users", std::round(c.average_users * 100) / 100},
                         {"days_counted", c.days.size()},
                         {"last", c.last},
                         {"days", c.days}});
  }
  return {{"from", filter.from}, {"to", filter.to}, {"companies", std::move(companies)}};
}

std::string usage_csv(store::Store& store, const store::UsageFilter& filter) {
  std::string out =
      "day,company,users,peak_users,end_users,silent_users,functional,from_discovery\r\n";
  for (const auto& c : store::summarize_usage(store.license_usage(filter))) {
    for (const auto& d : c.days) {
      out += fmt::format("{},{},{},{},{},{},{},{}\r\n", d.day, directory::csv::csv_field(d.company),
                         d.users, d.peak_users, d.end_users, d.silent_users, d.functional,
                         d.from_discovery);
    }
  }
  return out;
}

json nodes_json(store::Store& store, core::TimePoint now) {
  const auto scheduler = store.lease_holder(store::kSchedulerLease, now);
  json items = json::array();
  for (const auto& n : store.list_nodes()) {
    items.push_back({{"id", n.id},
                     {"host", n.host},
                     {"version", n.version},
                     {"serving", n.serving},
                     {"started_at", core::format_iso8601(n.started_at)},
                     {"seen_at", core::format_iso8601(n.seen_at)},
                     {"alive", n.expires_at > now},
                     {"scheduler", scheduler && *scheduler == n.id}});
  }
  return items;
}

json Api::openapi() const {
  json paths = json::object();
  for (const auto& r : routes_) {
    json op = {{"summary", r.summary},
               {"responses",
                {{"200", {{"description", "OK"}}},
                 {"400", {{"description", "Bad request: {\"error\": {code, message, field}}"}}},
                 {"401", {{"description", "Not logged in"}}},
                 {"404", {{"description", "Not found, or not within the caller's reach"}}}}}};
    json params = json::array();
    std::size_t pos = 0;
    while ((pos = r.path.find('{', pos)) != std::string::npos) {
      const auto end = r.path.find('}', pos);
      params.push_back({{"name", r.path.substr(pos + 1, end - pos - 1)},
                        {"in", "path"},
                        {"required", true},
                        {"schema", {{"type", "string"}}}});
      pos = end;
    }
    for (const auto& [name, what] : r.query) {
      params.push_back({{"name", name},
                        {"in", "query"},
                        {"description", what},
                        {"schema", {{"type", "string"}}}});
    }
    if (!params.empty()) op["parameters"] = params;
    if (r.body) {
      op["requestBody"] = {{"required", !r.body->handler_checks},
                           {"content", {{r.body->media, {{"schema", openapi_schema(*r.body)}}}}}};
    }
    if (!r.public_route) op["security"] = json::array({{{"session", json::array()}}});
    std::string method = r.method;
    for (auto& ch : method) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    paths[r.path][method] = op;
  }
  paths["/api/v1/openapi.json"]["get"] = {{"summary", "This document"},
                                          {"responses", {{"200", {{"description", "OK"}}}}}};
  return {{"openapi", "3.0.3"},
          {"info", {{"title", "mailroster admin API"}, {"version", "1"}}},
          {"components",
           {{"securitySchemes",
             {{"session", {{"type", "apiKey"}, {"in", "cookie"}, {"name", Auth::kCookie}}}}}}},
          {"paths", paths}};
}

std::string password_link_message(const PasswordMail& mail, const std::string& to,
                                  const std::string& link, bool invitation, core::TimePoint now) {
  const auto hours = std::chrono::duration_cast<std::chrono::hours>(invitation ? mail.invitation_ttl
                                                                               : mail.reset_ttl)
                         .count();
  const auto valid = hours % 24 == 0 && hours >= 48 ? std::to_string(hours / 24) + " days"
                     : hours == 1                   ? std::string("1 hour")
                                                    : std::to_string(hours) + " hours";
  const auto hex = core::random_hex(12);
  std::string m;
  m += "From: " + mail.from + "\r\n";
  m += "To: " + to + "\r\n";
  m += std::string("Subject: ") +
       (invitation ? "Your mailroster login" : "Set a new mailroster password") + "\r\n";
  m += "Date: " + core::format_rfc5322(now) + "\r\n";
  m += "Message-ID: <password." + hex + "@" + mail.hostname + ">\r\n";
  m += "Auto-Submitted: auto-generated\r\n";
  m += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "Content-Transfer-Encoding: 8bit\r\n\r\n";
  if (invitation) {
    m += "A login to the mail gateway's administration was made for " + to +
         ".\r\n\r\nChoose its password here:\r\n\r\n";
  } else {
    m +=
        "Someone asked to set a new password for the login " + to + ".\r\n\r\nSet it here:\r\n\r\n";
  }
  m += link + "\r\n\r\nThe link works once, for " + valid + ".";
  if (!invitation) m += " If you did not ask, ignore this mail: your password stays as it is.";
  return m + "\r\n";
}

std::string password_link_url(std::string base, const std::string& token) {
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base.empty() ? "" : base + "/#/reset/" + token;
}

std::string Api::password_link_base() const {
  if (!password_mail_.send || !password_mail_.base_url) return "";
  return password_mail_.base_url();
}

bool Api::mail_password_link(const store::Login& login, bool invitation) {
  const auto base = password_link_base();
  if (base.empty()) return false;
  const auto token = auth_.issue_password_link(
      login, invitation ? password_mail_.invitation_ttl : password_mail_.reset_ttl);
  password_mail_.send(
      login.email, password_link_message(password_mail_, login.email,
                                         password_link_url(base, token), invitation, clock_.now()));
  return true;
}

void Api::install(HttpServer& server) {
  for (const auto& r : routes_) {
    // The routes run on the server's worker threads: each reads or writes the store, which an
    // import or a directory sync may hold for a long time (and LDAP/Graph calls block), and the
    // I/O thread, shared with SMTP, must never wait for that.
    auto options = r.options;
    options.blocking = true;
    server.route(
        r.method, r.path,
        [this, &r](const HttpRequest& req) {
          std::optional<Caller> caller;
          if (!r.public_route) {
            caller = auth_.caller(req);
            if (!caller) return json_error(401, "unauthenticated", "log in first");
            if (!Auth::csrf_ok(req, *caller)) {
              return json_error(403, "csrf", "missing or wrong X-CSRF-Token");
            }
          }
          // A company's routes are its administrators' (in_company): anyone else is told the
          // company is not there before anything of the request is looked at. (An operator
          // administers every company: a body it got wrong is told first, as on other routes.)
          if (caller && !caller->is_operator() && req.params.count("company") &&
              !company_for(req.params.at("company"), *caller)) {
            return not_found("company");
          }
          for (const auto& [name, value] : query_params(req.query)) {
            const auto known = [&](const auto& q) { return q.first == name; };
            // (Public routes are the login's, and those of add_route, which read their own.)
            if (!r.public_route && std::none_of(r.query.begin(), r.query.end(), known)) {
              return json_error(400, "invalid_argument", "unknown query parameter '" + name + "'",
                                name);
            }
          }
          if (r.body && r.body->checked()) {
            if (auto b = parse_body(req, r.body->fields, r.body->required); b.error) {
              return *b.error;
            }
          }
          return r.handler(req, caller);
        },
        options);
  }
  const auto doc = openapi().dump();
  server.route("GET", "/api/v1/openapi.json", [doc](const HttpRequest&) {
    return HttpResponse{200, "application/json", doc, {}};
  });
}

}  // namespace mailroster::admin
