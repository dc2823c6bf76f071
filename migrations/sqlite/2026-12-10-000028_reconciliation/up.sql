-- A full resident file compared with what is stored instead of imported:
-- the people it names who are not stored (new), those whose attributes
-- differ (changed), and the current residents it leaves out (absent),
-- listed for staff to act on. Nothing else changes until they do; what
-- they did to an item is kept with it.
CREATE TABLE reconcile_items (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    job_id TEXT NOT NULL,
    n BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('new', 'changed', 'absent')),
    line BIGINT,
    resident_id TEXT,
    -- The 宛名番号 of a line naming someone not stored, sealed.
    addressee_sealed BLOB,
    settled_at TIMESTAMP,
    settled_by TEXT,
    settled_as TEXT,
    PRIMARY KEY (municipality_code, job_id, n)
);
CREATE INDEX reconcile_items_kind ON reconcile_items (municipality_code, job_id, kind, n);
