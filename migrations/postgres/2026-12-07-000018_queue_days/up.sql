-- The 要確認 queue's history, kept in the same transaction as every event
-- that moves a dose in or out of the queue: per municipality, day in Japan
-- and the rules the dose was queued for (its quality flags), the doses that
-- entered the queue that day less those that left it. The municipality's
-- statistics page reads a few hundred rows for its 60 days instead of the
-- events of every dose that waited in them.
--
-- A dose enters with its first 'queued' event and leaves with the first
-- event that settles it (confirmed, corrected, deleted, rejected); an event
-- of a dose that never waited moves nothing. Kept in shards like the other
-- counts (migration 000017).
CREATE TABLE queue_days (
    municipality_code TEXT NOT NULL,
    day DATE NOT NULL,
    flags TEXT NOT NULL,
    shard SMALLINT NOT NULL DEFAULT 0,
    n BIGINT NOT NULL,
    PRIMARY KEY (municipality_code, day, flags, shard)
);

CREATE FUNCTION dose_events_queue_day() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM dose_events e
               WHERE e.municipality_code = NEW.municipality_code AND e.dose_id = NEW.dose_id
                 AND e.id <> NEW.id AND (e.kind = 'queued') = (NEW.kind = 'queued')) THEN
        RETURN NULL;
    END IF;
    IF NEW.kind <> 'queued' AND NOT EXISTS (
        SELECT 1 FROM dose_events e
        WHERE e.municipality_code = NEW.municipality_code AND e.dose_id = NEW.dose_id
          AND e.kind = 'queued') THEN
        RETURN NULL;
    END IF;
    INSERT INTO queue_days (municipality_code, day, flags, shard, n)
        SELECT NEW.municipality_code, CAST(NEW.at + interval '9 hours' AS DATE),
               coalesce(d.quality_flags, ''), vrs_count_shard(),
               CASE WHEN NEW.kind = 'queued' THEN 1 ELSE -1 END
        FROM doses d WHERE d.municipality_code = NEW.municipality_code AND d.id = NEW.dose_id
        ON CONFLICT (municipality_code, day, flags, shard) DO UPDATE SET n = queue_days.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE TRIGGER dose_events_queue_day AFTER INSERT ON dose_events
    FOR EACH ROW EXECUTE FUNCTION dose_events_queue_day();

-- The history so far is counted from the events already written by the
-- recount this marker asks for (`db::settle_counts`, at the next start):
-- a migration's own query of a tenant table would see no rows under
-- PostgreSQL's row-level security. The marker goes only when the recount
-- has finished, so one cut short runs again.
CREATE TABLE counts_owed (
    since TIMESTAMP NOT NULL PRIMARY KEY
);
INSERT INTO counts_owed (since) VALUES (CURRENT_TIMESTAMP);

ALTER TABLE queue_days ENABLE ROW LEVEL SECURITY;
ALTER TABLE queue_days FORCE ROW LEVEL SECURITY;
CREATE POLICY scoped ON queue_days USING (vrs_scope_allows(municipality_code))
    WITH CHECK (vrs_scope_allows(municipality_code));
