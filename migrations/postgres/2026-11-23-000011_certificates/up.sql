-- 接種証明書 (vaccination certificates): one row per certificate issued,
-- kept by the municipality whose resident it names. The card itself (the
-- signed JWS, which carries name and birth date) and any passport details
-- are sealed with the municipality's key; the rest is what revocation and
-- reissue need. `dose_ids` lists the doses the card carries, so that a
-- correction of one of them finds the certificates to revoke.
CREATE TABLE certificates (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    id TEXT NOT NULL,
    resident_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('domestic', 'overseas')),
    channel TEXT NOT NULL CHECK (channel IN ('window', 'app', 'kiosk')),
    issued_at TIMESTAMP NOT NULL,
    issued_on DATE NOT NULL,
    issued_by TEXT NOT NULL,
    kid TEXT NOT NULL REFERENCES issuer_keys (kid),
    rid TEXT NOT NULL,
    dose_ids TEXT NOT NULL,
    card_sealed BYTEA NOT NULL,
    passport_sealed BYTEA,
    id_document TEXT,
    id_checked_by TEXT,
    status TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),
    revoked_at TIMESTAMP,
    revoked_reason TEXT,
    PRIMARY KEY (municipality_code, id)
);
CREATE INDEX certificates_resident ON certificates (municipality_code, resident_id, issued_at);

-- The public revocation lists, one per issuer key: which card rids are
-- revoked. Nothing here names a person or a municipality.
CREATE TABLE card_revocations (
    kid TEXT NOT NULL REFERENCES issuer_keys (kid),
    rid TEXT NOT NULL,
    revoked_at TIMESTAMP NOT NULL,
    PRIMARY KEY (kid, rid)
);

-- Machine clients of the certificate channels (a citizen app's backend,
-- the kiosk issuance centre), registered by the operator. Only a hash of
-- the client's secret is kept. `networks` (comma list of CIDRs) is where
-- the client may call from; a kiosk centre has to have one (its line to
-- VRS is LGWAN, F19), an app backend may leave it empty.
CREATE TABLE channel_clients (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('app', 'kiosk')),
    networks TEXT NOT NULL,
    secret_hash BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX channel_clients_secret ON channel_clients (secret_hash);

-- Which certificate channels a municipality answers (comma list of
-- 'app', 'kiosk'); none until its administrator enables them.
ALTER TABLE tenants ADD COLUMN certificate_channels TEXT NOT NULL DEFAULT '';

ALTER TABLE certificates ENABLE ROW LEVEL SECURITY;
ALTER TABLE certificates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON certificates
    USING (municipality_code = current_setting('vrs.municipality', true))
    WITH CHECK (municipality_code = current_setting('vrs.municipality', true));
