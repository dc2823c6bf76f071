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

-- Statement triggers: an import's batch of thousands of rows adds to its
-- count once.
CREATE FUNCTION residents_count_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO resident_counts (municipality_code, staged_seq, n)
        SELECT r.municipality_code, coalesce(r.staged_seq, 0), count(*) FROM new_rows r
        WHERE r.moved_out_on IS NULL AND r.deceased_on IS NULL
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (municipality_code, staged_seq) DO UPDATE SET n = resident_counts.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION residents_count_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO resident_counts (municipality_code, staged_seq, n)
        SELECT municipality_code, staged_seq, sum(n) FROM (
            SELECT r.municipality_code, coalesce(r.staged_seq, 0), -1 FROM old_rows r
            WHERE r.moved_out_on IS NULL AND r.deceased_on IS NULL
            UNION ALL
            SELECT r.municipality_code, coalesce(r.staged_seq, 0), 1 FROM new_rows r
            WHERE r.moved_out_on IS NULL AND r.deceased_on IS NULL
        ) c (municipality_code, staged_seq, n)
        GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2
        ON CONFLICT (municipality_code, staged_seq) DO UPDATE SET n = resident_counts.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION residents_count_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO resident_counts (municipality_code, staged_seq, n)
        SELECT r.municipality_code, coalesce(r.staged_seq, 0), -count(*) FROM old_rows r
        WHERE r.moved_out_on IS NULL AND r.deceased_on IS NULL
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (municipality_code, staged_seq) DO UPDATE SET n = resident_counts.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE TRIGGER residents_count_insert AFTER INSERT ON residents
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION residents_count_insert();
CREATE TRIGGER residents_count_update AFTER UPDATE ON residents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION residents_count_update();
CREATE TRIGGER residents_count_delete AFTER DELETE ON residents
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION residents_count_delete();

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

CREATE FUNCTION doses_progress_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dose_progress (municipality_code, month, dose_number, n)
        SELECT r.municipality_code, to_char(r.administered_on, 'YYYY-MM'), r.dose_number, count(*)
        FROM new_rows r WHERE r.status = 'valid'
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = dose_progress.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION doses_progress_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dose_progress (municipality_code, month, dose_number, n)
        SELECT municipality_code, month, dose_number, sum(n) FROM (
            SELECT r.municipality_code, to_char(r.administered_on, 'YYYY-MM'), r.dose_number, -1
            FROM old_rows r WHERE r.status = 'valid'
            UNION ALL
            SELECT r.municipality_code, to_char(r.administered_on, 'YYYY-MM'), r.dose_number, 1
            FROM new_rows r WHERE r.status = 'valid'
        ) c (municipality_code, month, dose_number, n)
        GROUP BY 1, 2, 3 HAVING sum(n) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = dose_progress.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION doses_progress_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dose_progress (municipality_code, month, dose_number, n)
        SELECT r.municipality_code, to_char(r.administered_on, 'YYYY-MM'), r.dose_number, -count(*)
        FROM old_rows r WHERE r.status = 'valid'
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (municipality_code, month, dose_number) DO UPDATE SET n = dose_progress.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE TRIGGER doses_progress_insert AFTER INSERT ON doses
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION doses_progress_insert();
CREATE TRIGGER doses_progress_update AFTER UPDATE ON doses
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION doses_progress_update();
CREATE TRIGGER doses_progress_delete AFTER DELETE ON doses
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION doses_progress_delete();

INSERT INTO dose_progress (municipality_code, month, dose_number, n)
    SELECT municipality_code, to_char(administered_on, 'YYYY-MM'), dose_number, count(*) FROM doses
    WHERE status = 'valid'
    GROUP BY 1, 2, 3;


-- A resident's record page lists what happened to their doses: found by
-- the resident, not by reading the municipality's whole history.
CREATE INDEX dose_events_resident ON dose_events (municipality_code, resident_id, at);

-- The tickets a resident import issued, for its printable sheets: found
-- (and counted) by the import, in ticket-number order, not by reading
-- every ticket of the city.
CREATE INDEX tickets_issued_by ON tickets (municipality_code, issued_by, ticket_number);

-- One municipality's counts, as its other tables (migration 000015).
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['resident_counts', 'dose_progress'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY scoped ON %I USING (vrs_scope_allows(municipality_code)) '
                   'WITH CHECK (vrs_scope_allows(municipality_code))', t);
  END LOOP;
END
$$;
