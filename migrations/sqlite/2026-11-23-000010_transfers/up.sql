-- 提供記録 (provision records) of transfer inquiries, kept by both sides:
-- the asking municipality (side 'requester') and the one asked (side
-- 'provider'). Metadata only — who asked, when, which municipality, which
-- account, about which of the keeper's own residents, which items were
-- given and for what purpose — never the content and never an individual
-- number. Written automatically, never changed (a trigger refuses every
-- update), deleted only by the retention purge after seven years.
CREATE TABLE provision_records (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    id TEXT NOT NULL,
    inquiry_id TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('requester', 'provider')),
    requested_at TIMESTAMP NOT NULL,
    answered_at TIMESTAMP,
    requester_code TEXT NOT NULL,
    requester_account_id TEXT,
    requester_login_id TEXT,
    requester_addr TEXT,
    provider_code TEXT NOT NULL,
    resident_id TEXT,
    channel TEXT NOT NULL CHECK (channel IN ('window', 'bulk', 'api')),
    procedure_code TEXT NOT NULL,
    purpose TEXT NOT NULL,
    items TEXT NOT NULL,
    dose_count INTEGER NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('provided', 'no_match', 'refused')),
    refusal TEXT,
    consent_form BOOLEAN NOT NULL,
    id_document TEXT,
    id_checked_by TEXT,
    job_id TEXT,
    line_no BIGINT,
    PRIMARY KEY (municipality_code, id)
);
CREATE INDEX provision_records_resident ON provision_records (municipality_code, resident_id, requested_at);
CREATE INDEX provision_records_requested ON provision_records (municipality_code, side, requested_at);
CREATE INDEX provision_records_account ON provision_records (municipality_code, requester_account_id, requested_at);
CREATE INDEX provision_records_job ON provision_records (municipality_code, job_id, line_no);

-- What an administrator should look at: inquiries past the configured rate
-- (on the screens of both municipalities). Closed by an administrator.
CREATE TABLE notices (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    id TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT,
    closed_at TIMESTAMP,
    closed_by TEXT,
    PRIMARY KEY (municipality_code, id)
);
CREATE INDEX notices_open ON notices (municipality_code, closed_at, at);

CREATE TRIGGER provision_records_never_change BEFORE UPDATE ON provision_records
BEGIN
    SELECT RAISE(ABORT, 'provision records are never changed');
END;
