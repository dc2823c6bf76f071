-- A transfer inquiry that matched a resident under a support measure is
-- held by that resident's municipality until one of its administrators
-- approves or refuses it: asked about its resident ('asked': the asker has
-- the uniform answer meanwhile), or about to ask about one ('asking': the
-- number and the consent wait, sealed, to be sent on approval).
CREATE TABLE held_inquiries (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    id TEXT NOT NULL,
    inquiry_id TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('asked', 'asking')),
    other_code TEXT NOT NULL,
    resident_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    purpose TEXT NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    requested_by TEXT,
    requester_login TEXT,
    request_sealed BYTEA,
    status TEXT NOT NULL CHECK (status IN ('held', 'approved', 'refused')),
    decided_by TEXT,
    decided_login TEXT,
    decided_at TIMESTAMP,
    PRIMARY KEY (municipality_code, id)
);
CREATE INDEX held_inquiries_open ON held_inquiries (municipality_code, status, requested_at);

ALTER TABLE held_inquiries ENABLE ROW LEVEL SECURITY;
ALTER TABLE held_inquiries FORCE ROW LEVEL SECURITY;
CREATE POLICY scoped ON held_inquiries USING (vrs_scope_allows(municipality_code))
    WITH CHECK (vrs_scope_allows(municipality_code));
