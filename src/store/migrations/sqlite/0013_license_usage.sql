-- Licensed users per company and day (UTC), as the maintenance job counts them
-- (core::LicenseUsage): the day's last count and its highest. No foreign key: a removed
-- company's days stay, under the name it had, for the month's bill.
CREATE TABLE license_usage (
  company_id     INTEGER NOT NULL,
  day            TEXT    NOT NULL,  -- YYYY-MM-DD
  company        TEXT    NOT NULL,
  users          INTEGER NOT NULL,
  peak_users     INTEGER NOT NULL,
  end_users      INTEGER NOT NULL,
  silent_users   INTEGER NOT NULL,
  functional     INTEGER NOT NULL,
  from_discovery INTEGER NOT NULL,
  counted_at     INTEGER NOT NULL,
  PRIMARY KEY (company_id, day)
);
CREATE INDEX license_usage_day ON license_usage(day);
