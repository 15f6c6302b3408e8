#include "admin/auth.hpp"

#include <sodium.h>

#include <algorithm>
#include <variant>

#include "core/network.hpp"

namespace mailroster::admin {

std::string random_token() {
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  std::string out(sodium_base64_ENCODED_LEN(sizeof bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), bytes, sizeof bytes,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.find('\0'));
  return out;
}

namespace {

std::string token_hash(const std::string& token) {
  unsigned char hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(hash, reinterpret_cast<const unsigned char*>(token.data()), token.size());
  std::string hex(2 * sizeof hash + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), hash, sizeof hash);
  hex.pop_back();
  return hex;
}

std::optional<std::string> cookie_value(const HttpRequest& req, const std::string& name) {
  auto it = req.headers.find("cookie");
  if (it == req.headers.end()) return std::nullopt;
  const auto& text = it->second;
  std::size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == ';')) ++pos;
    const auto end = text.find(';', pos);
    const auto part = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    const auto eq = part.find('=');
    if (eq != std::string::npos && part.substr(0, eq) == name) return part.substr(eq + 1);
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return std::nullopt;
}

HttpResponse unauthorized() {
  return json_error(401, "unauthenticated", "wrong email or password");
}

}  // namespace

std::string hash_password(const std::string& password) {
  if (sodium_init() < 0) throw core::Failure(core::ErrorCode::internal, "libsodium init failed");
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(),
                            crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw core::Failure(core::ErrorCode::internal, "out of memory hashing a password");
  }
  return out;
}

