-- Source ids (objectGUID, entryUUID, Graph ids: random) are matched in memory by a sync run
-- (Store::source_ids): their index made every bulk insert of users several times dearer than
-- all the other indexes together, for lookups a run does once.
DROP INDEX IF EXISTS users_source_id;
