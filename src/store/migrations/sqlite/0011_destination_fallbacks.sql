-- A domain's further mail servers, tried in order when the first (destination_host:port)
-- cannot take a session: core::Destination::str() of them, "mx2:25, mx3:25"; "" for none.
ALTER TABLE domains ADD COLUMN destination_fallbacks TEXT NOT NULL DEFAULT '';
