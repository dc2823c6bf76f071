-- A dose's municipality is already bound to its tenant through the resident
-- it belongs to (doses -> residents (municipality_code, id), residents ->
-- tenants). The direct reference was redundant, and it cost: its check
-- share-locks the municipality's tenants row on every dose recorded, so
-- concurrent recordings of one municipality all locked one row (MultiXacts
-- on the busiest path).
ALTER TABLE doses DROP CONSTRAINT doses_municipality_code_fkey;
