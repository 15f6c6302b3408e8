// Counters and gauges for /metrics in the Prometheus text format (version 0.0.4).
// Modules count events by name and label set; gauges are read when scraped.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mailroster::admin {

class Metrics {
 public:
  // Declares a metric family once: name, help text, "counter" or "gauge". A counter's series
  // in `from_start` (label sets as add() takes them; "" the one without labels) are shown at 0
  // until their first event, so that a rate or an alert over them has its series from the
  // start (a series that appears with its first event loses that event to rate()).
  void describe(const std::string& name, const std::string& help, const std::string& type,
                const std::vector<std::string>& from_start = {});
  // The label sets key="value" for each value: from_start's for a family with one label.
  static std::vector<std::string> each(std::string_view key,
                                       std::initializer_list<std::string_view> values);
  // Adds n to the counter name{labels}; labels as Prometheus writes them: result="accept".
  void add(const std::string& name, const std::string& labels = {}, std::uint64_t n = 1);
  // A gauge read at scrape time; with labels, one series of the family name.
  void gauge(const std::string& name, std::function<double()> read);
  void gauge(const std::string& name, const std::string& labels, std::function<double()> read);
  // A gauge family whose series are set rather than read: `series` (labels -> value) replaces
  // all of the family's series, so that a label set no longer given is no longer shown.
  void set_gauges(const std::string& name, const std::map<std::string, double>& series);
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::pair<std::string, std::string>> families_;  // help, type
  std::map<std::string, std::map<std::string, std::uint64_t>> counters_;
  std::map<std::string, std::map<std::string, std::function<double()>>> gauges_;
};

}  // namespace mailroster::admin
