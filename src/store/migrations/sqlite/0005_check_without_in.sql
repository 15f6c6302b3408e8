-- CHECK (x IN ('a', 'b', 'c')) makes SQLite build a temporary b-tree of the list on every row
-- it checks (three values or more), which was a third of the cost of inserting a user. The same
-- checks as comparisons; the tables are rebuilt the documented way (foreign keys are off while
-- migrations run and checked before each commit).

CREATE TABLE users_new (
  id          INTEGER PRIMARY KEY,
  company_id  INTEGER NOT NULL REFERENCES companies(id) ON DELETE RESTRICT,
  domain_id   INTEGER NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
  address     TEXT    NOT NULL,
  address_key TEXT    NOT NULL UNIQUE,
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
CREATE INDEX users_source_id ON users(company_id, source, source_id) WHERE source_id <> '';
CREATE INDEX users_created ON users(company_id, created_at);

-- The other claim triggers name address_claims: dropped while it is rebuilt, then made again.
DROP TRIGGER aliases_claim_insert;
DROP TRIGGER aliases_claim_delete;
DROP TRIGGER invalid_claim_insert;
DROP TRIGGER invalid_claim_delete;
CREATE TABLE address_claims_new (
  address_key TEXT PRIMARY KEY,
  kind        TEXT NOT NULL CHECK (kind = 'user' OR kind = 'alias' OR kind = 'invalid')
) WITHOUT ROWID;
INSERT INTO address_claims_new SELECT address_key, kind FROM address_claims;
DROP TABLE address_claims;
ALTER TABLE address_claims_new RENAME TO address_claims;

-- DROP TABLE users took its triggers with it.
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
