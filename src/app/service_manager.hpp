// Telling the service manager how serve is doing (systemd's Type=notify, sd_notify(3)):
// ready once every listener is bound, a status line, reloading on SIGHUP, stopping while it
// drains, and the watchdog's keep-alive. Without $NOTIFY_SOCKET (not started by systemd)
// every call does nothing.
#pragma once

#include <chrono>
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

}  // namespace mailroster::app::service_manager
