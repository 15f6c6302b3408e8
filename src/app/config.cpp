#include "app/config.hpp"

#include <toml++/toml.h>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

namespace mailroster::app {
namespace {

using core::Error;
using core::invalid;

// One row per key: where it lives, and how a TOML value sets it (an error message or "").
struct Key {
  std::string_view section;
  std::string_view name;
  std::function<std::string(const toml::node&, Config&)> set;
};

std::string set_string(const toml::node& n, std::string& out) {
  const auto* v = n.as_string();
  if (!v) return "must be a string";
  out = v->get();
  return "";
}

const std::vector<Key>& schema() {
  static const std::vector<Key> keys = {
      {"database", "path",
       [](const toml::node& n, Config& c) {
         auto err = set_string(n, c.database_path);
         if (err.empty() && c.database_path.empty()) return std::string("must not be empty");
         return err;
       }},
      {"admin", "listen",
       [](const toml::node& n, Config& c) {
         std::string text;
         if (auto err = set_string(n, text); !err.empty()) return err;
         auto ep = core::Endpoint::parse_listen(text, 8080);
         if (!ep) return ep.error().message;
         c.admin_listen = *ep;
         return std::string();
       }},
      {"log", "level",
       [](const toml::node& n, Config& c) {
         if (auto err = set_string(n, c.log_level); !err.empty()) return err;
         for (auto level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
           if (c.log_level == level) return std::string();
         }
         return "unknown level '" + c.log_level +
                "' (trace, debug, info, warn, error, critical, off)";
       }},
  };
  return keys;
}

std::string where(std::string_view source, const toml::node& n) {
  std::ostringstream out;
  out << source;
  if (n.source().begin.line > 0) out << ":" << n.source().begin.line;
  return out.str();
}

}  // namespace

core::Result<Config> parse_config(std::string_view toml_text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    std::ostringstream out;
    out << source << ":" << e.source().begin.line << ": " << e.description();
    return invalid(out.str());
  }

  Config config;
  for (auto&& [section_key, section_node] : root) {
    const auto section = section_key.str();
    const auto* table = section_node.as_table();
    bool known_section = false;
    for (const auto& k : schema()) known_section |= k.section == section;
    if (!known_section) {
      return invalid(where(source, section_node) + ": unknown section '" + std::string(section) +
                     "'");
    }
    if (!table) {
      return invalid(where(source, section_node) + ": '" + std::string(section) +
                     "' must be a table");
    }
    for (auto&& [key, value] : *table) {
      const std::string full = std::string(section) + "." + std::string(key.str());
      const Key* entry = nullptr;
      for (const auto& k : schema()) {
        if (k.section == section && k.name == key.str()) entry = &k;
      }
      if (!entry) return invalid(where(source, value) + ": unknown key '" + full + "'", full);
      if (auto err = entry->set(value, config); !err.empty()) {
        return invalid(where(source, value) + ": " + full + " " + err, full);
      }
    }
  }
  return config;
}

core::Result<Config> load_config(const std::string& path) {
  if (path.empty()) return Config{};
  std::ifstream in(path, std::ios::binary);
  if (!in) return invalid("cannot read configuration file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

}  // namespace mailroster::app
