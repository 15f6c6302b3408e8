// Time as the product sees it. Every rule that depends on time (30-day windows, expiry,
// Thursday reports) takes its "now" from a Clock that is passed in, so tests set the time
// instead of sleeping.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace mailroster::core {

using TimePoint = std::chrono::sys_seconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override;
};

// A clock that stands still until told otherwise.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start) : now_(start) {}
  TimePoint now() const override { return now_; }
  void set(TimePoint t) { now_ = t; }
  void advance(std::chrono::seconds d) { now_ += d; }

 private:
  TimePoint now_;
};

// "2026-11-24T16:18:02Z"
std::string format_iso8601(TimePoint t);
// The day of t, UTC: "2026-11-24".
std::string format_day(TimePoint t);
// RFC 5322 3.3 date-time in UTC, for mail headers: "Tue, 24 Nov 2026 16:18:02 +0000".
std::string format_rfc5322(TimePoint t);
// Accepts "YYYY-MM-DDTHH:MM:SSZ", "YYYY-MM-DDTHH:MM:SS+HH:MM", "YYYY-MM-DD" (midnight UTC).
std::optional<TimePoint> parse_iso8601(std::string_view text);
// A duration: a number with a unit, s, m, h or d ("30s", "5m", "12h", "7d"), at most 100 years.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// A moment as a listing's "since" or "before" names it: an ISO-8601 time (as parse_iso8601),
// or a duration before `now` ("2h": two hours ago).
std::optional<TimePoint> parse_moment(std::string_view text, TimePoint now);

}  // namespace mailroster::core
