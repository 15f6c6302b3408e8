-- Directory sync per company and source (LDAP, Azure AD): settings and options as JSON (no
-- secrets), the bind password or client secret sealed with libsodium (base64; the key lives
-- in a file outside the database), the source's incremental state, and the last outcome.
CREATE TABLE directory_syncs (
  company_id      INTEGER NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
  kind            TEXT    NOT NULL CHECK (kind IN ('ldap', 'azure')),
  settings        TEXT    NOT NULL,
  options         TEXT    NOT NULL,
  frequency_hours INTEGER CHECK (frequency_hours IN (1, 3, 6, 12, 24)),  -- NULL: manual
  sealed_secret   TEXT    NOT NULL DEFAULT '',
  state           TEXT    NOT NULL DEFAULT '',
  last_attempt_at INTEGER,
  last_success_at INTEGER,
  last_error      TEXT    NOT NULL DEFAULT '',
  last_result     TEXT    NOT NULL DEFAULT '',
  PRIMARY KEY (company_id, kind)
);
