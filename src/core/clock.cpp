#include "core/clock.hpp"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace mailroster::core {

TimePoint SystemClock::now() const {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

std::string format_day(TimePoint t) { return format_iso8601(t).substr(0, 10); }

std::string format_iso8601(TimePoint t) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::string format_rfc5322(TimePoint t) {
  const std::time_t tt = t.time_since_epoch().count();
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

namespace {
bool read_int(std::string_view s, std::size_t pos, std::size_t len, int& out) {
  if (pos + len > s.size()) return false;
  const char* b = s.data() + pos;
  auto [end, ec] = std::from_chars(b, b + len, out);
  return ec == std::errc() && end == b + len;
}
}  // namespace

std::optional<TimePoint> parse_iso8601(std::string_view s) {
  using namespace std::chrono;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!read_int(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !read_int(s, 5, 2, mo) ||
      s[7] != '-' || !read_int(s, 8, 2, d)) {
    return std::nullopt;
  }
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  seconds offset{0};
  if (s.size() > 10) {
    if ((s[10] != 'T' && s[10] != ' ') || s.size() < 19 || !read_int(s, 11, 2, h) || s[13] != ':' ||
        !read_int(s, 14, 2, mi) || s[16] != ':' || !read_int(s, 17, 2, sec) || h > 23 || mi > 59 ||
        sec > 60) {
      return std::nullopt;
    }
    const auto zone = s.substr(19);
    if (zone == "Z" || zone.empty()) {
      // UTC
    } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':') {
      int oh = 0, om = 0;
      if (!read_int(zone, 1, 2, oh) || !read_int(zone, 4, 2, om) || oh > 23 || om > 59) {
        return std::nullopt;
      }
      offset = hours{oh} + minutes{om};
      if (zone[0] == '-') offset = -offset;
    } else {
      return std::nullopt;
    }
  }
  return sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec} - offset;
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  long long value = 0;
  const auto unit = text.back();
  const auto digits = text.substr(0, text.size() - 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || value < 0) return std::nullopt;
  const std::chrono::seconds unit_length = unit == 's'   ? std::chrono::seconds(1)
                                           : unit == 'm' ? std::chrono::minutes(1)
                                           : unit == 'h' ? std::chrono::hours(1)
                                           : unit == 'd' ? std::chrono::hours(24)
                                                         : std::chrono::seconds(0);
  constexpr long long kLongest = 100LL * 366 * 24 * 3600;  // no overflow, however many digits
  if (unit_length.count() == 0 || value > kLongest / unit_length.count()) return std::nullopt;
  return unit_length * value;
}

std::optional<TimePoint> parse_moment(std::string_view text, TimePoint now) {
  if (auto d = parse_duration(text)) return now - *d;
  return parse_iso8601(text);
}

}  // namespace mailroster::core
