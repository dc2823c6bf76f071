ALTER TABLE tenants DROP COLUMN password_reuse_count;
ALTER TABLE tenants DROP COLUMN password_max_days;
DROP TABLE password_history;
ALTER TABLE accounts DROP COLUMN password_changed_at;
