#include "core/first_claims.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailroster::core {
namespace {

TEST(FirstClaims, TheFirstHolderKeepsAKey) {
  FirstClaims claims;
  EXPECT_EQ(claims.holder("alice@acme.example"), std::nullopt);
  EXPECT_EQ(claims.claim("alice@acme.example", 3), 3u);
  EXPECT_EQ(claims.holder("alice@acme.example"), 3u);
  EXPECT_EQ(claims.claim("alice@acme.example", 7), 3u);  // later claimers are told the first
  EXPECT_EQ(claims.claim("alice@acme.example", 3), 3u);  // the holder claiming again: itself
  EXPECT_EQ(claims.holder("bob@acme.example"), std::nullopt);
}

TEST(FirstClaims, HoldsManyKeysApart) {
  FirstClaims claims;
  for (std::size_t i = 0; i < 100000; ++i) claims.claim("user" + std::to_string(i) + "@x", i);
  for (std::size_t i = 0; i < 100000; ++i) {
    ASSERT_EQ(claims.holder("user" + std::to_string(i) + "@x"), i);
    ASSERT_EQ(claims.holder("user" + std::to_string(i) + "@y"), std::nullopt);
  }
}

}  // namespace
}  // namespace mailroster::core
