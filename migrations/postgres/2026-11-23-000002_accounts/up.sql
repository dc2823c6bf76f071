-- Accounts of every role. Municipal roles carry their municipality, the
-- prefectural viewer its prefecture; operator and national viewer neither.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY NOT NULL,
    login_id TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('operator', 'national_viewer', 'prefectural_viewer',
        'municipal_admin', 'municipal_staff', 'site_tablet')),
    municipality_code TEXT REFERENCES tenants (municipality_code),
    prefecture_code TEXT,
    display_name TEXT NOT NULL,
    permissions TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    must_change_password BOOLEAN NOT NULL,
    expires_on DATE,
    disabled_at TIMESTAMP,
    device_name TEXT,
    responsible_person TEXT,
    failed_logins INTEGER NOT NULL,
    locked_until TIMESTAMP,
    last_login_at TIMESTAMP,
    last_login_addr TEXT,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX accounts_municipality ON accounts (municipality_code);

-- Server-side sessions: the cookie holds a random token, the table its hash.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    csrf_token TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    previous_login_at TIMESTAMP,
    previous_login_addr TEXT
);
CREATE INDEX sessions_account ON sessions (account_id);

-- Failed-login counters for names that are not accounts and for addresses,
-- so throttling answers the same whether or not an account exists.
CREATE TABLE login_throttle (
    throttle_key TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    window_start TIMESTAMP NOT NULL,
    locked_until TIMESTAMP
);

-- The operation log: one hash chain per municipality (and one for the
-- platform). Each line's MAC covers its fields and the previous line's MAC.
CREATE TABLE audit_log (
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at TIMESTAMP NOT NULL,
    account_id TEXT,
    login_id TEXT,
    client_addr TEXT,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    detail TEXT,
    prev_mac TEXT NOT NULL,
    mac TEXT NOT NULL,
    PRIMARY KEY (chain, seq)
);

-- Deployment-wide secrets (the operation log's MAC key), wrapped by the
-- master key like every other key.
CREATE TABLE platform_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    wrapped_value BYTEA NOT NULL,
    master_key_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
