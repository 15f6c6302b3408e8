#include "directory/ldap/ldap_directory.hpp"

namespace mailroster::directory::ldap {

using nlohmann::json;

core::Result<json> LdapDirectory::check_settings(const json& settings) const {
  auto s = settings_from_json(settings);
  if (!s) return s.error();
  return json(*s);
}

core::Result<json> LdapDirectory::test(const json& settings, const std::string& secret) {
  auto s = settings_from_json(settings);
  if (!s) return s.error();
  auto info = test_connection(*s, secret);
  if (!info) return info.error();
  json out = {{"server", info->vendor.empty() ? "LDAPv3 server" : info->vendor},
              {"address", info->address},
              {"incremental", info->state.highest_usn.has_value()}};
  if (info->state.highest_usn) out["highest_committed_usn"] = *info->state.highest_usn;
  return out;
}

core::Result<SourceRead> LdapDirectory::read(const json& settings, const std::string& secret,
                                             const std::string& state,
                                             const core::EntrySink& on_entries) {
  auto s = settings_from_json(settings);
  if (!s) return s.error();
  std::optional<ServerState> last;
  if (const auto j = json::parse(state, nullptr, false); j.is_object()) {
    ServerState st;
    st.invocation_id = j.value("invocation_id", "");
    if (j.contains("highest_usn") && j["highest_usn"].is_number_integer()) {
      st.highest_usn = j["highest_usn"].get<std::int64_t>();
    }
    last = st;
  }
  auto result = read_directory(*s, secret, last, on_entries, on_page_);
  if (!result) return result.error();
  auto r = std::move(result).value();
  SourceRead out;
  out.snapshot = std::move(r.snapshot);
  for (const auto& x : r.rejected) out.rejected.push_back({x.dn, x.reason});
  json st = {{"invocation_id", r.server.invocation_id}};
  if (r.server.highest_usn) st["highest_usn"] = *r.server.highest_usn;
  out.state = r.server.highest_usn ? st.dump() : std::string();
  out.info = {{"pages", r.pages},
              {"groups", r.groups},
              {"incremental", r.incremental},
              {"address", r.address}};
  return out;
}

}  // namespace mailroster::directory::ldap
