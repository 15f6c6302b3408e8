-- Links that set a login's password without the old one: "forgot my password", and the
-- invitation of a login made without a password. Kept by the SHA-256 of their token (the
-- link holds the token), used once, until they expire.
CREATE TABLE password_resets (
  token_hash TEXT    PRIMARY KEY,
  login_id   INTEGER NOT NULL REFERENCES logins(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX password_resets_login ON password_resets(login_id);
