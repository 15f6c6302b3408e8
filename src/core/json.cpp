#include "core/json.hpp"

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

void to_json(nlohmann::json& j, const AuditEvent& e) {
  j = {{"id", e.id},
       {"at", format_iso8601(e.at)},
       {"company_id", e.company_id ? nlohmann::json(*e.company_id) : nlohmann::json(nullptr)},
       {"actor", e.actor},
       {"action", e.action},
       {"object", e.object},
       {"before", parse_or_null(e.before)},
       {"after", parse_or_null(e.after)}};
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