bool verify_password(const std::string& hash, const std::string& password) {
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

Auth::Auth(store::Store& store, const core::Clock& clock, AuthSettings settings)
    : store_(store),
      clock_(clock),
      settings_(settings),
      failures_(settings.failure_window,
                static_cast<std::size_t>(std::max(settings.max_failures, 1))) {}

void check_password(const std::string& password, const std::string& field) {
  if (password.size() < 10) {
    throw core::Failure(core::ErrorCode::invalid_argument,
                        "a password of at least 10 characters is needed", field);
  }
}

store::Login company_login(store::Store& store, const std::string& email, store::LoginRole role,
                           std::optional<core::Id> company_id, const std::string& password) {
  using core::ErrorCode;
  using core::Failure;
  const auto address = core::Address::parse(email);
  if (!address) {
    throw Failure(ErrorCode::invalid_argument, "bad email: " + address.error().message, "email");
  }
  store::Login l;
  l.email = address->str();
  l.role = role;
  if (role == store::LoginRole::company_admin) {
    if (!company_id) throw Failure(ErrorCode::invalid_argument, "a company is needed", "company");
    l.company_id = company_id;
  } else if (role == store::LoginRole::end_user) {
    const auto user = store.find_user(*address);
    if (!user || (company_id && user->company_id != *company_id)) {
      throw Failure(ErrorCode::not_found, address->str() + " is not a user of the company",
                    "email");
    }
    if (user->role != core::Role::end_user) {
      throw Failure(ErrorCode::invalid_argument,
                    "silent users and functional accounts cannot log in", "role");
    }
    l.company_id = user->company_id;
    l.user_id = user->id;
  } else {
    throw Failure(ErrorCode::invalid_argument, "role must be company_admin or end_user", "role");
  }
  check_password(password);
  l.password_hash = hash_password(password);
  return l;
}

bool Auth::may_log_in(const store::Login& login) {
  if (login.role != store::LoginRole::end_user) return true;
  const auto user = login.user_id ? store_.user_by_id(*login.user_id) : std::nullopt;
  return user && user->role == core::Role::end_user;  // not silent users, not functional
}

std::array<std::string, 2> Auth::failure_keys(const std::string& client, const std::string& email,
                                              std::string_view kind) const {
  const std::string k(kind);
  return {k + "client:" + core::client_network(client, settings_.ipv6_prefix),
          k + "email:" + core::ascii_lower(email)};
}

bool Auth::limited(const std::string& client, const std::string& email, core::TimePoint now,
                   std::string_view kind) {
  std::lock_guard lock(mutex_);
  for (const auto& key : failure_keys(client, email, kind)) {
    if (failures_.count(key, now) >= static_cast<std::size_t>(settings_.max_failures)) return true;
  }
  return false;
}

void Auth::failed(const std::string& client, const std::string& email, core::TimePoint now,
                  std::string_view kind) {
  std::lock_guard lock(mutex_);
  for (const auto& key : failure_keys(client, email, kind)) failures_.add(key, now);
}

void Auth::reconfigure_ipv6_prefix(int ipv6_prefix) {
  std::lock_guard lock(mutex_);
  settings_.ipv6_prefix = ipv6_prefix;
}

std::vector<core::TallyCount> Auth::take_failures() {
  std::lock_guard lock(mutex_);
  return failures_.take_outgoing();
}

void Auth::heard_failures(const std::vector<core::TallyCount>& counts, core::TimePoint now) {
  std::lock_guard lock(mutex_);
  for (const auto& c : counts) failures_.add_remote(c.key, c.count, now);
}

void Auth::sweep(core::TimePoint now) {
  std::lock_guard lock(mutex_);
  failures_.sweep(now);
}

bool Auth::may_mail_link(const std::string& client, const std::string& email) {
  const auto now = clock_.now();
  if (limited(client, email, now, "link:")) return false;
  failed(client, email, now, "link:");
  return true;
}

std::string Auth::issue_password_link(const store::Login& login, std::chrono::seconds ttl) {
  const auto token = random_token();
  store_.add_password_reset(token_hash(token), login.id, clock_.now() + ttl);
  return token;
}

std::optional<HttpResponse> Auth::reset_password(const std::string& token,
                                                 const std::string& password) {
  // The password first: one too short must not use the link up.
  try {
    check_password(password, "password");
  } catch (const core::Failure& f) {
    return json_error(400, "invalid_argument", f.what(), "password");
  }
  const auto login_id = store_.take_password_reset(token_hash(token), clock_.now());
  const auto login = login_id ? store_.login_by_id(*login_id) : std::nullopt;
  if (!login) {
    return json_error(400, "invalid_argument",
                      "this link is unknown, used or expired: ask for a new one", "token");
  }
  // Every session of the login ends with the old password.
  store_.set_login_password(login->id, hash_password(password),
                            core::Actor{"admin:" + login->email});
  return std::nullopt;
}

std::variant<Auth::Granted, HttpResponse> Auth::login(const std::string& email,
                                                      const std::string& password,
                                                      const std::string& client) {
  const auto now = clock_.now();
  if (limited(client, email, now)) {
    auto r = json_error(429, "rate_limited", "too many failed logins; try again later");
    r.headers.emplace_back("Retry-After", std::to_string(settings_.failure_window.count()));
    return r;
  }
  const auto login = store_.find_login(email);
  // Verify even when the email is unknown, so timing does not tell which emails exist.
  static const std::string dummy = hash_password("not a password");
  const bool ok = verify_password(login ? login->password_hash : dummy, password) && login &&
                  may_log_in(*login);
  if (!ok) {
    failed(client, email, now);
    return unauthorized();
  }
  Granted g;
  g.login = *login;
  const auto token = random_token();
  g.csrf = random_token();
  store_.add_session({token_hash(token), login->id, g.csrf, now + settings_.session_lifetime});
  g.cookie = std::string(kCookie) + "=" + token + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
             std::to_string(settings_.session_lifetime.count()) +
             (settings_.secure_cookie ? "; Secure" : "");
  return g;
}

std::optional<Caller> Auth::caller(const HttpRequest& request) {
  const auto token = cookie_value(request, kCookie);
  if (!token) return std::nullopt;
  const auto session = store_.find_session(token_hash(*token), clock_.now());
  if (!session) return std::nullopt;
  auto login = store_.login_by_id(session->login_id);
  if (!login || !may_log_in(*login)) return std::nullopt;
  return Caller{*login, session->csrf};
}

std::optional<HttpResponse> Auth::change_password(const Caller& caller, const std::string& current,
                                                  const std::string& next,
                                                  const std::string& client) {
  const auto now = clock_.now();
  if (limited(client, caller.login.email, now)) {
    return json_error(429, "rate_limited", "too many wrong passwords; try again later");
  }
  if (!verify_password(caller.login.password_hash, current)) {
    failed(client, caller.login.email, now);
    return json_error(400, "invalid_argument", "the current password is wrong", "current_password");
  }
  try {
    check_password(next, "new_password");
  } catch (const core::Failure& f) {
    return json_error(400, "invalid_argument", f.what(), "new_password");
  }
  store_.set_login_password(caller.login.id, hash_password(next),
                            core::Actor{"admin:" + caller.login.email});
  return std::nullopt;
}

bool Auth::csrf_ok(const HttpRequest& request, const Caller& caller) {
  if (request.method == "GET") return true;
  const auto it = request.headers.find("x-csrf-token");
  return it != request.headers.end() && it->second == caller.csrf;
}

std::string Auth::logout(const HttpRequest& request) {
  if (const auto token = cookie_value(request, kCookie)) store_.remove_session(token_hash(*token));
  return std::string(kCookie) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0" +
         (settings_.secure_cookie ? "; Secure" : "");
}

}  // namespace mailroster::admin
