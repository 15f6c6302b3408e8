-- The two references to users that had no index of their own: every removal of a user (an
-- import or sync deleting users, a domain removed) made SQLite scan both tables for rows to
-- change. With a few thousand discovered addresses, deleting a million users took hours
-- instead of seconds (SQLite: "indices on child keys").
CREATE INDEX discovered_suggested_alias_of ON discovered_addresses(suggested_alias_of);
CREATE INDEX logins_user ON logins(user_id);
-- And the last reference without one, so that every foreign key has its index (a test sees to it).
CREATE INDEX logins_company ON logins(company_id);
