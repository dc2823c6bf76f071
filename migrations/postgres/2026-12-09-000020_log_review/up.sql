-- The operation log searched on the server: by account, action, target
-- (a resident's lines for the access record) and period, newest first.
CREATE INDEX audit_log_by_login ON audit_log (chain, login_id, seq);
CREATE INDEX audit_log_by_action ON audit_log (chain, action, seq);
CREATE INDEX audit_log_by_target ON audit_log (chain, target, seq);
CREATE INDEX audit_log_by_at ON audit_log (chain, at);

-- What each municipality counts as its working hours (Japan time), the
-- per-account daily volume of record access that raises a notice, how
-- often the log and the account list are to be reviewed, and whether a
-- resident's access record names staff or only says which office.
ALTER TABLE tenants ADD COLUMN working_from INTEGER NOT NULL DEFAULT 8;
ALTER TABLE tenants ADD COLUMN working_until INTEGER NOT NULL DEFAULT 19;
ALTER TABLE tenants ADD COLUMN volume_threshold INTEGER NOT NULL DEFAULT 300;
ALTER TABLE tenants ADD COLUMN review_every_days INTEGER NOT NULL DEFAULT 30;
ALTER TABLE tenants ADD COLUMN access_record_names BOOLEAN NOT NULL DEFAULT TRUE;

-- Who reviewed which period of the log, or the account list, when, and
-- what they noted.
CREATE TABLE log_reviews (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('log', 'accounts')),
    period_from DATE NOT NULL,
    period_until DATE NOT NULL,
    reviewed_by TEXT NOT NULL,
    reviewer_login TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (municipality_code, id)
);

ALTER TABLE log_reviews ENABLE ROW LEVEL SECURITY;
ALTER TABLE log_reviews FORCE ROW LEVEL SECURITY;
CREATE POLICY scoped ON log_reviews USING (vrs_scope_allows(municipality_code))
    WITH CHECK (vrs_scope_allows(municipality_code));
