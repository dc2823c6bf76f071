DROP TRIGGER resident_next_count_insert;
DROP TRIGGER resident_next_count_delete;
ALTER TABLE resident_next DROP COLUMN count_delta;
ALTER TABLE resident_next DROP COLUMN deceased_on;
ALTER TABLE resident_next DROP COLUMN moved_out_on;
ALTER TABLE resident_next DROP COLUMN flags_set;
