-- mailroster schema, version 1. Times are Unix seconds (UTC).
-- Every address has a lower-cased comparison key; address_claims makes
-- "an address is at most one of user / alias / invalid" a database constraint.

CREATE TABLE companies (
  id            INTEGER PRIMARY KEY,
  name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
  tech_contact  TEXT    NOT NULL DEFAULT '',
  admin_contact TEXT    NOT NULL DEFAULT '',
  created_at    INTEGER NOT NULL
);

CREATE TABLE company_relay_networks (
  company_id INTEGER NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
  position   INTEGER NOT NULL,
  cidr       TEXT    NOT NULL,
  PRIMARY KEY (company_id, position)
);

CREATE TABLE domains (
  id               INTEGER PRIMARY KEY,
  company_id       INTEGER NOT NULL REFERENCES companies(id) ON DELETE RESTRICT,
  name             TEXT    NOT NULL UNIQUE,
  destination_host TEXT    NOT NULL,
  destination_port INTEGER NOT NULL CHECK (destination_port BETWEEN 1 AND 65535),
  created_at       INTEGER NOT NULL
);
CREATE INDEX domains_company ON domains(company_id);

CREATE TABLE address_claims (
  address_key TEXT PRIMARY KEY,
  kind        TEXT NOT NULL CHECK (kind IN ('user', 'alias', 'invalid'))
) WITHOUT ROWID;

CREATE TABLE users (
  id          INTEGER PRIMARY KEY,
  company_id  INTEGER NOT NULL REFERENCES companies(id) ON DELETE RESTRICT,
  domain_id   INTEGER NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
  address     TEXT    NOT NULL,
  address_key TEXT    NOT NULL UNIQUE,
  first_name  TEXT    NOT NULL DEFAULT '',
  surname     TEXT    NOT NULL DEFAULT '',
  role        TEXT    NOT NULL CHECK (role IN ('end_user', 'silent_user', 'functional')),
  source      TEXT    NOT NULL CHECK (source IN ('manual', 'csv', 'ldap', 'azure', 'discovery')),
  source_id   TEXT    NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE INDEX users_company ON users(company_id, address_key);
CREATE INDEX users_domain ON users(domain_id);
CREATE INDEX users_source_id ON users(company_id, source, source_id) WHERE source_id <> '';

CREATE TABLE aliases (
  id          INTEGER PRIMARY KEY,
  company_id  INTEGER NOT NULL REFERENCES companies(id) ON DELETE RESTRICT,
  domain_id   INTEGER NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  address     TEXT    NOT NULL,
  address_key TEXT    NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL
);
CREATE INDEX aliases_user ON aliases(user_id);
CREATE INDEX aliases_company ON aliases(company_id);
CREATE INDEX aliases_domain ON aliases(domain_id);

CREATE TABLE invalid_addresses (
  id          INTEGER PRIMARY KEY,
  company_id  INTEGER NOT NULL REFERENCES companies(id) ON DELETE RESTRICT,
  domain_id   INTEGER NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
  address     TEXT    NOT NULL,
  address_key TEXT    NOT NULL UNIQUE,
  reason      TEXT    NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL
);
CREATE INDEX invalid_company ON invalid_addresses(company_id);
CREATE INDEX invalid_domain ON invalid_addresses(domain_id);

CREATE TABLE discovered_addresses (
  id                 INTEGER PRIMARY KEY,
  company_id         INTEGER NOT NULL REFERENCES companies(id) ON DELETE RESTRICT,
  domain_id          INTEGER NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
  address            TEXT    NOT NULL,
  address_key        TEXT    NOT NULL UNIQUE,
  first_seen         INTEGER NOT NULL,
  outbound_messages  INTEGER NOT NULL DEFAULT 0,
  discovered_at      INTEGER,
  notifications_sent INTEGER NOT NULL DEFAULT 0,
  suggested_alias_of INTEGER REFERENCES users(id) ON DELETE SET NULL
);
CREATE INDEX discovered_company ON discovered_addresses(company_id);
CREATE INDEX discovered_domain ON discovered_addresses(domain_id);

CREATE TABLE discovered_inbound (
  discovered_id INTEGER NOT NULL REFERENCES discovered_addresses(id) ON DELETE CASCADE,
  at            INTEGER NOT NULL
);
CREATE INDEX discovered_inbound_by_address ON discovered_inbound(discovered_id, at);

CREATE TABLE discovery_settings (
  company_id           INTEGER PRIMARY KEY REFERENCES companies(id) ON DELETE CASCADE,
  enabled              INTEGER NOT NULL,
  default_role         TEXT    NOT NULL CHECK (default_role IN ('end_user', 'silent_user')),
  inbound_threshold    INTEGER NOT NULL CHECK (inbound_threshold >= 1),
  window_days          INTEGER NOT NULL CHECK (window_days >= 1),
  notification_weeks   INTEGER NOT NULL CHECK (notification_weeks BETWEEN 1 AND 52),
  expired_to_new_user  INTEGER NOT NULL,
  auto_add_aliases     INTEGER NOT NULL,
  auto_add_outbound    INTEGER NOT NULL,
  report_new_users     INTEGER NOT NULL,
  report_new_aliases   INTEGER NOT NULL,
  report_include_admin INTEGER NOT NULL
);

-- No foreign key: the trail outlives what it describes.
CREATE TABLE audit_events (
  id         INTEGER PRIMARY KEY,
  at         INTEGER NOT NULL,
  company_id INTEGER,
  actor      TEXT    NOT NULL,
  action     TEXT    NOT NULL,
  object     TEXT    NOT NULL,
  before     TEXT,
  after      TEXT
);
CREATE INDEX audit_company ON audit_events(company_id, id);

-- One claim per address key, kept by triggers so that no code path can skip it.
CREATE TRIGGER users_claim_insert AFTER INSERT ON users BEGIN
  INSERT INTO address_claims(address_key, kind) VALUES (NEW.address_key, 'user');
END;
CREATE TRIGGER users_claim_update AFTER UPDATE OF address_key ON users BEGIN
  UPDATE address_claims SET address_key = NEW.address_key WHERE address_key = OLD.address_key;
END;
CREATE TRIGGER users_claim_delete AFTER DELETE ON users BEGIN
  DELETE FROM address_claims WHERE address_key = OLD.address_key;
END;
CREATE TRIGGER aliases_claim_insert AFTER INSERT ON aliases BEGIN
  INSERT INTO address_claims(address_key, kind) VALUES (NEW.address_key, 'alias');
END;
CREATE TRIGGER aliases_claim_delete AFTER DELETE ON aliases BEGIN
  DELETE FROM address_claims WHERE address_key = OLD.address_key;
END;
CREATE TRIGGER invalid_claim_insert AFTER INSERT ON invalid_addresses BEGIN
  INSERT INTO address_claims(address_key, kind) VALUES (NEW.address_key, 'invalid');
END;
CREATE TRIGGER invalid_claim_delete AFTER DELETE ON invalid_addresses BEGIN
  DELETE FROM address_claims WHERE address_key = OLD.address_key;
END;
