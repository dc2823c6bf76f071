-- The 要確認 queue's history (see the PostgreSQL migration of the same
-- name): per municipality, day in Japan and the rules the dose was queued
-- for, the doses that entered the queue that day less those that left it.
-- One transaction writes at a time here: every count stays in shard 0.
CREATE TABLE queue_days (
    municipality_code TEXT NOT NULL,
    day DATE NOT NULL,
    flags TEXT NOT NULL,
    shard SMALLINT NOT NULL DEFAULT 0,
    n BIGINT NOT NULL,
    PRIMARY KEY (municipality_code, day, flags)
);

CREATE TRIGGER dose_events_queue_day AFTER INSERT ON dose_events
WHEN NOT EXISTS (
        SELECT 1 FROM dose_events e
        WHERE e.municipality_code = NEW.municipality_code AND e.dose_id = NEW.dose_id
          AND e.id <> NEW.id AND (e.kind = 'queued') = (NEW.kind = 'queued'))
    AND (NEW.kind = 'queued' OR EXISTS (
        SELECT 1 FROM dose_events e
        WHERE e.municipality_code = NEW.municipality_code AND e.dose_id = NEW.dose_id
          AND e.kind = 'queued'))
BEGIN
    INSERT INTO queue_days (municipality_code, day, flags, n)
        SELECT NEW.municipality_code, date(NEW.at, '+9 hours'), coalesce(d.quality_flags, ''),
               CASE WHEN NEW.kind = 'queued' THEN 1 ELSE -1 END
        FROM doses d WHERE d.municipality_code = NEW.municipality_code AND d.id = NEW.dose_id
        ON CONFLICT (municipality_code, day, flags) DO UPDATE SET n = n + excluded.n;
END;

-- The history so far is counted from the events already written by the
-- recount this marker asks for (`db::settle_counts`, at the next start):
-- a migration's own query of a tenant table would see no rows under
-- PostgreSQL's row-level security. The marker goes only when the recount
-- has finished, so one cut short runs again.
CREATE TABLE counts_owed (
    since TIMESTAMP NOT NULL PRIMARY KEY
);
INSERT INTO counts_owed (since) VALUES (CURRENT_TIMESTAMP);
