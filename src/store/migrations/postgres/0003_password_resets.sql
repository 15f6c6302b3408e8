-- Links that set a login's password without the old one: "forgot my password", and the
-- invitation of a login made without a password. Kept by the SHA-256 of their token (the
-- link holds the token), used once, until they expire.
CREATE TABLE password_resets (
  token_hash TEXT    COLLATE "C" PRIMARY KEY,
  login_id   BIGINT  NOT NULL REFERENCES logins(id) ON DELETE CASCADE,
  created_at BIGINT  NOT NULL,
  expires_at BIGINT  NOT NULL
);
CREATE INDEX password_resets_login ON password_resets(login_id);
