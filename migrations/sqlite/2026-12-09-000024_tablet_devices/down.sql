ALTER TABLE tenants DROP COLUMN require_enrolled_devices;
ALTER TABLE accounts DROP COLUMN enrol_code_expires;
ALTER TABLE accounts DROP COLUMN enrol_code_hash;
ALTER TABLE accounts DROP COLUMN device_enrolled_at;
ALTER TABLE accounts DROP COLUMN device_key_hash;
