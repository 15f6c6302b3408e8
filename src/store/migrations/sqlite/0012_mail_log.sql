-- The mail log: each recipient's fate in each SMTP transaction (core::MailLogEntry), kept for
-- [mail_log] retention. No foreign key, so that no insert pays for one: a batch keeps only the
-- entries of companies that still exist, and removing a company removes its entries.
CREATE TABLE mail_log (
  id         INTEGER PRIMARY KEY,
  at         INTEGER NOT NULL,
  company_id INTEGER NOT NULL,
  direction  TEXT    NOT NULL,  -- inbound | outbound
  stage      TEXT    NOT NULL,  -- mail | rcpt | data
  queue_id   TEXT    NOT NULL,
  client_ip  TEXT    NOT NULL,
  sender     TEXT    NOT NULL,
  recipient  TEXT    NOT NULL,
  result     TEXT    NOT NULL,  -- delivered | deferred | rejected | spam
  code       INTEGER NOT NULL,
  reply      TEXT    NOT NULL,
  server     TEXT    NOT NULL,
  size       INTEGER NOT NULL
);
CREATE INDEX mail_log_company ON mail_log(company_id, id);
