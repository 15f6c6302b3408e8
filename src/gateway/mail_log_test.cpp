#include "gateway/mail_log.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "smtp/server.hpp"

namespace mailroster::gateway {
namespace {

core::MailLogEntry entry(std::string recipient) {
  core::MailLogEntry e;
  e.recipient = std::move(recipient);
  return e;
}

std::vector<std::string> recipients(const std::vector<core::MailLogEntry>& batch) {
  std::vector<std::string> out;
  for (const auto& e : batch) out.push_back(e.recipient);
  return out;
}

using V = std::vector<std::string>;

TEST(MailLog, WritesWhatWaitsAsOneBatchInOrder) {
  MailLog log;
  log.record(entry("a@x.example"));
  log.record(entry("b@x.example"));
  EXPECT_EQ(log.pending(), 2u);
  std::vector<V> batches;
  const auto write = [&](const auto& batch) { batches.push_back(recipients(batch)); };
  EXPECT_EQ(log.flush(write), 2u);
  EXPECT_EQ(log.flush(write), 0u);  // nothing waits: no write at all
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0], (V{"a@x.example", "b@x.example"}));
  EXPECT_EQ(log.written(), 2u);
  EXPECT_EQ(log.pending(), 0u);
}

TEST(MailLog, AFailedWriteKeepsTheEntriesForTheNextBeforeNewerOnes) {
  MailLog log;
  log.record(entry("a@x.example"));
  EXPECT_THROW(log.flush([](const auto&) { throw std::runtime_error("database is locked"); }),
               std::runtime_error);
  EXPECT_EQ(log.pending(), 1u);
  EXPECT_EQ(log.written(), 0u);
  log.record(entry("b@x.example"));
  V written;
  EXPECT_EQ(log.flush([&](const auto& batch) { written = recipients(batch); }), 2u);
  EXPECT_EQ(written, (V{"a@x.example", "b@x.example"}));
}

TEST(MailLog, KeepsAtMostItsBoundDroppingTheOldest) {
  MailLog log(3);
  for (const auto* r : {"1@x", "2@x", "3@x", "4@x", "5@x"}) log.record(entry(r));
  EXPECT_EQ(log.pending(), 3u);
  EXPECT_EQ(log.dropped(), 2u);
  // A failed write puts its entries back within the bound too.
  EXPECT_THROW(log.flush([&](const auto&) {
    log.record(entry("6@x"));
    throw std::runtime_error("down");
  }),
               std::runtime_error);
  EXPECT_EQ(log.pending(), 3u);
  EXPECT_EQ(log.dropped(), 3u);
  V written;
  log.flush([&](const auto& batch) { written = recipients(batch); });
  EXPECT_EQ(written, (V{"4@x", "5@x", "6@x"}));
}

// No company's entries (relay denied) are kept at most so many a minute, by their times.
TEST(MailLog, NoCompanysEntriesAreKeptAtMostSoManyAMinute) {
  MailLog log(100, 2);
  const core::TimePoint t0{std::chrono::hours(24 * 365 * 56)};
  auto at = [&](core::Id company, std::chrono::seconds after, std::string r) {
    auto e = entry(std::move(r));
    e.company_id = company;
    e.at = t0 + after;
    return e;
  };
  log.record(at(0, std::chrono::seconds(0), "1@x"));
  log.record(at(0, std::chrono::seconds(10), "2@x"));
  log.record(at(0, std::chrono::seconds(20), "3@x"));  // a third in the minute: dropped
  log.record(at(7, std::chrono::seconds(30), "4@x"));  // a company's: always kept
  log.record(at(0, std::chrono::seconds(60), "5@x"));  // the next minute
  EXPECT_EQ(log.unrouted_dropped(), 1u);
  EXPECT_EQ(log.dropped(), 0u);
  V written;
  log.flush([&](const auto& batch) { written = recipients(batch); });
  EXPECT_EQ(written, (V{"1@x", "2@x", "4@x", "5@x"}));
}

TEST(MailLog, OffKeepsNothing) {
  MailLog log;
  log.set_enabled(false);
  log.record(entry("a@x.example"));
  EXPECT_EQ(log.pending(), 0u);
  log.set_enabled(true);
  log.record(entry("a@x.example"));
  EXPECT_EQ(log.pending(), 1u);
}

TEST(MailLog, TextsAreMadePrintable) {
  MailLog log;
  auto e = entry("jürgen@x.example");
  e.reply = "550 line one\r\nline two";
  e.sender = std::string("caf\xe9@x.example");  // Latin-1: not UTF-8
  log.record(e);
  std::vector<core::MailLogEntry> got;
  log.flush([&](const auto& batch) { got = batch; });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].recipient, "jürgen@x.example");  // UTF-8 stays
  EXPECT_EQ(got[0].reply, "550 line one  line two");
  EXPECT_EQ(got[0].sender, "caf?@x.example");
}

TEST(MailLog, AnEntryOfASessionTakesItsResultFromTheReply) {
  smtp::SessionInfo session{.id = "s1", .client_ip = "192.0.2.1"};
  smtp::Transaction tx{.mail_from = "bob@example.org"};
  const auto at = core::TimePoint{std::chrono::seconds{1'800'000'000}};
  const auto e = mail_log_entry("inbound", "rcpt", session, tx, at, {451, "4.4.1 try later"});
  EXPECT_EQ(e.direction, "inbound");
  EXPECT_EQ(e.stage, "rcpt");
  EXPECT_EQ(e.client_ip, "192.0.2.1");
  EXPECT_EQ(e.sender, "bob@example.org");
  EXPECT_EQ(e.at, at);
  EXPECT_EQ(e.result, "deferred");
  EXPECT_EQ(e.code, 451);
  EXPECT_EQ(e.reply, "4.4.1 try later");
  EXPECT_EQ(mail_log_entry("inbound", "rcpt", session, tx, at, {550, "5.1.1 x"}).result,
            "rejected");
  EXPECT_EQ(mail_log_entry("inbound", "data", session, tx, at, {250, "2.0.0 Ok"}).result,
            "delivered");
}

}  // namespace
}  // namespace mailroster::gateway
