-- Vaccination sites (clinics and mass sites), registered by a municipal
-- administrator. A site records doses for tickets of any municipality; its
-- tablet accounts are bound to it.
CREATE TABLE sites (
    id TEXT PRIMARY KEY NOT NULL,
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('clinic', 'mass')),
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP
);
CREATE INDEX sites_municipality ON sites (municipality_code);

-- Enforced by the application: SQLite cannot drop a column under a
-- foreign key, and the migration must go down as well as up.
ALTER TABLE accounts ADD COLUMN site_id TEXT;

-- The national vaccine master, kept by the operator: one row per product
-- line, with the minimum intervals the data-quality checks apply.
CREATE TABLE vaccine_products (
    product_code TEXT PRIMARY KEY NOT NULL,
    manufacturer_ja TEXT NOT NULL,
    manufacturer_en TEXT NOT NULL,
    product_ja TEXT NOT NULL,
    product_en TEXT NOT NULL,
    vaccine_type TEXT NOT NULL,
    target TEXT NOT NULL,
    age_group TEXT NOT NULL,
    cvx TEXT,
    primary_doses INTEGER NOT NULL CHECK (primary_doses BETWEEN 0 AND 3),
    dose2_min_days INTEGER,
    dose3_min_days INTEGER,
    booster_min_months INTEGER NOT NULL,
    in_use BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- Lots known per product. A dose with a lot not listed here goes to the
-- owning municipality's to-check queue.
CREATE TABLE vaccine_lots (
    product_code TEXT NOT NULL REFERENCES vaccine_products (product_code),
    lot_number TEXT NOT NULL,
    expires_on DATE,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (product_code, lot_number)
);

-- Doses learn where they were recorded, the request that recorded them
-- (so a retry records nothing twice), the checks they failed, the dose they
-- replace, and the coarse age band and sex that statistics count by.
ALTER TABLE doses ADD COLUMN site_id TEXT;
ALTER TABLE doses ADD COLUMN idempotency_key TEXT;
ALTER TABLE doses ADD COLUMN quality_flags TEXT;
ALTER TABLE doses ADD COLUMN supersedes TEXT;
ALTER TABLE doses ADD COLUMN age_band INTEGER;
ALTER TABLE doses ADD COLUMN sex TEXT;
CREATE UNIQUE INDEX doses_idempotency ON doses (municipality_code, idempotency_key);
CREATE INDEX doses_status ON doses (municipality_code, status);

-- What happened to a dose after it was recorded: queued for checking,
-- confirmed, corrected, deleted, rejected. Append-only; the staff member's
-- reason is sealed like the record.
CREATE TABLE dose_events (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    id TEXT NOT NULL,
    dose_id TEXT NOT NULL,
    resident_id TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('queued', 'confirmed', 'corrected', 'deleted', 'rejected')),
    account_id TEXT,
    detail TEXT,
    reason_sealed BLOB,
    PRIMARY KEY (municipality_code, id),
    FOREIGN KEY (municipality_code, dose_id) REFERENCES doses (municipality_code, id)
);
CREATE INDEX dose_events_dose ON dose_events (municipality_code, dose_id);
CREATE INDEX dose_events_at ON dose_events (municipality_code, at);
