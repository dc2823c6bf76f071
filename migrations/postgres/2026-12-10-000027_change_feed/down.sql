DROP TRIGGER resident_next_count_insert ON resident_next;
DROP TRIGGER resident_next_count_delete ON resident_next;
ALTER TABLE resident_next DROP COLUMN count_delta;
ALTER TABLE resident_next DROP COLUMN deceased_on;
ALTER TABLE resident_next DROP COLUMN moved_out_on;
ALTER TABLE resident_next DROP COLUMN flags_set;
DROP FUNCTION resident_next_count_insert(); DROP FUNCTION resident_next_count_delete();
