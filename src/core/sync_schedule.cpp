#include "core/sync_schedule.hpp"

namespace mailroster::core {

nlohmann::json to_json_value(const SyncConfig& c) {
  const auto& o = c.options;
  return {{"default_role", to_string(o.default_role)},
          {"include_active", o.include_active},
          {"include_disabled", o.include_disabled},
          {"include_functional", o.include_functional},
          {"include_security_groups", o.include_security_groups},
          {"include_hidden", o.include_hidden},
          {"create", o.create},
          {"update", o.update},
          {"delete_removed", o.delete_removed},
          {"max_delete_count", o.max_delete_count},
          {"max_delete_share", o.max_delete_share},
          {"frequency_hours",
           c.frequency_hours ? nlohmann::json(*c.frequency_hours) : nlohmann::json(nullptr)}};
}

bool valid_frequency(int h) { return h == 1 || h == 3 || h == 6 || h == 12 || h == 24; }

Result<SyncConfig> sync_config_from_json(const nlohmann::json& j, const SyncConfig& base) {
  if (!j.is_object()) return invalid("sync options must be an object");
  SyncConfig c = base;
  auto& o = c.options;
  for (const auto& [key, v] : j.items()) {
    auto bad = [&](const std::string& why) { return invalid("'" + key + "' " + why, key); };
    bool* flag = key == "include_active"            ? &o.include_active
                 : key == "include_disabled"        ? &o.include_disabled
                 : key == "include_functional"      ? &o.include_functional
                 : key == "include_security_groups" ? &o.include_security_groups
                 : key == "include_hidden"          ? &o.include_hidden
                 : key == "create"                  ? &o.create
                 : key == "update"                  ? &o.update
                 : key == "delete_removed"          ? &o.delete_removed
                                                    : nullptr;
    if (flag) {
      if (!v.is_boolean()) return bad("must be true or false");
      *flag = v.get<bool>();
    } else if (key == "default_role") {
      const auto role = v.is_string() ? parse_role(v.get<std::string>()) : parse_role("");
      if (!role || *role == Role::functional) return bad("must be end_user or silent_user");
      o.default_role = *role;
    } else if (key == "max_delete_count") {
      if (!v.is_number_integer() || v.get<long long>() < 0) return bad("must be a whole number");
      o.max_delete_count = v.get<std::size_t>();
    } else if (key == "max_delete_share") {
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1) {
        return bad("must be a share between 0 and 1");
      }
      o.max_delete_share = v.get<double>();
    } else if (key == "frequency_hours") {
      if (v.is_null()) {
        c.frequency_hours.reset();
      } else if (!v.is_number_integer() || !valid_frequency(v.get<int>())) {
        return bad("must be 1, 3, 6, 12 or 24 (or null: manual)");
      } else {
        c.frequency_hours = v.get<int>();
      }
    } else {
      return bad("is not a sync option");
    }
  }
  return c;
}

TimePoint slot_of(TimePoint t) {
  const auto s = t.time_since_epoch().count();
  return TimePoint{std::chrono::seconds{s - ((s % 1800) + 1800) % 1800}};
}

bool sync_due(std::optional<int> frequency_hours, std::optional<TimePoint> last_attempt,
              TimePoint now) {
  if (!frequency_hours) return false;
  if (!last_attempt) return true;
  return slot_of(now) >= slot_of(*last_attempt) + std::chrono::hours{*frequency_hours};
}

}  // namespace mailroster::core
