// Writes that wait in memory while the database cannot take them (the mail log's, the users'
// last mail, discovery counts), tried again and again: says when they start failing and when
// they are written again, once each (a full disk logged a warning a second), and at the stop
// what could not be written at all.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstddef>
#include <exception>
#include <string>
#include <utility>

namespace mailroster::gateway {

class FailingWrites {
 public:
  // what: of what ("mail log"); meanwhile: what happens to them ("entries wait").
  FailingWrites(std::string what, std::string meanwhile)
      : what_(std::move(what)), meanwhile_(std::move(meanwhile)) {}
  void failed(const std::string& why) {
    if (!failing_.exchange(true)) spdlog::warn("{}: cannot write, {}: {}", what_, meanwhile_, why);
  }
  void failed(const std::exception& e) { failed(std::string(e.what())); }
  void written() {
    if (failing_.exchange(false)) spdlog::info("{}: written again", what_);
  }
  bool failing() const { return failing_; }
  // At the stop: `left` were not written and are lost with the process.
  void lost(std::size_t left) const {
    if (left != 0) {
      spdlog::error("{}: {} not written: the database cannot take them", what_, left);
    }
  }

 private:
  std::string what_;
  std::string meanwhile_;
  std::atomic<bool> failing_{false};
};

}  // namespace mailroster::gateway
