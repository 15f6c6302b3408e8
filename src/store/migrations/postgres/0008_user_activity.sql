-- When each user last had mail: a message delivered to it (or to one of its aliases), or one it
-- sent out, as the SMTP path records them (batched, at most once an hour per user and node).
-- Kept apart from users: it follows the mail flow, not the account, is never audited, and no
-- trigger tells the nodes' SMTP lookups of its writes.
CREATE TABLE user_activity (
  user_id      BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  last_mail_at BIGINT NOT NULL
);
