ALTER TABLE tenants DROP COLUMN retention_years;
ALTER TABLE residents DROP COLUMN erased_at;
