-- Optional second factor: a municipality can require it of every account
-- that may handle individual numbers.
ALTER TABLE tenants ADD COLUMN require_totp BOOLEAN NOT NULL DEFAULT 0;
-- The account's TOTP secret, wrapped by the master key, and the last time
-- step accepted (a code is never accepted twice).
ALTER TABLE accounts ADD COLUMN totp_secret_wrapped BLOB;
ALTER TABLE accounts ADD COLUMN totp_last_step BIGINT;
