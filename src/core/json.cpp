#include "core/json.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace mailroster::core {
namespace {
nlohmann::json optional_time(const std::optional<TimePoint>& t) {
  return t ? nlohmann::json(format_iso8601(*t)) : nlohmann::json(nullptr);
}
nlohmann::json parse_or_null(const std::string& text) {
  return text.empty() ? nlohmann::json(nullptr) : nlohmann::json::parse(text, nullptr, false);
}
}  // namespace

void to_json(nlohmann::json& j, const Company& c) {
  auto networks = nlohmann::json::array();
  for (const auto& n : c.relay_networks) networks.push_back(n.str());
  j = {{"id", c.id},
       {"name", c.name},
       {"tech_contact", c.tech_contact},
       {"admin_contact", c.admin_contact},
       {"relay_networks", networks},
       {"created_at", format_iso8601(c.created_at)}};
}

void to_json(nlohmann::json& j, const Domain& d) {
  j = {{"id", d.id},
       {"company_id", d.company_id},
       {"name", d.name},
       {"destination", d.destination.str()},
       {"created_at", format_iso8601(d.created_at)}};
}

void to_json(nlohmann::json& j, const User& u) {
  j = {{"id", u.id},
       {"company_id", u.company_id},
       {"address", u.address.str()},
       {"first_name", u.first_name},
       {"surname", u.surname},
       {"role", to_string(u.role)},
       {"source", to_string(u.source)},
       {"source_id", u.source_id},
       {"created_at", format_iso8601(u.created_at)},
       {"updated_at", format_iso8601(u.updated_at)}};
}

void to_json(nlohmann::json& j, const Alias& a) {
  j = {{"id", a.id},
       {"company_id", a.company_id},
       {"user_id", a.user_id},
       {"address", a.address.str()},
       {"created_at", format_iso8601(a.created_at)}};
}

void to_json(nlohmann::json& j, const InvalidAddress& i) {
  j = {{"id", i.id},
       {"company_id", i.company_id},
       {"address", i.address.str()},
       {"reason", i.reason},
       {"created_at", format_iso8601(i.created_at)}};
}

void to_json(nlohmann::json& j, const DiscoveredAddress& d) {
  auto hits = nlohmann::json::array();
  for (const auto& t : d.clean_inbound) hits.push_back(format_iso8601(t));
  j = {{"id", d.id},
       {"company_id", d.company_id},
       {"address", d.address.str()},
       {"first_seen", format_iso8601(d.first_seen)},
       {"clean_inbound", hits},
       {"outbound_messages", d.outbound_messages},
       {"discovered_at", optional_time(d.discovered_at)},
       {"notifications_sent", d.notifications_sent},
       {"suggested_alias_of",
        d.suggested_alias_of ? nlohmann::json(*d.suggested_alias_of) : nlohmann::json(nullptr)}};
}

void to_json(nlohmann::json& j, const DiscoverySettings& s) {
  j = {{"enabled", s.enabled},
       {"default_role", to_string(s.default_role)},
       {"inbound_threshold", s.inbound_threshold},
       {"window_days", s.window_days},
       {"notification_weeks", s.notification_weeks},
       {"expired_to_new_user", s.expired_to_new_user},
       {"auto_add_aliases", s.auto_add_aliases},
       {"auto_add_outbound", s.auto_add_outbound},
       {"report_new_users", s.report_new_users},
       {"report_new_aliases", s.report_new_aliases},
       {"report_include_admin", s.report_include_admin}};
}

