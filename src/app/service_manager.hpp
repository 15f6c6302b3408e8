// Telling the service manager how serve is doing (systemd's Type=notify, sd_notify(3)):
// ready once every listener is bound, a status line, reloading on SIGHUP, stopping while it
// drains, and the watchdog's keep-alive. Without $NOTIFY_SOCKET (not started by systemd)
// every call does nothing.
#pragma once

#include <spdlog/formatter.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string_view>

namespace mailroster::app::service_manager {

void ready(std::string_view status);
void status(std::string_view status);
// A reload has begun (ready() says it is over).
void reloading();
void stopping(std::string_view status);
// How often systemd wants to hear from us (WatchdogSec=), when it does.
std::optional<std::chrono::microseconds> watchdog_interval();
void watchdog();

// Whether standard error goes to the journal: $JOURNAL_STREAM names its device and inode
// (systemd.exec(5)).
bool stderr_is_journal();
// Log lines for the journal: each begins with its syslog priority (sd-daemon(3): <3> an error,
// <4> a warning), which `journalctl -p` filters on, and has no timestamp (the journal keeps
// its own).
std::unique_ptr<spdlog::formatter> journal_formatter();

}  // namespace mailroster::app::service_manager
