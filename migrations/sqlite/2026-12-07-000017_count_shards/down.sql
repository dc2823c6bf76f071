ALTER TABLE dose_progress DROP COLUMN shard;
ALTER TABLE stat_open DROP COLUMN shard;
ALTER TABLE stat_municipal DROP COLUMN shard;
ALTER TABLE stat_demographic DROP COLUMN shard;
ALTER TABLE stat_monthly DROP COLUMN shard;
ALTER TABLE stat_daily DROP COLUMN shard;
