-- Doses clinics send in batches (from the paper 予診票), each line recorded
-- by the rules of a tablet dose; what became of each line, for the job's
-- result file (which names tickets, never an individual number).
CREATE TABLE dose_batch_lines (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    job_id TEXT NOT NULL,
    line BIGINT NOT NULL,
    ticket_number TEXT NOT NULL,
    administered_on DATE NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('recorded', 'queued', 'replayed', 'refused')),
    dose_id TEXT,
    dose_number INTEGER,
    rules TEXT,
    refusal TEXT,
    PRIMARY KEY (municipality_code, job_id, line)
);

ALTER TABLE dose_batch_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE dose_batch_lines FORCE ROW LEVEL SECURITY;
CREATE POLICY scoped ON dose_batch_lines USING (vrs_scope_allows(municipality_code))
    WITH CHECK (vrs_scope_allows(municipality_code));
