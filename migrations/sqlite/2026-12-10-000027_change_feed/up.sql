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

CREATE TRIGGER resident_next_count_insert AFTER INSERT ON resident_next
WHEN NEW.count_delta <> 0 BEGIN
    INSERT INTO resident_counts (municipality_code, staged_seq, n)
        SELECT NEW.municipality_code, NEW.seq, NEW.count_delta WHERE 1
        ON CONFLICT (municipality_code, staged_seq) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER resident_next_count_delete AFTER DELETE ON resident_next
WHEN OLD.count_delta <> 0 BEGIN
    INSERT INTO resident_counts (municipality_code, staged_seq, n)
        SELECT OLD.municipality_code, OLD.seq, -OLD.count_delta WHERE 1
        ON CONFLICT (municipality_code, staged_seq) DO UPDATE SET n = n + excluded.n;
END;
