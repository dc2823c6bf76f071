DROP TABLE import_jobs;
DROP TABLE doses;
DROP TABLE resident_events;
DROP TABLE tickets;
DROP INDEX residents_birth_bucket;
ALTER TABLE residents DROP COLUMN birth_bucket;
ALTER TABLE residents DROP COLUMN content_mac;
