#include "admin/auth.hpp"

#include <gtest/gtest.h>

#include "store/sqlite/sqlite_store.hpp"
#include "test_support.hpp"

namespace mailroster::admin {
namespace {

int status_of(const std::variant<Auth::Granted, HttpResponse>& answer) {
  return std::holds_alternative<HttpResponse>(answer) ? std::get<HttpResponse>(answer).status : 200;
}

// Failed logins count per client network: a guesser moving through the addresses of its IPv6
// /64, trying a new email each time, meets one limit; the next /64, and an IPv4 client, are
// someone else. With ipv6_prefix 128 each address counts alone.
TEST(Auth, FailedLoginsCountPerClientNetwork) {
  testing::TempDir dir;
  core::ManualClock clock(
      core::TimePoint{std::chrono::sys_days{std::chrono::year{2026} / std::chrono::December / 7}});
  store::sqlite::SqliteStore store(dir.file("s.db"), clock);
  Auth auth(store, clock, {.max_failures = 3});
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(status_of(auth.login("guess" + std::to_string(i) + "@example.com", "wrong password",
                                   "2001:db8:1:2::" + std::to_string(i))),
              401)
        << i;
  }
  EXPECT_EQ(status_of(auth.login("guess4@example.com", "wrong password", "2001:db8:1:2:ffff::9")),
            429);
  EXPECT_EQ(status_of(auth.login("guess5@example.com", "wrong password", "2001:db8:1:3::1")), 401);
  EXPECT_EQ(status_of(auth.login("guess6@example.com", "wrong password", "192.0.2.7")), 401);

  auth.reconfigure_ipv6_prefix(128);  // each address counts alone from now on
  EXPECT_EQ(status_of(auth.login("guess7@example.com", "wrong password", "2001:db8:1:2::1")), 401);
  EXPECT_EQ(status_of(auth.login("guess8@example.com", "wrong password", "2001:db8:1:2::1")), 401);
  EXPECT_EQ(status_of(auth.login("guess9@example.com", "wrong password", "2001:db8:1:2::1")), 401);
  EXPECT_EQ(status_of(auth.login("guess10@example.com", "wrong password", "2001:db8:1:2::1")), 429);
  EXPECT_EQ(status_of(auth.login("guess11@example.com", "wrong password", "2001:db8:1:2::2")), 401);
}

}  // namespace
}  // namespace mailroster::admin
