-- Weekly SMTP Discovery reports already sent, so none is sent twice (also across restarts).
CREATE TABLE reports_sent (
  company_id INTEGER NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
  week       TEXT    NOT NULL,
  sent_at    INTEGER NOT NULL,
  recipients TEXT    NOT NULL,
  PRIMARY KEY (company_id, week)
);
CREATE INDEX users_created ON users(company_id, created_at);
CREATE INDEX aliases_created ON aliases(company_id, created_at);
