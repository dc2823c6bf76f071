-- A resident erased by their municipality after its retention period: the
-- row stays (the doses' anonymous facts, and so the published statistics,
-- keep their resident) but holds nothing of the person — its sealed
-- fields are emptied, its blind indexes cleared or replaced by random
-- bytes that index nothing — and every reader passes it by.
ALTER TABLE residents ADD COLUMN erased_at TIMESTAMP;
-- How many years after a move-out or death a resident's record is kept
-- before it is listed for erasure.
ALTER TABLE tenants ADD COLUMN retention_years INTEGER NOT NULL DEFAULT 5;
