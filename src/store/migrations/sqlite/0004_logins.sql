-- Who may log in to the admin API and web UI: operators (every company), company
-- administrators (their company), end users (their own account; the row points at the
-- user). Passwords are libsodium argon2id strings. Sessions are kept by the SHA-256 of their
-- token (the cookie), never the token itself, with their CSRF token and expiry.
CREATE TABLE logins (
  id            INTEGER PRIMARY KEY,
  email         TEXT    NOT NULL UNIQUE,
  password_hash TEXT    NOT NULL,
  role          TEXT    NOT NULL CHECK (role IN ('operator', 'company_admin', 'end_user')),
  company_id    INTEGER REFERENCES companies(id) ON DELETE CASCADE,
  user_id       INTEGER REFERENCES users(id) ON DELETE CASCADE,
  created_at    INTEGER NOT NULL,
  CHECK ((role = 'operator') = (company_id IS NULL)),
  CHECK ((role = 'end_user') = (user_id IS NOT NULL))
);

CREATE TABLE sessions (
  token_hash TEXT    PRIMARY KEY,
  login_id   INTEGER NOT NULL REFERENCES logins(id) ON DELETE CASCADE,
  csrf       TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_login ON sessions(login_id);
