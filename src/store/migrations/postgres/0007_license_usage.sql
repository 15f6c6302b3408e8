-- Licensed users per company and day (UTC), as the maintenance job counts them
-- (core::LicenseUsage): the day's last count and its highest. No foreign key: a removed
-- company's days stay, under the name it had, for the month's bill.
CREATE TABLE license_usage (
  company_id     BIGINT NOT NULL,
  day            TEXT   COLLATE "C" NOT NULL,  -- YYYY-MM-DD
  company        TEXT   COLLATE "C" NOT NULL,
  users          BIGINT NOT NULL,
  peak_users     BIGINT NOT NULL,
  end_users      BIGINT NOT NULL,
  silent_users   BIGINT NOT NULL,
  functional     BIGINT NOT NULL,
  from_discovery BIGINT NOT NULL,
  counted_at     BIGINT NOT NULL,
  PRIMARY KEY (company_id, day)
);
CREATE INDEX license_usage_day ON license_usage(day);
