DROP TABLE resident_next;
DROP INDEX tickets_one_active;
CREATE UNIQUE INDEX tickets_one_active ON tickets (municipality_code, resident_id)
    WHERE status = 'active';
DROP INDEX tickets_retired;
ALTER TABLE tickets DROP COLUMN retired_seq;
DROP INDEX resident_events_staged;
ALTER TABLE resident_events DROP COLUMN staged_seq;
DROP INDEX tickets_staged;
ALTER TABLE tickets DROP COLUMN staged_seq;
DROP INDEX residents_staged;
ALTER TABLE residents DROP COLUMN staged_seq;
DROP TABLE job_leases;
DROP INDEX import_jobs_published;
DROP INDEX import_jobs_seq;
ALTER TABLE import_jobs DROP COLUMN seq;
