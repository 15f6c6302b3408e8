// Who is calling the admin API: logins with argon2id passwords (libsodium), sessions in an
// HttpOnly, SameSite=Strict cookie (Secure under TLS) whose token is stored only hashed, a
// CSRF token required on every change, and a login rate limit per client address and per
// email. Silent users and functional accounts cannot log in, even with a login row.
#pragma once

#include <array>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "admin/http_server.hpp"
#include "core/clock.hpp"
#include "core/window_counts.hpp"
#include "store/store.hpp"

namespace mailroster::admin {

std::string hash_password(const std::string& password);
// 32 random bytes, base64url without padding: session and CSRF tokens, password links.
std::string random_token();
bool verify_password(const std::string& hash, const std::string& password);

// Every login's password, whoever sets it (CLI or API): at least 10 characters. Throws
// core::Failure (invalid_argument, field `field`) otherwise.
void check_password(const std::string& password, const std::string& field = "password");

// A company administrator's or end user's login, made by the same rules from the CLI and the
// API: the email is a mail address; a company administrator needs company_id; an end user's
// email is the address of a user (of company_id, when given) whose role is end_user, since
// silent users and functional accounts cannot log in. Throws core::Failure.
store::Login company_login(store::Store& store, const std::string& email, store::LoginRole role,
                           std::optional<core::Id> company_id, const std::string& password);

struct AuthSettings {
  bool secure_cookie = false;  // set when users reach the admin server by HTTPS
  std::chrono::seconds session_lifetime{std::chrono::hours(12)};
  int max_failures = 5;  // per client network and per email, in the window
  int ipv6_prefix = 64;  // an IPv6 client's network (core::client_network; [smtp] ipv6_prefix)
  std::chrono::seconds failure_window{std::chrono::minutes(15)};
};

struct Caller {
  store::Login login;
  std::string csrf;
  bool is_operator() const { return login.role == store::LoginRole::operator_role; }
};

class Auth {
 public:
  Auth(store::Store& store, const core::Clock& clock, AuthSettings settings = {});

  struct Granted {
    store::Login login;
    std::string cookie;  // Set-Cookie value
    std::string csrf;
  };
  // Fails with 401 (wrong email or password, or may not log in) or 429 (too many failures)
  // as an HttpResponse; a Granted session otherwise.
  std::variant<Granted, HttpResponse> login(const std::string& email, const std::string& password,
                                            const std::string& client);
  // The caller of a request (its session cookie), or nullopt.
  std::optional<Caller> caller(const HttpRequest& request);
  // Whether a change (any method but GET) carries the caller's CSRF token in X-CSRF-Token;
  // a GET always does.
  static bool csrf_ok(const HttpRequest& request, const Caller& caller);
  // Ends the request's session; the Set-Cookie value that clears the cookie.
  std::string logout(const HttpRequest& request);
  // The caller's own password changed, when `current` is right (wrong ones count as failed
  // logins, with their limit): every session of the login ends, this one too. nullopt when
  // done, else the answer (400 naming the field, 429).
  std::optional<HttpResponse> change_password(const Caller& caller, const std::string& current,
                                              const std::string& next, const std::string& client);

  // Password links ("forgot my password", invitations). A new link's token for the login,
  // valid for ttl; only its hash is stored.
  std::string issue_password_link(const store::Login& login, std::chrono::seconds ttl);
  // Whether a link may be mailed to this email for this client now, counted: as many as failed
  // logins are allowed, per client address and per email in the same window (no mail bombing).
  bool may_mail_link(const std::string& client, const std::string& email);
  // Sets the password of the link's login and uses the link up: nullopt when done (every
  // session of the login ends), else 400 naming the field (password too short: the link stays
  // usable; token unknown, used or expired).
  std::optional<HttpResponse> reset_password(const std::string& token, const std::string& password);

  // Silent users and functional accounts cannot log in, even with a login row.
  bool may_log_in(const store::Login& login);

  static constexpr const char* kCookie = "mailroster_session";

  // The failure counts, shared with the other nodes of the database (serve, every second): what
  // this node counted since the previous call; what another node counted; forgetting the
  // clients and emails whose window emptied.
  std::vector<core::TallyCount> take_failures();
  void heard_failures(const std::vector<core::TallyCount>& counts, core::TimePoint now);
  void sweep(core::TimePoint now);
  // SIGHUP: how wide an IPv6 client's network is counted from now on.
  void reconfigure_ipv6_prefix(int ipv6_prefix);

 private:
  // The failure limit, kept per client network (an IPv4 address, an IPv6 /64: a guesser may
  // use any address of its /64) and per email: whether either has reached it, and a failure
  // counted against both. kind keeps other counts apart ("link:": password mails).
  std::array<std::string, 2> failure_keys(const std::string& client, const std::string& email,
                                          std::string_view kind) const;
  bool limited(const std::string& client, const std::string& email, core::TimePoint now,
               std::string_view kind = "");
  void failed(const std::string& client, const std::string& email, core::TimePoint now,
              std::string_view kind = "");

  store::Store& store_;
  const core::Clock& clock_;
  AuthSettings settings_;
  std::mutex mutex_;
  core::WindowCounts failures_;  // "client:<network>", "email:<email>"; "link:" in front for mails
};

}  // namespace mailroster::admin
