#include "core/sync_schedule.hpp"

#include <gtest/gtest.h>

namespace mailroster::core {
namespace {

TimePoint at(const char* iso) { return parse_iso8601(iso).value(); }

TEST(SyncSchedule, RunsAtTheTopOrBottomOfTheHourAfterItsFrequency) {
  EXPECT_FALSE(sync_due(std::nullopt, std::nullopt, at("2026-11-24T10:00:00Z")));  // manual
  EXPECT_TRUE(sync_due(1, std::nullopt, at("2026-11-24T10:07:00Z")));              // never ran: now
  // Last attempt at 10:07 (slot 10:00): an hourly sync is due from the 11:00 slot.
  const auto last = at("2026-11-24T10:07:00Z");
  EXPECT_FALSE(sync_due(1, last, at("2026-11-24T10:59:59Z")));
  EXPECT_TRUE(sync_due(1, last, at("2026-11-24T11:00:00Z")));
  // Last at 10:31 (slot 10:30): every 3 hours -> 13:30.
  EXPECT_FALSE(sync_due(3, at("2026-11-24T10:31:00Z"), at("2026-11-24T13:29:00Z")));
  EXPECT_TRUE(sync_due(3, at("2026-11-24T10:31:00Z"), at("2026-11-24T13:30:00Z")));
  EXPECT_TRUE(sync_due(24, last, at("2026-11-25T10:00:00Z")));
  EXPECT_FALSE(sync_due(24, last, at("2026-11-25T09:30:00Z")));
  EXPECT_EQ(slot_of(at("2026-11-24T10:44:10Z")), at("2026-11-24T10:30:00Z"));
}

TEST(SyncSchedule, OptionsAreStrictAndRoundTrip) {
  auto c = sync_config_from_json(
      {{"default_role", "end_user"}, {"include_disabled", true}, {"frequency_hours", 6}});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->options.default_role, Role::end_user);
  EXPECT_TRUE(c->options.include_disabled);
  EXPECT_EQ(c->frequency_hours, 6);
  const auto back = sync_config_from_json(to_json_value(*c)).value();
  EXPECT_EQ(to_json_value(back), to_json_value(*c));
  // Partial updates keep the rest.
  EXPECT_EQ(sync_config_from_json({{"create", false}}, *c)->frequency_hours, 6);
  for (const auto& bad :
       {nlohmann::json{{"frequency_hours", 2}}, nlohmann::json{{"default_role", "functional"}},
        nlohmann::json{{"include_hidden", "yes"}}, nlohmann::json{{"max_delete_share", 2}},
        nlohmann::json{{"colour", "blue"}}}) {
    const auto r = sync_config_from_json(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().field, bad.begin().key());
  }
}

}  // namespace
}  // namespace mailroster::core
