#include "admin/metrics.hpp"

#include <sstream>

namespace mailroster::admin {

void Metrics::describe(const std::string& name, const std::string& help, const std::string& type) {
  std::lock_guard lock(mutex_);
  families_[name] = {help, type};
}

void Metrics::add(const std::string& name, const std::string& labels, std::uint64_t n) {
  std::lock_guard lock(mutex_);
  counters_[name][labels] += n;
}

void Metrics::gauge(const std::string& name, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  gauges_[name] = std::move(read);
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
  for (const auto& [name, series] : counters_) {
    header(name, "counter");
    for (const auto& [labels, v] : series) {
      out << name;
      if (!labels.empty()) out << "{" << labels << "}";
      out << " " << v << "\n";
    }
  }
  for (const auto& [name, read] : gauges_) {
    header(name, "gauge");
    out << name << " " << read() << "\n";
  }
  return out.str();
}

}  // namespace mailroster::admin
