#include "gateway/mail_activity.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace mailroster::gateway {
namespace {

using namespace std::chrono;
using Ids = std::vector<core::Id>;

struct Written {
  Ids users;
  core::TimePoint at;
};

TEST(MailActivity, EachUserOnceAnHourAndTheUsersWaitWhileTheStoreFails) {
  core::ManualClock clock(core::TimePoint{sys_days{2026y / December / 7} + hours{10}});
  MailActivity activity(clock);
  std::vector<Written> writes;
  const auto write = [&](const Ids& users, core::TimePoint at) { writes.push_back({users, at}); };
  EXPECT_EQ(activity.flush(write), 0u);
  EXPECT_TRUE(writes.empty()) << "nothing seen: no write";
  activity.seen(1);
  activity.seen(2);
  activity.seen(1);  // the same user's second message
  EXPECT_EQ(activity.pending(), 2u);
  clock.advance(seconds{1});
  EXPECT_EQ(activity.flush(write), 2u);
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].users, (Ids{1, 2}));
  EXPECT_EQ(writes[0].at, clock.now());
  clock.advance(minutes{40});
  activity.seen(1);  // written this hour already
  activity.seen(3);
  EXPECT_EQ(activity.pending(), 1u);
  // The store cannot take them: they wait, and go with the next write.
  const auto failing = [](const Ids&, core::TimePoint) { throw std::runtime_error("disk full"); };
  EXPECT_THROW(activity.flush(failing), std::runtime_error);
  EXPECT_EQ(activity.pending(), 1u);
  clock.advance(minutes{30});  // the next hour: user 1 again
  activity.seen(1);
  EXPECT_EQ(activity.flush(write), 2u);
  EXPECT_EQ(writes.back().users, (Ids{3, 1}));
  EXPECT_EQ(activity.pending(), 0u);
}

}  // namespace
}  // namespace mailroster::gateway
