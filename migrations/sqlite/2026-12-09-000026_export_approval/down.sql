DROP TABLE export_requests;
ALTER TABLE tenants DROP COLUMN export_approval;
