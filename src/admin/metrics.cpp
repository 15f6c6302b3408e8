#include "admin/metrics.hpp"

#include <fmt/format.h>

#include <sstream>

namespace mailroster::admin {

void Metrics::describe(const std::string& name, const std::string& help, const std::string& type,
                       const std::vector<std::string>& from_start) {
  std::lock_guard lock(mutex_);
  families_[name] = {help, type};
  for (const auto& labels : from_start) counters_[name][labels] += 0;
}

std::vector<std::string> Metrics::each(std::string_view key,
                                       std::initializer_list<std::string_view> values) {
  std::vector<std::string> sets;
  for (const auto v : values) sets.push_back(fmt::format("{}=\"{}\"", key, v));
  return sets;
}

void Metrics::add(const std::string& name, const std::string& labels, std::uint64_t n) {
  std::lock_guard lock(mutex_);
  counters_[name][labels] += n;
}

void Metrics::gauge(const std::string& name, std::function<double()> read) {
  gauge(name, {}, std::move(read));
}

void Metrics::gauge(const std::string& name, const std::string& labels,
                    std::function<double()> read) {
  std::lock_guard lock(mutex_);
  gauges_[name][labels] = std::move(read);
}

void Metrics::set_gauges(const std::string& name, const std::map<std::string, double>& series) {
  std::lock_guard lock(mutex_);
  auto& family = gauges_[name];
  family.clear();
  for (const auto& [labels, value] : series) family[labels] = [value] { return value; };
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  auto header = [&](const std::string& name, const char* fallback_type) {
    auto f = families_.find(name);
    if (f != families_.end()) {
      out << "# HELP " << name << " " << f->second.first << "\n";
      out << "# TYPE " << name << " " << f->second.second << "\n";
    } else {
      out << "# TYPE " << name << " " << fallback_type << "\n";
    }
  };
  auto sample = [&](const std::string& name, const std::string& labels, auto value) {
    out << name;
    if (!labels.empty()) out << "{" << labels << "}";
    // Shortest exact form: a count in millions or a Unix time keeps all its digits (a
    // stream's default six would print 1.79876e+09).
    out << " " << fmt::format("{}", value) << "\n";
  };
  for (const auto& [name, series] : counters_) {
    header(name, "counter");
    for (const auto& [labels, v] : series) sample(name, labels, v);
  }
  for (const auto& [name, series] : gauges_) {
    header(name, "gauge");
    for (const auto& [labels, read] : series) sample(name, labels, read());
  }
  // A family with no series yet (one per company with no company): said all the same.
  for (const auto& [name, family] : families_) {
    if (!counters_.contains(name) && !gauges_.contains(name)) header(name, "");
  }
  return out.str();
}

}  // namespace mailroster::admin
