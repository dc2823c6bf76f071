-- Reminder notices (接種勧奨): a job lists the residents due a dose over a
-- period, gives each the ticket for it, and keeps one line per letter so
-- that its print pages come out the same however often they are opened.
CREATE TABLE notice_items (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    job_id TEXT NOT NULL,
    n BIGINT NOT NULL,
    resident_id TEXT NOT NULL,
    ticket_number TEXT NOT NULL,
    dose_number INTEGER NOT NULL,
    due_from DATE NOT NULL,
    overdue BOOLEAN NOT NULL,
    PRIMARY KEY (municipality_code, job_id, n)
);
