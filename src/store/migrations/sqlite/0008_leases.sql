-- Scheduled work (directory syncs, expiry, reports) runs on one node at a time: the holder of
-- the lease, until it expires or is given up (Store::hold_lease).
CREATE TABLE leases (
  name       TEXT    PRIMARY KEY,
  holder     TEXT    NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
