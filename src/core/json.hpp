// JSON views of the model, shared by the CLI's --json output, the audit trail's before/after
// and the HTTP API, so an object looks the same everywhere.
#pragma once

#include <nlohmann/json.hpp>

#include "core/model.hpp"
#include "core/sync_planner.hpp"

namespace mailroster::core {

void to_json(nlohmann::json& j, const Company& c);
void to_json(nlohmann::json& j, const Domain& d);
void to_json(nlohmann::json& j, const User& u);
void to_json(nlohmann::json& j, const Alias& a);
void to_json(nlohmann::json& j, const InvalidAddress& i);
void to_json(nlohmann::json& j, const DiscoveredAddress& d);
void to_json(nlohmann::json& j, const DiscoverySettings& s);
void to_json(nlohmann::json& j, const AuditEvent& e);
void to_json(nlohmann::json& j, const MailLogEntry& e);
void to_json(nlohmann::json& j, const LicenseUsage& u);
void to_json(nlohmann::json& j, const PlanItem& item);

// What an audit event changed, in words, from its before and after: "role: end user -> silent
// user; surname: none -> Smith" for an update; what was made for an addition ("role: end user;
// source: csv"); "removed (...)" for a removal. Ids and times are left out (the event has its
// own), and so is the object's own address where it is the event's object. "" when the event
// has neither side. The CLI's audit list, the API's "change" and the web UI's Audit page.
std::string describe_change(const AuditEvent& e);

}  // namespace mailroster::core
