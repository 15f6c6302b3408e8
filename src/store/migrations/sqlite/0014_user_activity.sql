-- When each user last had mail: a message delivered to it (or to one of its aliases), or one it
-- sent out, as the SMTP path records them (batched, at most once an hour per user and node).
-- Kept apart from users: it follows the mail flow, not the account, is never audited, and its
-- writes must not look like changes of the users to the SMTP lookups.
CREATE TABLE user_activity (
  user_id      INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  last_mail_at INTEGER NOT NULL
);
