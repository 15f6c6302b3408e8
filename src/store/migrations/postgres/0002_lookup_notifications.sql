-- Every node keeps what its SMTP path reads for each message (domains, who owns an address,
-- discovery settings, directory sync frequencies, companies and their relay networks) in
-- memory, and forgets it when another node changes it: these triggers send a notification on
-- channel mailroster_lookups, with the schema as payload, when a statement changes one of those
-- tables. PostgreSQL delivers it at commit, once per transaction, to every listening
-- connection (Database::change_count). Discovered addresses are not watched: a delivery's count
-- changes them all the time, and the SMTP path treats them as unknown addresses.
CREATE FUNCTION lookups_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('mailroster_lookups', current_schema());
  RETURN NULL;
END $$;

CREATE TRIGGER companies_lookups AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON companies
  FOR EACH STATEMENT EXECUTE FUNCTION lookups_changed();
CREATE TRIGGER relay_networks_lookups
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON company_relay_networks
  FOR EACH STATEMENT EXECUTE FUNCTION lookups_changed();
CREATE TRIGGER domains_lookups AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON domains
  FOR EACH STATEMENT EXECUTE FUNCTION lookups_changed();
CREATE TRIGGER users_lookups AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
  FOR EACH STATEMENT EXECUTE FUNCTION lookups_changed();
CREATE TRIGGER aliases_lookups AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aliases
  FOR EACH STATEMENT EXECUTE FUNCTION lookups_changed();
CREATE TRIGGER invalid_lookups AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON invalid_addresses
  FOR EACH STATEMENT EXECUTE FUNCTION lookups_changed();
CREATE TRIGGER settings_lookups
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON discovery_settings
  FOR EACH STATEMENT EXECUTE FUNCTION lookups_changed();
-- A sync run records its outcome in its row: only a change of frequency matters here.
CREATE TRIGGER syncs_lookups
  AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF frequency_hours ON directory_syncs
  FOR EACH STATEMENT EXECUTE FUNCTION lookups_changed();
