#include "core/model.hpp"

#include <array>
#include <utility>

namespace mailroster::core {
namespace {

constexpr std::array<std::pair<Role, std::string_view>, 3> kRoles{{
    {Role::end_user, "end_user"},
    {Role::silent_user, "silent_user"},
    {Role::functional, "functional"},
}};

constexpr std::array<std::pair<Source, std::string_view>, 5> kSources{{
    {Source::manual, "manual"},
    {Source::csv, "csv"},
    {Source::ldap, "ldap"},
    {Source::azure, "azure"},
    {Source::discovery, "discovery"},
}};

template <class E, std::size_t N>
std::string_view name_of(const std::array<std::pair<E, std::string_view>, N>& table, E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "?";
}

template <class E, std::size_t N>
Result<E> parse_named(const std::array<std::pair<E, std::string_view>, N>& table,
                      std::string_view text, std::string_view what) {
  std::string choices;
  for (const auto& [v, name] : table) {
    if (name == text) return v;
    choices += (choices.empty() ? "" : ", ") + std::string(name);
  }
  return invalid(
      "unknown " + std::string(what) + " '" + std::string(text) + "' (one of " + choices + ")",
      std::string(what));
}

}  // namespace

std::string_view to_string(Role role) { return name_of(kRoles, role); }
std::string_view to_string(Source source) { return name_of(kSources, source); }
Result<Role> parse_role(std::string_view text) { return parse_named(kRoles, text, "role"); }
Result<Source> parse_source(std::string_view text) { return parse_named(kSources, text, "source"); }

Result<std::string> validate_company_name(std::string_view name) {
  if (name.empty()) return invalid("company name is empty", "name");
  if (name.size() > 64) return invalid("company name longer than 64 characters", "name");
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_';
    if (!ok) {
      return invalid("company name '" + std::string(name) +
                         "' may contain only letters, digits, '.', '-' and '_'",
                     "name");
    }
  }
  return std::string(name);
}

Result<std::string> validate_contact(std::string_view text, std::string_view field) {
  if (text.empty()) return std::string();
  auto address = Address::parse(text);
  if (!address) {
    return invalid(std::string(field) + ": " + address.error().message, std::string(field));
  }
  return address->str();
}

std::optional<Error> validate(const DiscoverySettings& s) {
  if (s.inbound_threshold < 1 || s.inbound_threshold > 1000) {
    return invalid("inbound_threshold must be between 1 and 1000", "inbound_threshold");
  }
  if (s.window_days < 1 || s.window_days > 365) {
    return invalid("window_days must be between 1 and 365", "window_days");
  }
  if (s.notification_weeks < 1 || s.notification_weeks > 52) {
    return invalid("notification_weeks must be between 1 and 52", "notification_weeks");
  }
  if (s.default_role == Role::functional) {
    return invalid("default_role must be end_user or silent_user", "default_role");
  }
  return std::nullopt;
}

}  // namespace mailroster::core
