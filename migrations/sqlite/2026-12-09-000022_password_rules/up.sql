-- When each account's password was last set, the hashes of the ones
-- before it, and each municipality's rules: how many days a password
-- lasts (0: no limit) and how many earlier ones may not be chosen again.
ALTER TABLE accounts ADD COLUMN password_changed_at TIMESTAMP;
CREATE TABLE password_history (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    at TIMESTAMP NOT NULL,
    password_hash TEXT NOT NULL,
    PRIMARY KEY (account_id, at)
);
ALTER TABLE tenants ADD COLUMN password_max_days INTEGER NOT NULL DEFAULT 180;
ALTER TABLE tenants ADD COLUMN password_reuse_count INTEGER NOT NULL DEFAULT 5;
-- Existing passwords count from the upgrade, not from when the account was made.
UPDATE accounts SET password_changed_at = CURRENT_TIMESTAMP;
