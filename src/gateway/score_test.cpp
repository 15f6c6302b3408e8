#include "gateway/score.hpp"

#include <gtest/gtest.h>

namespace mailroster::gateway {
namespace {

const std::string kClean =
    "From: Bob <bob@example.org>\r\nTo: alice@acme.example\r\nDate: Tue, 24 Nov 2026 10:00:00 "
    "+0000\r\nMessage-ID: <1@example.org>\r\nSubject: hi\r\n\r\nHello\r\n";

TEST(BuiltinScore, CleanMessageIsClean) {
  auto s = builtin_score(kClean, 5);
  EXPECT_EQ(s.verdict, Verdict::clean);
  EXPECT_EQ(s.value, 0);
  EXPECT_TRUE(s.reasons.empty());
}

TEST(BuiltinScore, GtubeIsSpam) {
  auto s = builtin_score(
      kClean + "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n", 5);
  EXPECT_EQ(s.verdict, Verdict::spam);
  EXPECT_EQ(s.reasons, std::vector<std::string>{"GTUBE"});
}

TEST(BuiltinScore, HeaderChecksAddUp) {
  auto bare = builtin_score("Subject: x\r\n\r\nbody\r\n", 5);
  EXPECT_EQ(bare.verdict, Verdict::spam);  // no From (3) + no Date (1) + no Message-ID (1)
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

TEST(Refusal, FollowsTheVerdict) {
  Score s;
  EXPECT_FALSE(refusal(s));  // clean: relayed
  s.verdict = Verdict::marked;
  EXPECT_FALSE(refusal(s));  // relayed with its headers
  s.verdict = Verdict::spam;
  s.reasons = {"GTUBE", "MISSING_FROM"};
  EXPECT_EQ(refusal(s)->code, 550);
  EXPECT_EQ(refusal(s)->text, "5.7.1 message content rejected as spam (GTUBE,MISSING_FROM)");
  s.reply_text = "Gtube pattern";
  EXPECT_EQ(refusal(s)->text, "5.7.1 message content rejected as spam: Gtube pattern");
  s.verdict = Verdict::deferred;
  EXPECT_EQ(refusal(s)->code, 451);
  EXPECT_EQ(refusal(s)->text, "4.7.1 Gtube pattern");
  s.reply_text.clear();
  EXPECT_EQ(refusal(s)->text, "4.7.1 message deferred by the content filter; try again later");
  s.unavailable = true;
  EXPECT_EQ(refusal(s)->text.substr(0, 6), "4.3.0 ");
}

TEST(MarkingHeaders, OnlyForMarkedMessagesAndFolded) {
  Score s{.value = 7, .threshold = 15, .verdict = Verdict::clean, .reasons = {"A_SYMBOL", "B"}};
  EXPECT_EQ(marking_headers(s), "");
  s.verdict = Verdict::marked;
  EXPECT_EQ(marking_headers(s), "X-Spam: Yes\r\nX-Spam-Score: 7.00 / 15.00 (A_SYMBOL,\r\n\tB)\r\n");
  s.reasons.clear();
  EXPECT_EQ(marking_headers(s), "X-Spam: Yes\r\nX-Spam-Score: 7.00 / 15.00\r\n");
}

// Answers as rspamd 3.4 gives them (captured from `rspamd` with the tests' rules).
TEST(RspamdScore, ActionsMapToVerdicts) {
  const auto clean =
      rspamd_score(R"({"is_skipped":false,"score":1.5,"required_score":15.0,"action":"no action",)"
                   R"("symbols":{"A":{"name":"A","score":1.5}},"messages":{}})");
  ASSERT_TRUE(clean.ok());
  EXPECT_EQ(clean->verdict, Verdict::clean);
  EXPECT_EQ(clean->value, 1.5);
  EXPECT_EQ(clean->threshold, 15.0);

  const auto marked =
      rspamd_score(R"({"score":7.0,"required_score":15.0,"action":"add header","symbols":{)"
                   R"("LOW":{"name":"LOW","score":1.0},"NEG":{"name":"NEG","score":-2.0},)"
                   R"("HIGH":{"name":"HIGH","score":8.0}}})");
  ASSERT_TRUE(marked.ok());
  EXPECT_EQ(marked->verdict, Verdict::marked);
  // Heaviest first; symbols that took from the score are not reasons.
  EXPECT_EQ(marked->reasons, (std::vector<std::string>{"HIGH", "LOW"}));
  EXPECT_EQ(rspamd_score(R"({"score":9,"action":"rewrite subject"})")->verdict, Verdict::marked);

  const auto soft =
      rspamd_score(R"({"score":0.0,"required_score":15.0,"action":"soft reject","symbols":{},)"
                   R"j("messages":{"smtp_message":"try again later (test)"}})j");
  ASSERT_TRUE(soft.ok());
  EXPECT_EQ(soft->verdict, Verdict::deferred);
  EXPECT_EQ(refusal(*soft)->text, "4.7.1 try again later (test)");
  EXPECT_EQ(rspamd_score(R"({"score":5,"action":"greylist"})")->verdict, Verdict::deferred);

  const auto gtube =
      rspamd_score(R"({"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject",)"
                   R"("symbols":{"GTUBE":{"name":"GTUBE","score":0.0}},)"
                   R"("messages":{"smtp_message":"Gtube pattern"}})");
  ASSERT_TRUE(gtube.ok());
  EXPECT_EQ(gtube->verdict, Verdict::spam);
  EXPECT_EQ(gtube->reasons, std::vector<std::string>{"GTUBE"});
  EXPECT_EQ(refusal(*gtube)->text, "5.7.1 message content rejected as spam: Gtube pattern");
}

TEST(RspamdScore, RewriteSubjectCarriesTheNewSubject) {
  // As rspamd 3.4 answers with `subject = "*** SPAM *** %s"` (it encodes, RFC 2047).
  const auto s = rspamd_score(
      R"({"score":7.0,"required_score":15.0,"action":"rewrite subject",)"
      R"("subject":"=?UTF-8?Q?=2A=2A=2A_SPAM_=2A=2A=2A_Hello_J=C3=BC?= =?UTF-8?Q?rgen?="})");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->verdict, Verdict::marked);
  EXPECT_EQ(s->subject, "=?UTF-8?Q?=2A=2A=2A_SPAM_=2A=2A=2A_Hello_J=C3=BC?= =?UTF-8?Q?rgen?=");
  // Only a marked message is rewritten.
  EXPECT_EQ(rspamd_score(R"({"score":1,"action":"no action","subject":"x"})")->subject, "");
}

TEST(RewriteSubject, ReplacesTheFieldWithItsFoldedLines) {
  const std::string body = "\r\nSubject: in the body stays\r\n";
  EXPECT_EQ(rewrite_subject(
                "From: a@x.example\r\nsubject : old\r\n  folded old\r\nTo: b@x.example\r\n" + body,
                "*** SPAM *** old"),
            "From: a@x.example\r\nSubject: *** SPAM *** old\r\nTo: b@x.example\r\n" + body);
  // Only the first Subject field; the last field of the header section too.
  EXPECT_EQ(rewrite_subject("Subject: a\r\nSubject: b\r\n\r\nx", "new"),
            "Subject: new\r\nSubject: b\r\n\r\nx");
  EXPECT_EQ(rewrite_subject("From: a@x.example\r\nSubject: a\r\n\r\nx", "new"),
            "From: a@x.example\r\nSubject: new\r\n\r\nx");
  // None: one is added; a message of headers only.
  EXPECT_EQ(rewrite_subject("From: a@x.example\r\n\r\nSubject: body\r\n", "new"),
            "Subject: new\r\nFrom: a@x.example\r\n\r\nSubject: body\r\n");
  EXPECT_EQ(rewrite_subject("From: a@x.example\r\nSubject: a", "new"),
            "From: a@x.example\r\nSubject: new\r\n");
}

TEST(RewriteSubject, TheNewSubjectIsOneFieldOfShortLines) {
  // A line break in it cannot start a field of its own.
  EXPECT_EQ(rewrite_subject("Subject: a\r\n\r\n", "x\r\nBcc: victim@example.org"),
            "Subject: x  Bcc: victim@example.org\r\n\r\n");
  // Long ones are folded before a word (at 78), and unfold to the same words.
  const std::string words =
      "=?UTF-8?Q?=2A=2A=2A_SPAM_=2A=2A=2A_Hello_J=C3=BC?= =?UTF-8?Q?rgen_and_a_long_tail_of?= "
      "=?UTF-8?Q?more_words_here?=";
  const auto out = rewrite_subject("Subject: a\r\n\r\n", words);
  EXPECT_EQ(out,
            "Subject: =?UTF-8?Q?=2A=2A=2A_SPAM_=2A=2A=2A_Hello_J=C3=BC?=\r\n"
            " =?UTF-8?Q?rgen_and_a_long_tail_of?= =?UTF-8?Q?more_words_here?=\r\n\r\n");
  std::string unfolded = out.substr(9, out.size() - 13);
  for (auto at = unfolded.find("\r\n"); at != std::string::npos; at = unfolded.find("\r\n")) {
    unfolded.erase(at, 2);
  }
  EXPECT_EQ(unfolded, words);
  EXPECT_EQ(rewrite_subject("\r\n", ""), "Subject: \r\n\r\n");
}

TEST(RelayedForm, DropsTheXSpamFieldsTheMessageCameWith) {
  const Score clean;
  EXPECT_FALSE(relayed_form(clean, "From: a@x.example\r\nSubject: hi\r\n\r\nX-Spam: body\r\n"));
  EXPECT_EQ(relayed_form(clean,
                         "X-Spam: No\r\nFrom: a@x.example\r\nx-spam-score: -50\r\n\t(folded)\r\n"
                         "X-Spam-Flag: kept\r\nSubject: hi\r\n\r\nX-Spam: body stays\r\n"),
            "From: a@x.example\r\nX-Spam-Flag: kept\r\nSubject: hi\r\n\r\nX-Spam: body stays\r\n");
  // The last field of a message without a body too.
  EXPECT_EQ(relayed_form(clean, "From: a@x.example\r\nX-Spam: Yes"), "From: a@x.example\r\n");
  // With a rewritten Subject, both.
  Score marked{.verdict = Verdict::marked, .subject = "*** SPAM *** hi"};
  EXPECT_EQ(relayed_form(marked, "X-Spam: No\r\nSubject: hi\r\n\r\nbody"),
            "Subject: *** SPAM *** hi\r\n\r\nbody");
}

TEST(RspamdScore, WhatCannotBeReadIsAnError) {
  for (const auto* body : {"", "not json", "[]", R"({"score":1})", R"({"action":"no action"})",
                           R"({"score":"1","action":"no action"})",
                           R"({"score":1,"action":"quarantine"})", R"({"score":1,"action":7})"}) {
    const auto s = rspamd_score(body);
    EXPECT_FALSE(s.ok()) << body;
    if (!s.ok()) {
      EXPECT_EQ(s.error().code, core::ErrorCode::unavailable) << body;
    }
  }
}

TEST(RspamdScore, ItsWordsAreMadeSafeForAReply) {
  const auto s = rspamd_score(
      "{\"score\":20,\"action\":\"reject\",\"messages\":{\"smtp_message\":"
      "\"bad\\r\\n250 ok\\u00e9\"}}");
  ASSERT_TRUE(s.ok());
  // No line break can end the reply early and smuggle another; non-ASCII becomes spaces.
  EXPECT_EQ(refusal(*s)->text, "5.7.1 message content rejected as spam: bad  250 ok  ");
}

}  // namespace
}  // namespace mailroster::gateway
