-- A municipality may require an administrator's approval before a
-- download of personal data (the ledger, a resident's provision records)
-- opens: the staff member asks, another person approves or refuses, and
-- an approval opens one download by the person who asked, within a day.
ALTER TABLE tenants ADD COLUMN export_approval BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE export_requests (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('ledger', 'provisions')),
    subject TEXT,
    requested_by TEXT NOT NULL,
    requester_login TEXT NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'refused', 'used')),
    decided_by TEXT,
    decided_login TEXT,
    decided_at TIMESTAMP,
    PRIMARY KEY (municipality_code, id)
);
