ALTER TABLE accounts DROP COLUMN totp_last_step;
ALTER TABLE accounts DROP COLUMN totp_secret_wrapped;
ALTER TABLE tenants DROP COLUMN require_totp;
