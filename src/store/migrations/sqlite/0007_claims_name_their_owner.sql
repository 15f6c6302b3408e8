-- Each address claim names its owner, the row of its kind, so that users and aliases need no
-- UNIQUE index of their own on address_key: the claims' primary key already keeps an address
-- to one owner (the triggers claim every row, and refuse a second claim), and a lookup by
-- address goes from the claim to the row by its id. A bulk import wrote every user's and
-- alias's key into one b-tree more than it needed. The tables are rebuilt the documented way
-- (foreign keys are off while migrations run and checked before each commit).

DROP TRIGGER users_claim_insert;
DROP TRIGGER users_claim_update;
DROP TRIGGER users_claim_delete;
DROP TRIGGER aliases_claim_insert;
DROP TRIGGER aliases_claim_delete;
DROP TRIGGER invalid_claim_insert;
DROP TRIGGER invalid_claim_delete;

CREATE TABLE address_claims_new (
  address_key TEXT    PRIMARY KEY,
  kind        TEXT    NOT NULL CHECK (kind = 'user' OR kind = 'alias' OR kind = 'invalid'),
  owner       INTEGER NOT NULL  -- users.id, aliases.id or invalid_addresses.id, by kind
) WITHOUT ROWID;
INSERT INTO address_claims_new SELECT address_key, 'user', id FROM users;
INSERT INTO address_claims_new SELECT address_key, 'alias', id FROM aliases;
INSERT INTO address_claims_new SELECT address_key, 'invalid', id FROM invalid_addresses;
DROP TABLE address_claims;
ALTER TABLE address_claims_new RENAME TO address_claims;

CREATE TABLE users_new (
  id          INTEGER PRIMARY KEY,
  company_id  INTEGER NOT NULL REFERENCES companies(id) ON DELETE RESTRICT,
  domain_id   INTEGER NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
  address     TEXT    NOT NULL,
  address_key TEXT    NOT NULL,  -- unique: its claim's primary key
  first_name  TEXT    NOT NULL DEFAULT '',
  surname     TEXT    NOT NULL DEFAULT '',
  role        TEXT    NOT NULL
              CHECK (role = 'end_user' OR role = 'silent_user' OR role = 'functional'),
  source      TEXT    NOT NULL
              CHECK (source = 'manual' OR source = 'csv' OR source = 'ldap' OR source = 'azure'
                     OR source = 'discovery'),
  source_id   TEXT    NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
INSERT INTO users_new SELECT id, company_id, domain_id, address, address_key, first_name,
  surname, role, source, source_id, created_at, updated_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_company ON users(company_id, address_key);
CREATE INDEX users_domain ON users(domain_id);
CREATE INDEX users_created ON users(company_id, created_at);

CREATE TABLE aliases_new (
  id          INTEGER PRIMARY KEY,
  company_id  INTEGER NOT NULL REFERENCES companies(id) ON DELETE RESTRICT,
  domain_id   INTEGER NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
  user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  address     TEXT    NOT NULL,
  address_key TEXT    NOT NULL,  -- unique: its claim's primary key
  created_at  INTEGER NOT NULL
);
INSERT INTO aliases_new SELECT id, company_id, domain_id, user_id, address, address_key,
  created_at FROM aliases;
DROP TABLE aliases;
ALTER TABLE aliases_new RENAME TO aliases;
CREATE INDEX aliases_user ON aliases(user_id);
CREATE INDEX aliases_company ON aliases(company_id);
CREATE INDEX aliases_domain ON aliases(domain_id);
CREATE INDEX aliases_created ON aliases(company_id, created_at);

CREATE TRIGGER users_claim_insert AFTER INSERT ON users BEGIN
  INSERT INTO address_claims(address_key, kind, owner) VALUES (NEW.address_key, 'user', NEW.id);
END;
CREATE TRIGGER users_claim_update AFTER UPDATE OF address_key ON users BEGIN
  UPDATE address_claims SET address_key = NEW.address_key WHERE address_key = OLD.address_key;
END;
CREATE TRIGGER users_claim_delete AFTER DELETE ON users BEGIN
  DELETE FROM address_claims WHERE address_key = OLD.address_key;
END;
CREATE TRIGGER aliases_claim_insert AFTER INSERT ON aliases BEGIN
  INSERT INTO address_claims(address_key, kind, owner) VALUES (NEW.address_key, 'alias', NEW.id);
END;
CREATE TRIGGER aliases_claim_delete AFTER DELETE ON aliases BEGIN
  DELETE FROM address_claims WHERE address_key = OLD.address_key;
END;
CREATE TRIGGER invalid_claim_insert AFTER INSERT ON invalid_addresses BEGIN
  INSERT INTO address_claims(address_key, kind, owner)
    VALUES (NEW.address_key, 'invalid', NEW.id);
END;
CREATE TRIGGER invalid_claim_delete AFTER DELETE ON invalid_addresses BEGIN
  DELETE FROM address_claims WHERE address_key = OLD.address_key;
END;
