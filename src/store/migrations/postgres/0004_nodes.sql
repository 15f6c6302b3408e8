-- The serve processes sharing this database, as each says every scheduler tick (Store::node_seen):
-- `mailroster node list` shows which run, where, which version, and which holds the scheduler.
CREATE TABLE nodes (
  id         TEXT   PRIMARY KEY,  -- its scheduler lease name: host:pid:random:place
  host       TEXT   NOT NULL,
  version    TEXT   NOT NULL,
  serving    TEXT   NOT NULL,     -- its listeners
  started_at BIGINT NOT NULL,
  seen_at    BIGINT NOT NULL,
  expires_at BIGINT NOT NULL      -- not seen again by then: stopped without saying so
);
