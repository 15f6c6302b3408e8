#include "app/service_manager.hpp"

#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace mailroster::app::service_manager {

namespace {

// A status line is one line: a newline would start another assignment.
std::string one_line(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

void notify(const std::string& state) {
  // 0: the environment stays, so a reload's notifications reach systemd too.
  if (const int r = sd_notify(0, state.c_str()); r < 0) {
    spdlog::warn("cannot tell the service manager '{}': {}", state.substr(0, state.find('=')),
                 std::strerror(-r));
  }
}

class SyslogPriority final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view p;
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug:
        p = SD_DEBUG;
        break;
      case spdlog::level::info:
        p = SD_INFO;
        break;
      case spdlog::level::warn:
        p = SD_WARNING;
        break;
      case spdlog::level::err:
        p = SD_ERR;
        break;
      default:
        p = SD_CRIT;
        break;
    }
    dest.append(p.data(), p.data() + p.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SyslogPriority>();
  }
};

}  // namespace

void ready(std::string_view text) { notify("READY=1\nSTATUS=" + one_line(text)); }

void status(std::string_view text) { notify("STATUS=" + one_line(text)); }

void reloading() {
  // systemd 253's Type=notify-reload also wants the time the reload began.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  notify(fmt::format("RELOADING=1\nMONOTONIC_USEC={}",
                     std::uint64_t(now.tv_sec) * 1000000 + std::uint64_t(now.tv_nsec) / 1000));
}

void stopping(std::string_view text) { notify("STOPPING=1\nSTATUS=" + one_line(text)); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

void watchdog() { notify("WATCHDOG=1"); }

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (stream == nullptr || fstat(STDERR_FILENO, &st) != 0) return false;
  return fmt::format("{}:{}", st.st_dev, st.st_ino) == stream;
}

std::unique_ptr<spdlog::formatter> journal_formatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<SyslogPriority>('*').set_pattern("%*%l %v");
  return formatter;
}

}  // namespace mailroster::app::service_manager
