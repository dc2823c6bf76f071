-- Counts a municipality's own pages show on every view, kept by triggers in
-- the same transaction as every change, so that a view reads a few rows
-- whatever the size of the city instead of counting a million.

-- Current residents (neither moved out nor deceased) per municipality and
-- per resident import that wrote them (staged_seq; 0 for rows no import
-- in progress wrote): a reader adds up the rows of the imports it sees
-- (`import_jobs::seen_seq`), as it would count the residents themselves.
CREATE TABLE resident_counts (
    municipality_code TEXT NOT NULL,
    staged_seq BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (municipality_code, staged_seq)
);

CREATE TRIGGER residents_count_insert AFTER INSERT ON residents
WHEN NEW.moved_out_on IS NULL AND NEW.deceased_on IS NULL BEGIN
    INSERT INTO resident_counts (municipality_code, staged_seq, n)
        SELECT NEW.municipality_code, coalesce(NEW.staged_seq, 0), 1 WHERE 1
        ON CONFLICT (municipality_code, staged_seq) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER residents_count_delete AFTER DELETE ON residents
WHEN OLD.moved_out_on IS NULL AND OLD.deceased_on IS NULL BEGIN
    INSERT INTO resident_counts (municipality_code, staged_seq, n)
        SELECT OLD.municipality_code, coalesce(OLD.staged_seq, 0), -1 WHERE 1
        ON CONFLICT (municipality_code, staged_seq) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER residents_count_update
AFTER UPDATE OF municipality_code, staged_seq, moved_out_on, deceased_on ON residents BEGIN
    INSERT INTO resident_counts (municipality_code, staged_seq, n)
        SELECT OLD.municipality_code, coalesce(OLD.staged_seq, 0), -1
        WHERE OLD.moved_out_on IS NULL AND OLD.deceased_on IS NULL
        ON CONFLICT (municipality_code, staged_seq) DO UPDATE SET n = n + excluded.n;
    INSERT INTO resident_counts (municipality_code, staged_seq, n)
        SELECT NEW.municipality_code, coalesce(NEW.staged_seq, 0), 1
        WHERE NEW.moved_out_on IS NULL AND NEW.deceased_on IS NULL
        ON CONFLICT (municipality_code, staged_seq) DO UPDATE SET n = n + excluded.n;
END;

INSERT INTO resident_counts (municipality_code, staged_seq, n)
    SELECT municipality_code, coalesce(staged_seq, 0), count(*) FROM residents
    WHERE moved_out_on IS NULL AND deceased_on IS NULL
    GROUP BY 1, 2;

-- Valid doses per municipality, month and dose number, those transferred
-- from the municipality a person came from included: the municipality's
-- own progress (`stat_municipal` counts a dose where it was given).
CREATE TABLE dose_progress (
    municipality_code TEXT NOT NULL,
    month TEXT NOT NULL,
    dose_number INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (municipality_code, month, dose_number)
);

CREATE TRIGGER doses_progress_insert AFTER INSERT ON doses
WHEN NEW.status = 'valid' BEGIN
    INSERT INTO dose_progress (municipality_code, month, dose_number, n)
        SELECT NEW.municipality_code, substr(NEW.administered_on, 1, 7), NEW.dose_number, 1 WHERE 1
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER doses_progress_delete AFTER DELETE ON doses
WHEN OLD.status = 'valid' BEGIN
    INSERT INTO dose_progress (municipality_code, month, dose_number, n)
        SELECT OLD.municipality_code, substr(OLD.administered_on, 1, 7), OLD.dose_number, -1 WHERE 1
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER doses_progress_update
AFTER UPDATE OF municipality_code, status, administered_on, dose_number ON doses BEGIN
    INSERT INTO dose_progress (municipality_code, month, dose_number, n)
        SELECT OLD.municipality_code, substr(OLD.administered_on, 1, 7), OLD.dose_number, -1
        WHERE OLD.status = 'valid'
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = n + excluded.n;
    INSERT INTO dose_progress (municipality_code, month, dose_number, n)
        SELECT NEW.municipality_code, substr(NEW.administered_on, 1, 7), NEW.dose_number, 1
        WHERE NEW.status = 'valid'
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = n + excluded.n;
END;

INSERT INTO dose_progress (municipality_code, month, dose_number, n)
    SELECT municipality_code, substr(administered_on, 1, 7), dose_number, count(*) FROM doses
    WHERE status = 'valid'
    GROUP BY 1, 2, 3;


-- A resident's record page lists what happened to their doses: found by
-- the resident, not by reading the municipality's whole history.
CREATE INDEX dose_events_resident ON dose_events (municipality_code, resident_id, at);

-- The tickets a resident import issued, for its printable sheets: found
-- (and counted) by the import, in ticket-number order, not by reading
-- every ticket of the city.
CREATE INDEX tickets_issued_by ON tickets (municipality_code, issued_by, ticket_number);
