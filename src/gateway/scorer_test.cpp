#include "gateway/scorer.hpp"

#include <gtest/gtest.h>

namespace mailroster::gateway {
namespace {

const std::string kClean =
    "From: Bob <bob@example.org>\r\nTo: alice@acme.example\r\nDate: Tue, 24 Nov 2026 10:00:00 "
    "+0000\r\nMessage-ID: <1@example.org>\r\nSubject: hi\r\n\r\nHello\r\n";

TEST(BuiltinScore, CleanMessageIsClean) {
  auto s = builtin_score(kClean, 5);
  EXPECT_FALSE(s.spam);
  EXPECT_EQ(s.value, 0);
  EXPECT_TRUE(s.reasons.empty());
}

TEST(BuiltinScore, GtubeIsSpam) {
  auto s = builtin_score(
      kClean + "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n", 5);
  EXPECT_TRUE(s.spam);
  EXPECT_EQ(s.reasons, std::vector<std::string>{"GTUBE"});
}

TEST(BuiltinScore, HeaderChecksAddUp) {
  auto bare = builtin_score("Subject: x\r\n\r\nbody\r\n", 5);
  EXPECT_TRUE(bare.spam);  // no From (3) + no Date (1) + no Message-ID (1)
  EXPECT_EQ(bare.value, 5);
  auto two_from = builtin_score(
      "From: a@x.example\r\nfrom: b@x.example\r\nDate: x\r\nMessage-ID: <y>\r\n\r\n", 5);
  EXPECT_EQ(two_from.reasons, std::vector<std::string>{"MULTIPLE_FROM"});
  auto folded = builtin_score(
      "Subject: a\r\n From: not a header\r\nFrom: a@x.example\r\nDate: x\r\nMessage-ID: "
      "<y>\r\n\r\n",
      5);
  EXPECT_EQ(folded.value, 0);
  auto no_separator = builtin_score("From: a@x.example\r\nDate: x\r\nMessage-ID: <y>\r\n", 5);
  EXPECT_EQ(no_separator.reasons, std::vector<std::string>{"NO_HEADER_BODY_SEPARATOR"});
}

}  // namespace
}  // namespace mailroster::gateway
