#include "directory/graph/graph_directory.hpp"

#include <algorithm>
#include <cctype>
#include <thread>
#include <utility>

#include "directory/proxy_addresses.hpp"

namespace mailroster::directory::graph {

using nlohmann::json;

namespace {

const char* kUserFields =
    "id,accountEnabled,mail,userPrincipalName,givenName,surname,proxyAddresses,userType";
const char* kGroupFields = "id,displayName,mail,mailEnabled,securityEnabled,proxyAddresses";

std::string text(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

std::vector<std::string> strings(const json& j, const char* key) {
  std::vector<std::string> out;
  if (j.contains(key) && j[key].is_array()) {
    for (const auto& v : j[key]) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

// The address, aliases and names common to users and groups.
core::Result<core::DirectoryEntry> mail_entry(const json& obj) {
  core::DirectoryEntry e;
  e.source_id = text(obj, "id");
  if (e.source_id.empty()) return core::invalid("no id");
  // Graph's object ids are GUIDs; an id goes into a request's path (a group's members), so
  // one with a character that would change the request ('/', '?', '%', ...) is not taken.
  if (e.source_id.size() > 64 ||
      !std::all_of(e.source_id.begin(), e.source_id.end(),
                   [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; })) {
    return core::invalid("its id is not a Graph object id");
  }
  auto addresses = mail_addresses(strings(obj, "proxyAddresses"), text(obj, "mail"));
  if (!addresses) return addresses.error();
  e.address = addresses->primary;
  e.aliases = addresses->aliases;
  return e;
}

bool delta_rejected(const GraphClient::Failure& f) {
  const auto code = core::ascii_lower(f.code);
  return f.status == 410 || code == "syncstatenotfound" || code == "resyncrequired" ||
         code == "badrequest_expiredtoken";
}

core::Error failure(const GraphClient::Failure& f) {
  return core::Error{core::ErrorCode::unavailable, f.message, ""};
}

}  // namespace

core::Result<core::DirectoryEntry> user_entry(const json& u) {
  if (core::ascii_lower(text(u, "userType")) == "guest") {
    return core::invalid("guest account (an external person)");
  }
  auto e = mail_entry(u);
  if (!e) return e;
  auto entry = std::move(e).value();
  entry.first_name = text(u, "givenName");
  entry.surname = text(u, "surname");
  if (u.contains("accountEnabled") && u["accountEnabled"].is_boolean()) {
    entry.disabled = !u["accountEnabled"].get<bool>();
  }
  return entry;
}

GraphDirectory::GraphDirectory(const core::Clock& clock, GraphClient::Sleep sleep)
    : clock_(clock), sleep_(std::move(sleep)) {
  if (!sleep_) sleep_ = [](std::chrono::seconds s) { std::this_thread::sleep_for(s); };
}

core::Result<json> GraphDirectory::check_settings(const json& settings) const {
  auto s = settings_from_json(settings);
  if (!s) return s.error();
  return json(*s);
}

core::Result<json> GraphDirectory::test(const json& settings, const std::string& secret) {
  auto s = settings_from_json(settings);
  if (!s) return s.error();
  GraphClient client(*s, secret, tokens_, clock_, sleep_);
  auto r = client.get("/v1.0/users?$select=id&$top=1");
  if (auto* f = std::get_if<GraphClient::Failure>(&r)) return failure(*f);
  return json{{"server", "Microsoft Graph"}, {"graph_url", s->graph_url}};
}

// Users come a page at a time: to on_entries when it is set (the sync writes each page while
// the next is fetched, and a tenant of any size is read in bounded memory), else into the
// snapshot. Groups, fewer, come in the snapshot at the end, as LDAP's do.
core::Result<SourceRead> GraphDirectory::read(const json& settings, const std::string& secret,
                                              const std::string& state,
                                              const core::EntrySink& on_entries) {
  auto parsed = settings_from_json(settings);
  if (!parsed) return parsed.error();
  const auto s = *parsed;
  GraphClient client(s, secret, tokens_, clock_, sleep_);
  SourceRead out;
  out.snapshot.source = core::Source::azure;
  const auto top = "&$top=" + std::to_string(s.page_size);
  bool delta_reset = false;

  // A page of users: into the snapshot, then handed on when there is a sink (false: stop).
  auto add_users = [&](const std::vector<json>& users) {
    for (const auto& u : users) {
      if (u.contains("@removed")) {
        out.snapshot.removed.push_back(text(u, "id"));
        continue;
      }
      auto e = user_entry(u);
      if (!e) {
        const auto upn = text(u, "userPrincipalName");
        out.rejected.push_back({upn.empty() ? text(u, "id") : upn, e.error().message});
      } else {
        out.snapshot.entries.push_back(std::move(e).value());
      }
    }
    if (!on_entries || out.snapshot.entries.empty()) return true;
    return on_entries(std::exchange(out.snapshot.entries, {}));
  };

  // A delta link the answer gave, when it is one mailroster follows.
  auto delta_link = [&](const json& answer) -> core::Result<std::string> {
    if (!answer.contains("@odata.deltaLink") || !answer["@odata.deltaLink"].is_string()) {
      return core::Error{core::ErrorCode::unavailable, "Graph gave no deltaLink", ""};
    }
    auto link = answer["@odata.deltaLink"].get<std::string>();
    if (!client.on_graph(link)) {
      return core::Error{core::ErrorCode::unavailable,
                         "Graph gave a deltaLink outside graph_url: not kept, not followed", ""};
    }
    return link;
  };

  // incremental: what changed since the stored delta link (one for another server, as after
  // graph_url was changed, means a full run)
  if (!state.empty() && !client.on_graph(state)) delta_reset = true;
  if (!state.empty() && !delta_reset) {
    auto r = client.for_each_page(state, add_users);
    if (auto* pages = std::get_if<GraphClient::Pages>(&r)) {
      auto link = delta_link(pages->last);
      if (!link) return link.error();
      out.state = std::move(link).value();
      out.snapshot.complete = false;
      out.info = {{"incremental", true}, {"pages", pages->pages}};
      return out;
    }
    const auto& f = std::get<GraphClient::Failure>(r);
    if (!delta_rejected(f)) return failure(f);
    delta_reset = true;  // the link expired: a full run
  }

  // Full run. The delta link for "now" first: changes made while we read come next time.
  auto latest =
      client.get(std::string("/v1.0/users/delta?$select=") + kUserFields + "&$deltatoken=latest");
  if (auto* f = std::get_if<GraphClient::Failure>(&latest)) return failure(*f);
  auto link = delta_link(std::get<json>(latest));
  if (!link) return link.error();
  out.state = std::move(link).value();

  auto users =
      client.for_each_page(std::string("/v1.0/users?$select=") + kUserFields + top, add_users);
  if (auto* f = std::get_if<GraphClient::Failure>(&users)) return failure(*f);
  const auto& user_pages = std::get<GraphClient::Pages>(users);

  auto groups = client.get_all(std::string("/v1.0/groups?$select=") + kGroupFields + top);
  if (auto* f = std::get_if<GraphClient::Failure>(&groups)) return failure(*f);
  std::size_t group_count = 0;
  for (const auto& g : std::get<GraphClient::Pages>(groups).items) {
    ++group_count;
    if (!g.contains("mailEnabled") || !g["mailEnabled"].is_boolean() ||
        !g["mailEnabled"].get<bool>()) {
      continue;  // not an address
    }
    auto e = mail_entry(g);
    if (!e) {
      out.rejected.push_back({text(g, "displayName"), e.error().message});
      continue;
    }
    auto entry = std::move(e).value();
    entry.first_name = text(g, "displayName");
    entry.security_group = g.contains("securityEnabled") && g["securityEnabled"].is_boolean() &&
                           g["securityEnabled"].get<bool>();
    entry.functional = !entry.security_group;  // a distribution list: an address, no person
    auto members =
        client.get_all("/v1.0/groups/" + entry.source_id + "/transitiveMembers?$select=id" + top);
    if (auto* f = std::get_if<GraphClient::Failure>(&members)) return failure(*f);
    entry.members = std::get<GraphClient::Pages>(members).items.size();
    out.snapshot.entries.push_back(std::move(entry));
  }
  out.info = {{"incremental", false},
              {"delta_reset", delta_reset},
              {"pages", user_pages.pages},
              {"groups", group_count}};
  return out;
}

}  // namespace mailroster::directory::graph
