-- The resident registry's change file (異動) moves people out, records
-- deaths and brings them back: a change it stages for a stored resident
-- carries the status flags too (`flags_set`), seen by readers with the
-- rest of the change once the file's job has succeeded.
ALTER TABLE resident_next ADD COLUMN flags_set BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE resident_next ADD COLUMN moved_out_on DATE;
ALTER TABLE resident_next ADD COLUMN deceased_on DATE;
-- What the staged flags do to the count of current residents (-1, 0, +1
-- against the stored row), kept in `resident_counts` under the change's
-- sequence number so that a reader's count matches the flags it sees.
ALTER TABLE resident_next ADD COLUMN count_delta INTEGER NOT NULL DEFAULT 0;

CREATE FUNCTION resident_next_count_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO resident_counts (municipality_code, staged_seq, n)
        SELECT r.municipality_code, r.seq, sum(r.count_delta) FROM new_rows r
        WHERE r.count_delta <> 0
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (municipality_code, staged_seq) DO UPDATE SET n = resident_counts.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION resident_next_count_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO resident_counts (municipality_code, staged_seq, n)
        SELECT r.municipality_code, r.seq, -sum(r.count_delta) FROM old_rows r
        WHERE r.count_delta <> 0
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (municipality_code, staged_seq) DO UPDATE SET n = resident_counts.n + excluded.n;
    RETURN NULL;
END
$$;

CREATE TRIGGER resident_next_count_insert AFTER INSERT ON resident_next
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION resident_next_count_insert();
CREATE TRIGGER resident_next_count_delete AFTER DELETE ON resident_next
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION resident_next_count_delete();