namespace {

// A value as describe_change writes it: text as it is, a role by its name, nothing as "none".
std::string said_value(const std::string& key, const nlohmann::json& v) {
  if (v.is_null() || (v.is_string() && v.get_ref<const std::string&>().empty()) ||
      (v.is_array() && v.empty())) {
    return "none";
  }
  if (v.is_string()) {
    const auto& text = v.get_ref<const std::string&>();
    if (key == "role" || key == "default_role") {
      if (auto role = parse_role(text)) return std::string(role_name(*role));
    }
    return text;
  }
  if (v.is_array()) {
    std::string out;
    for (const auto& x : v) {
      if (!out.empty()) out += ", ";
      out += x.is_string() ? x.get<std::string>() : x.dump();
    }
    return out;
  }
  return v.dump();
}

// describe_change of an event whose before and after are parsed already (to_json has them).
std::string change_of(const nlohmann::json& before, const nlohmann::json& after,
                      const std::string& object) {
  static const std::set<std::string, std::less<>> kQuiet = {"id",      "company_id", "domain_id",
                                                            "user_id", "created_at", "updated_at"};
  const bool has_before = before.is_object();
  const bool has_after = after.is_object();
  if (!has_before && !has_after) return "";
  std::vector<std::string> keys;  // both sides' keys, each once, in order (by name)
  for (const auto* side : {&before, &after}) {
    if (!side->is_object()) continue;
    for (const auto& [key, value] : side->items()) {
      if (!kQuiet.contains(key) && std::find(keys.begin(), keys.end(), key) == keys.end()) {
        keys.push_back(key);
      }
    }
  }
  auto said_key = [](std::string k) {
    std::replace(k.begin(), k.end(), '_', ' ');
    return k;
  };
  auto at = [](const nlohmann::json& side, const std::string& key) {
    return side.is_object() && side.contains(key) ? side.at(key) : nlohmann::json(nullptr);
  };
  std::string out;
  auto add = [&out](const std::string& part) { out += (out.empty() ? "" : "; ") + part; };
  if (has_before && has_after) {
    for (const auto& k : keys) {
      const auto b = at(before, k);
      const auto a = at(after, k);
      if (b != a) add(said_key(k) + ": " + said_value(k, b) + " -> " + said_value(k, a));
    }
    return out.empty() ? "no change" : out;
  }
  const auto& one = has_after ? after : before;
  for (const auto& k : keys) {
    const auto v = at(one, k);
    if (v.is_null() || v == "" || (v.is_string() && v.get<std::string>() == object)) continue;
    add(said_key(k) + ": " + said_value(k, v));
  }
  if (has_after) return out;
  return out.empty() ? "removed" : "removed (" + out + ")";
}

}  // namespace

std::string describe_change(const AuditEvent& e) {
  return change_of(parse_or_null(e.before), parse_or_null(e.after), e.object);
}

void to_json(nlohmann::json& j, const AuditEvent& e) {
  auto before = parse_or_null(e.before);
  auto after = parse_or_null(e.after);
  auto change = change_of(before, after, e.object);
  j = {{"id", e.id},
       {"at", format_iso8601(e.at)},
       {"company_id", e.company_id ? nlohmann::json(*e.company_id) : nlohmann::json(nullptr)},
       {"actor", e.actor},
       {"action", e.action},
       {"object", e.object},
       {"before", std::move(before)},
       {"after", std::move(after)},
       {"change", std::move(change)}};
}

void to_json(nlohmann::json& j, const MailLogEntry& e) {
  j = {{"id", e.id},
       {"at", format_iso8601(e.at)},
       {"company_id", e.company_id},
       {"direction", e.direction},
       {"stage", e.stage},
       {"queue_id", e.queue_id},
       {"client_ip", e.client_ip},
       {"sender", e.sender},
       {"recipient", e.recipient},
       {"result", e.result},
       {"code", e.code},
       {"reply", e.reply},
       {"server", e.server},
       {"size", e.size}};
}

void to_json(nlohmann::json& j, const LicenseUsage& u) {
  j = {{"day", u.day},
       {"users", u.users},
       {"peak_users", u.peak_users},
       {"end_users", u.end_users},
       {"silent_users", u.silent_users},
       {"functional", u.functional},
       {"from_discovery", u.from_discovery},
       {"counted_at", format_iso8601(u.counted_at)}};
}

void to_json(nlohmann::json& j, const PlanItem& item) {
  j = {
      {"action", to_string(item.action)}, {"address", item.address.str()}, {"reason", item.reason}};
  if (item.line) j["line"] = item.line;
  if (item.action == PlanItem::Action::create) j["role"] = to_string(item.role);
  if (!item.changes.empty()) {
    auto changes = nlohmann::json::array();
    for (const auto& c : item.changes) {
      changes.push_back({{"field", c.field}, {"before", c.before}, {"after", c.after}});
    }
    j["changes"] = changes;
  }
  auto addresses = [](const std::vector<Address>& list) {
    auto out = nlohmann::json::array();
    for (const auto& a : list) out.push_back(a.str());
    return out;
  };
  if (!item.add_aliases.empty()) j["add_aliases"] = addresses(item.add_aliases);
  if (!item.remove_aliases.empty()) j["remove_aliases"] = addresses(item.remove_aliases);
}

}  // namespace mailroster::core
