#include "gateway/mail_log.hpp"

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/address.hpp"
#include "smtp/server.hpp"

namespace mailroster::gateway {

namespace {

// Text the log shows and JSON can carry: control characters as spaces; when it is not UTF-8
// (a reply in Latin-1, 8-bit bytes in an address), its non-ASCII bytes as '?'.
void make_printable(std::string& text) {
  const bool utf8 = core::is_valid_utf8(text);
  for (auto& c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      c = ' ';
    } else if (byte >= 0x80 && !utf8) {
      c = '?';
    }
  }
}

}  // namespace

void MailLog::record(core::MailLogEntry entry) {
  if (!enabled_) return;
  for (auto* text : {&entry.sender, &entry.recipient, &entry.reply, &entry.server}) {
    make_printable(*text);
  }
  std::lock_guard lock(mutex_);
  if (entry.company_id == 0) {
    if (entry.at - unrouted_minute_ >= std::chrono::minutes(1) || entry.at < unrouted_minute_) {
      unrouted_minute_ = entry.at;
      unrouted_in_minute_ = 0;
    }
    if (++unrouted_in_minute_ > max_unrouted_) {
      ++unrouted_dropped_;
      return;
    }
  }
  pending_.push_back(std::move(entry));
  keep_within_bound();
}

void MailLog::keep_within_bound() {
  while (pending_.size() > max_pending_) {
    pending_.pop_front();
    ++dropped_;
  }
}

std::size_t MailLog::flush(const Writer& write) {
  std::vector<core::MailLogEntry> batch;
  {
    std::lock_guard lock(mutex_);
    batch.assign(std::make_move_iterator(pending_.begin()),
                 std::make_move_iterator(pending_.end()));
    pending_.clear();
  }
  if (batch.empty()) return 0;
  try {
    write(batch);
  } catch (...) {
    std::lock_guard lock(mutex_);  // before what came meanwhile, in their order
    pending_.insert(pending_.begin(), std::make_move_iterator(batch.begin()),
                    std::make_move_iterator(batch.end()));
    keep_within_bound();
    throw;
  }
  written_ += batch.size();
  return batch.size();
}

std::size_t MailLog::pending() const {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

core::MailLogEntry mail_log_entry(std::string direction, std::string stage,
                                  const smtp::SessionInfo& session, const smtp::Transaction& tx,
                                  core::TimePoint at, const smtp::Reply& reply) {
  core::MailLogEntry e;
  e.at = at;
  e.direction = std::move(direction);
  e.stage = std::move(stage);
  e.client_ip = session.client_ip;
  e.sender = tx.mail_from;
  e.result = reply.positive() ? "delivered" : reply.transient() ? "deferred" : "rejected";
  e.code = reply.code;
  e.reply = reply.text;  // its line breaks become spaces when it is recorded
  return e;
}

core::MailLogEntry message_entry(std::string direction, const smtp::SessionInfo& session,
                                 const smtp::Transaction& tx, core::TimePoint at,
                                 const smtp::Reply& reply, std::string queue_id, std::string result,
                                 std::size_t size, const std::optional<core::Endpoint>& server) {
  auto e = mail_log_entry(std::move(direction), "data", session, tx, at, reply);
  e.queue_id = std::move(queue_id);
  if (!result.empty()) e.result = std::move(result);
  e.size = size;
  if (server) e.server = server->str();
  return e;
}

}  // namespace mailroster::gateway
