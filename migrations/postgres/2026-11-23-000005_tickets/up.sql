-- Residents gain a keyed fingerprint of their registered attributes (so a
-- re-import of an unchanged line writes nothing) and a coarse keyed bucket
-- of the birth date (12 bits: many dates share one), through which staff
-- find a person by name and date of birth by opening only that bucket.
ALTER TABLE residents ADD COLUMN content_mac BYTEA;
ALTER TABLE residents ADD COLUMN birth_bucket BYTEA;
CREATE INDEX residents_birth_bucket ON residents (municipality_code, birth_bucket);

-- Vaccination tickets. A number is unique within its municipality for ever;
-- a reissued ticket invalidates the old one, which stays for the record.
CREATE TABLE tickets (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    ticket_number TEXT NOT NULL CHECK (length(ticket_number) = 10),
    resident_id TEXT NOT NULL,
    kind INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 9),
    dose_number INTEGER NOT NULL CHECK (dose_number BETWEEN 1 AND 9),
    status TEXT NOT NULL CHECK (status IN ('active', 'invalidated')),
    issued_at TIMESTAMP NOT NULL,
    issued_by TEXT NOT NULL,
    invalidated_at TIMESTAMP,
    invalidated_reason TEXT,
    PRIMARY KEY (municipality_code, ticket_number),
    FOREIGN KEY (municipality_code, resident_id) REFERENCES residents (municipality_code, id)
);
CREATE INDEX tickets_resident ON tickets (municipality_code, resident_id);
CREATE UNIQUE INDEX tickets_one_active ON tickets (municipality_code, resident_id)
    WHERE status = 'active';

-- What staff changed on a resident and why. The reason and the changed
-- values are sealed like the record itself.
CREATE TABLE resident_events (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    id TEXT NOT NULL,
    resident_id TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL,
    account_id TEXT,
    detail_sealed BYTEA,
    PRIMARY KEY (municipality_code, id),
    FOREIGN KEY (municipality_code, resident_id) REFERENCES residents (municipality_code, id)
);
CREATE INDEX resident_events_resident ON resident_events (municipality_code, resident_id, at);

-- Doses, in the partition of the municipality that issued the ticket.
CREATE TABLE doses (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    id TEXT NOT NULL,
    resident_id TEXT NOT NULL,
    dose_number INTEGER NOT NULL CHECK (dose_number BETWEEN 1 AND 9),
    administered_on DATE NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    ticket_number TEXT,
    site_municipality_code TEXT,
    site_name TEXT,
    product_code TEXT NOT NULL,
    lot_number TEXT,
    origin TEXT NOT NULL CHECK (origin IN ('recorded', 'transferred')),
    origin_municipality_code TEXT,
    recorded_by TEXT,
    status TEXT NOT NULL,
    PRIMARY KEY (municipality_code, id),
    FOREIGN KEY (municipality_code, resident_id) REFERENCES residents (municipality_code, id)
);
CREATE INDEX doses_resident ON doses (municipality_code, resident_id);

-- The journal of file imports: who, when, from where, which file (by hash),
-- how it went. Errors name line, column and reason, never a cell's value.
CREATE TABLE import_jobs (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'rejected', 'failed')),
    account_id TEXT NOT NULL,
    login_id TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    file_bytes BIGINT NOT NULL,
    encoding TEXT NOT NULL,
    bytes_done BIGINT NOT NULL,
    lines_seen BIGINT NOT NULL,
    inserted BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    tickets_issued BIGINT NOT NULL,
    error_count BIGINT NOT NULL,
    errors TEXT,
    message TEXT,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    PRIMARY KEY (municipality_code, id)
);
CREATE INDEX import_jobs_created ON import_jobs (municipality_code, created_at);

-- The same database-enforced isolation as residents.
ALTER TABLE tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE tickets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tickets
    USING (municipality_code = current_setting('vrs.municipality', true))
    WITH CHECK (municipality_code = current_setting('vrs.municipality', true));
ALTER TABLE resident_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE resident_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON resident_events
    USING (municipality_code = current_setting('vrs.municipality', true))
    WITH CHECK (municipality_code = current_setting('vrs.municipality', true));
ALTER TABLE doses ENABLE ROW LEVEL SECURITY;
ALTER TABLE doses FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON doses
    USING (municipality_code = current_setting('vrs.municipality', true))
    WITH CHECK (municipality_code = current_setting('vrs.municipality', true));
ALTER TABLE import_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE import_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON import_jobs
    USING (municipality_code = current_setting('vrs.municipality', true))
    WITH CHECK (municipality_code = current_setting('vrs.municipality', true));
