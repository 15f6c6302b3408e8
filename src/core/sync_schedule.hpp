// Directory sync options as an administrator sets them (seeds/import-users.txt): default role,
// what to include, which actions, and how often. Scheduled runs start at the top or the bottom
// of an hour: a sync every N hours is due in the first half-hour slot at least N hours after
// the slot of its last attempt (a failed attempt waits for its next slot too, so a dead server
// is not hammered).
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/sync_planner.hpp"

namespace mailroster::core {

struct SyncConfig {
  SyncOptions options;
  std::optional<int> frequency_hours;  // 1, 3, 6, 12 or 24; nullopt: manual only
};

nlohmann::json to_json_value(const SyncConfig& c);
// Strict: unknown fields, wrong types and bad values fail naming the field. Fields left out
// keep `base`'s values.
Result<SyncConfig> sync_config_from_json(const nlohmann::json& j, const SyncConfig& base = {});

bool valid_frequency(int hours);

// The start of the half-hour slot holding t.
TimePoint slot_of(TimePoint t);
bool sync_due(std::optional<int> frequency_hours, std::optional<TimePoint> last_attempt,
              TimePoint now);

}  // namespace mailroster::core
