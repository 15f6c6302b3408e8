#include "core/model.hpp"

#include <algorithm>
#include <array>
#include <charconv>
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

// "unknown role 'admin' (one of end_user, silent_user, functional)", naming the field.
Error unknown_name(std::string_view what, std::string_view text, const std::string& choices) {
  return invalid(
      "unknown " + std::string(what) + " '" + std::string(text) + "' (one of " + choices + ")",
      std::string(what));
}

template <class E, std::size_t N>
Result<E> parse_named(const std::array<std::pair<E, std::string_view>, N>& table,
                      std::string_view text, std::string_view what) {
  std::string choices;
  for (const auto& [v, name] : table) {
    if (name == text) return v;
    choices += (choices.empty() ? "" : ", ") + std::string(name);
  }
  return unknown_name(what, text, choices);
}

}  // namespace

bool is_audit_action(std::string_view text) {
  return std::find(std::begin(kAuditActions), std::end(kAuditActions), text) !=
         std::end(kAuditActions);
}

Result<std::string> parse_audit_action(std::string_view text) {
  if (is_audit_action(text)) return std::string(text);
  return unknown_name("action", text, audit_action_list());
}

std::string audit_action_list() {
  std::string list;
  for (const auto action : kAuditActions) list += (list.empty() ? "" : ", ") + std::string(action);
  return list;
}

std::string_view to_string(Role role) { return name_of(kRoles, role); }

std::string_view role_name(Role role) {
  static constexpr std::array<std::pair<Role, std::string_view>, 3> kNames{{
      {Role::end_user, "end user"},
      {Role::silent_user, "silent user"},
      {Role::functional, "functional account"},
  }};
  return name_of(kNames, role);
}

std::string_view source_name(Source source) {
  static constexpr std::array<std::pair<Source, std::string_view>, 5> kNames{{
      {Source::manual, "added by hand"},
      {Source::csv, "CSV import"},
      {Source::ldap, "Active Directory"},
      {Source::azure, "Azure AD"},
      {Source::discovery, "SMTP Discovery"},
  }};
  return name_of(kNames, source);
}
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

std::optional<Error> set_setting(DiscoverySettings& s, std::string_view name,
                                 std::string_view value) {
  const std::string field(name);
  auto boolean = [&](bool& out) -> std::optional<Error> {
    if (value == "true" || value == "on" || value == "yes") {
      out = true;
    } else if (value == "false" || value == "off" || value == "no") {
      out = false;
    } else {
      return invalid(field + " must be true or false, not '" + std::string(value) + "'", field);
    }
    return std::nullopt;
  };
  auto integer = [&](int& out) -> std::optional<Error> {
    int v = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc() || end != value.data() + value.size()) {
      return invalid(field + " must be a whole number, not '" + std::string(value) + "'", field);
    }
    out = v;
    return std::nullopt;
  };
  DiscoverySettings next = s;
  std::optional<Error> error;
  if (name == "enabled") {
    error = boolean(next.enabled);
  } else if (name == "default_role") {
    auto role = parse_role(value);
    if (!role) return role.error();
    next.default_role = *role;
  } else if (name == "inbound_threshold") {
    error = integer(next.inbound_threshold);
  } else if (name == "window_days") {
    error = integer(next.window_days);
  } else if (name == "notification_weeks") {
    error = integer(next.notification_weeks);
  } else if (name == "expired_to_new_user") {
    error = boolean(next.expired_to_new_user);
  } else if (name == "auto_add_aliases") {
    error = boolean(next.auto_add_aliases);
  } else if (name == "auto_add_outbound") {
    error = boolean(next.auto_add_outbound);
  } else if (name == "report_new_users") {
    error = boolean(next.report_new_users);
  } else if (name == "report_new_aliases") {
    error = boolean(next.report_new_aliases);
  } else if (name == "report_include_admin") {
    error = boolean(next.report_include_admin);
  } else {
    return invalid("unknown discovery setting '" + field + "'", field);
  }
  if (error) return error;
  if (auto range = validate(next)) return range;
  s = next;
  return std::nullopt;
}

}  // namespace mailroster::core
