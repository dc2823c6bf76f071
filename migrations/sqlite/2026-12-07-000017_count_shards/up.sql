-- The counts' shards (see the PostgreSQL migration of the same name): on
-- SQLite, where one transaction writes at a time, every count stays in
-- shard 0, so the key alone stays the primary key.
ALTER TABLE stat_daily ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE stat_monthly ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE stat_demographic ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE stat_municipal ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE stat_open ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE dose_progress ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
