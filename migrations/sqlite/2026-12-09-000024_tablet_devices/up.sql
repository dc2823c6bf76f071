-- A site tablet's account bound to the device it was enrolled on: the
-- SHA-256 of the device's secret (kept in that browser's cookie or the
-- app's key store), when it was enrolled, and the one-time code, hashed,
-- with which an administrator lets a device enrol. A municipality may
-- refuse every tablet not yet enrolled.
ALTER TABLE accounts ADD COLUMN device_key_hash TEXT;
ALTER TABLE accounts ADD COLUMN device_enrolled_at TIMESTAMP;
ALTER TABLE accounts ADD COLUMN enrol_code_hash TEXT;
ALTER TABLE accounts ADD COLUMN enrol_code_expires TIMESTAMP;
ALTER TABLE tenants ADD COLUMN require_enrolled_devices BOOLEAN NOT NULL DEFAULT FALSE;
