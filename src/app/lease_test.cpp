#include "app/lease.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <functional>
#include <utility>

#include <sys/wait.h>
#include <unistd.h>

#include "core/split.hpp"
#include "store/migrations/migration.hpp"
#include "store/sqlite/sqlite_db.hpp"
#include "test_support.hpp"

namespace mailroster::app {
namespace {

using std::chrono::minutes;

// The pid of a process of this machine that has ended (and been reaped).
pid_t ended_pid() {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  int status = 0;
  EXPECT_EQ(waitpid(child, &status, 0), child);
  return child;
}

// Our own holder name with another pid in it.
std::string holder_with_pid(pid_t pid) {
  const auto id = lease_holder_id();  // split() points into it
  const auto parts = core::split(id, ':');
  return std::string(parts[0]) + ":" + std::to_string(pid) + ":0badcafe:" + std::string(parts[3]);
}

TEST(Lease, TheHolderNameSaysWhereItsPidMeansThisProcess) {
  const auto id = lease_holder_id();
  const auto parts = core::split(id, ':');
  ASSERT_EQ(parts.size(), 4u) << id;
  EXPECT_EQ(parts[1], std::to_string(getpid()));
  EXPECT_EQ(parts[2].size(), 8u);
  EXPECT_NE(parts[3].find('-'), std::string_view::npos) << id;  // boot id - PID namespace
  EXPECT_NE(lease_holder_id(), id);                             // each one its own
}

TEST(Lease, OnlyAnEndedProcessOfThisMachineIsGone) {
  EXPECT_TRUE(lease_holder_gone(holder_with_pid(ended_pid())));
  EXPECT_FALSE(lease_holder_gone(lease_holder_id()));           // this process
  EXPECT_FALSE(lease_holder_gone(holder_with_pid(getppid())));  // a running one
  EXPECT_FALSE(lease_holder_gone(holder_with_pid(1)));
  const auto dead = std::to_string(ended_pid());
  // Elsewhere (another boot or PID namespace), or a name that does not say: not known.
  EXPECT_FALSE(lease_holder_gone("gw1:" + dead + ":0badcafe:ffffffff-4026531836"));
  EXPECT_FALSE(lease_holder_gone("gw1:" + dead + ":0badcafe"));  // before places were named
  const auto id = lease_holder_id();
  const std::string here(core::split(id, ':')[3]);
  for (const auto& bad :
       {"gw1:x:0badcafe:" + here, "gw1::0badcafe:" + here, "gw1:" + dead + "x:0badcafe:" + here,
        std::string("node-a"), std::string()}) {
    EXPECT_FALSE(lease_holder_gone(bad)) << bad;
  }
}

TEST(Lease, TakenOverFromAnEndedHolderOnlyAtOnce) {
  testing::TestDatabase db(store::sql::Dialect::sqlite);
  core::SystemClock clock;
  auto store = db.open(clock);
  const auto now = clock.now();

  // A live holder keeps it.
  const auto live = holder_with_pid(getppid());
  ASSERT_TRUE(store->hold_lease(kSchedulerLease, live, now, minutes(30)));
  const auto me = lease_holder_id();
  auto taken = take_lease(*store, kSchedulerLease, me, now, minutes(30));
  EXPECT_FALSE(taken.held);
  EXPECT_FALSE(taken.from);
  store->release_lease(kSchedulerLease, live);

  // One that ended (killed, its lease never given up) loses it at once.
  const auto dead = holder_with_pid(ended_pid());
  ASSERT_TRUE(store->hold_lease(kSchedulerLease, dead, now, minutes(30)));
  taken = take_lease(*store, kSchedulerLease, me, now + minutes(1), minutes(30));
  EXPECT_TRUE(taken.held);
  EXPECT_EQ(taken.from, dead);
  EXPECT_EQ(store->lease_holder(kSchedulerLease, now + minutes(1)), me);
  // Renewed as ever.
  taken = take_lease(*store, kSchedulerLease, me, now + minutes(2), minutes(30));
  EXPECT_TRUE(taken.held);
  EXPECT_FALSE(taken.from);
}

// A store where something can happen just before lease_holder() answers: another thread's
// take-over, in the gap between its caller's failed hold_lease() and that question.
class GapStore final : public store::sql::SqlStore {
 public:
  GapStore(const std::string& path, const core::Clock& clock)
      : SqlStore(store::sql::Backend{.dialect = store::sql::Dialect::sqlite,
                                     .connect = [path]() -> std::unique_ptr<store::sql::Database> {
                                       return std::make_unique<store::sqlite::Database>(path);
                                     },
                                     .migrations = store::sqlite_migrations()},
                 clock) {}
  std::function<void()> in_the_gap;
  std::optional<std::string> lease_holder(const std::string& name, core::TimePoint now) override {
    if (auto f = std::exchange(in_the_gap, nullptr)) f();
    return SqlStore::lease_holder(name, now);
  }
};

// serve asks from two threads (the sync scheduler's and the maintenance's), which may both
// find the ended holder: the one that finds the lease taken over by the other, in between,
// holds it too, and does not say another node does.
TEST(Lease, AThreadThatFindsItTakenOverByItsTwinHoldsIt) {
  testing::TempDir dir;
  core::SystemClock clock;
  GapStore store(dir.file("gap.db"), clock);
  const auto now = clock.now();
  const auto me = lease_holder_id();
  const auto dead = holder_with_pid(ended_pid());
  ASSERT_TRUE(store.hold_lease(kSchedulerLease, dead, now, minutes(30)));
  LeaseTaken twin;
  store.in_the_gap = [&] { twin = take_lease(store, kSchedulerLease, me, now, minutes(30)); };
  const auto taken = take_lease(store, kSchedulerLease, me, now, minutes(30));
  EXPECT_TRUE(twin.held);
  EXPECT_EQ(twin.from, dead);
  EXPECT_TRUE(taken.held);
  EXPECT_FALSE(taken.from);
  EXPECT_EQ(store.lease_holder(kSchedulerLease, now), me);
}

}  // namespace
}  // namespace mailroster::app
