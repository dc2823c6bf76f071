-- A resident import writes in short transactions, so that no other
-- municipality waits for its writes, yet readers see none of a file until
-- all of it is stored. Each import of a municipality takes the next
-- sequence number; what it writes carries that number, and readers see a
-- row only once the import with that number has succeeded (the newest
-- succeeded sequence number, read in the same statement). A job that did
-- not succeed leaves rows no reader sees, removed before the next import.
ALTER TABLE import_jobs ADD COLUMN seq BIGINT;
CREATE UNIQUE INDEX import_jobs_seq ON import_jobs (municipality_code, seq);
CREATE INDEX import_jobs_published ON import_jobs (municipality_code, status, seq);

-- Which server process runs each unfinished job, and when it last showed
-- it was alive: a job whose process stopped is found and closed (by the
-- same server when it starts again, by any server once the lease is old).
-- No personal data, and read across municipalities, so a platform table.
CREATE TABLE job_leases (
    job_id TEXT PRIMARY KEY NOT NULL,
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    runner TEXT NOT NULL,
    heartbeat_at TIMESTAMP NOT NULL
);

-- Residents and tickets an import inserted, and events it wrote.
ALTER TABLE residents ADD COLUMN staged_seq BIGINT;
CREATE INDEX residents_staged ON residents (municipality_code, staged_seq)
    WHERE staged_seq IS NOT NULL;
ALTER TABLE tickets ADD COLUMN staged_seq BIGINT;
CREATE INDEX tickets_staged ON tickets (municipality_code, staged_seq)
    WHERE staged_seq IS NOT NULL;
ALTER TABLE resident_events ADD COLUMN staged_seq BIGINT;
CREATE INDEX resident_events_staged ON resident_events (municipality_code, staged_seq)
    WHERE staged_seq IS NOT NULL;

-- A ticket an import replaces stays active until the import succeeds; only
-- tickets not being replaced count towards one active ticket per resident.
ALTER TABLE tickets ADD COLUMN retired_seq BIGINT;
CREATE INDEX tickets_retired ON tickets (municipality_code, retired_seq)
    WHERE retired_seq IS NOT NULL;
DROP INDEX tickets_one_active;
CREATE UNIQUE INDEX tickets_one_active ON tickets (municipality_code, resident_id)
    WHERE status = 'active' AND retired_seq IS NULL;

-- The attributes an import gives a resident already stored, read in place
-- of the stored ones once the import has succeeded, and moved into the
-- resident's row before the next import. The three indexed values are
-- kept only when the import changes one of them (`reindexed`), so that a
-- month's changes of address add no entries to random-keyed indexes.
CREATE TABLE resident_next (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    resident_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    reindexed BOOLEAN NOT NULL,
    addressee_index BYTEA,
    my_number_index BYTEA,
    addressee_number_sealed BYTEA NOT NULL,
    my_number_sealed BYTEA,
    name_kanji_sealed BYTEA NOT NULL,
    name_kana_sealed BYTEA NOT NULL,
    birth_date_sealed BYTEA NOT NULL,
    sex_sealed BYTEA NOT NULL,
    address_sealed BYTEA,
    content_mac BYTEA,
    birth_bucket BYTEA,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (municipality_code, resident_id),
    FOREIGN KEY (municipality_code, resident_id) REFERENCES residents (municipality_code, id)
);
CREATE INDEX resident_next_addressee ON resident_next (municipality_code, addressee_index)
    WHERE addressee_index IS NOT NULL;
CREATE INDEX resident_next_my_number ON resident_next (municipality_code, my_number_index)
    WHERE my_number_index IS NOT NULL;
CREATE INDEX resident_next_birth_bucket ON resident_next (municipality_code, birth_bucket)
    WHERE birth_bucket IS NOT NULL;
CREATE INDEX resident_next_seq ON resident_next (municipality_code, seq);

ALTER TABLE resident_next ENABLE ROW LEVEL SECURITY;
ALTER TABLE resident_next FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON resident_next
    USING (municipality_code = current_setting('vrs.municipality', true))
    WITH CHECK (municipality_code = current_setting('vrs.municipality', true));
