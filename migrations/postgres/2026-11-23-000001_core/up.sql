-- Tenants: a municipality becomes a tenant when the operator enables it.
CREATE TABLE tenants (
    municipality_code TEXT PRIMARY KEY NOT NULL CHECK (length(municipality_code) = 6),
    status TEXT NOT NULL CHECK (status IN ('active', 'erased')),
    active_key_version INTEGER NOT NULL,
    enabled_at TIMESTAMP NOT NULL,
    erased_at TIMESTAMP
);

-- Each municipality's data and blind-index keys, wrapped by the master key.
CREATE TABLE tenant_keys (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    version INTEGER NOT NULL,
    wrapped_data_key BYTEA NOT NULL,
    wrapped_index_key BYTEA NOT NULL,
    master_key_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (municipality_code, version)
);

-- Residents: every identifying field sealed; lookups through keyed indexes.
CREATE TABLE residents (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    id TEXT NOT NULL,
    addressee_index BYTEA NOT NULL,
    my_number_index BYTEA,
    addressee_number_sealed BYTEA NOT NULL,
    my_number_sealed BYTEA,
    name_kanji_sealed BYTEA NOT NULL,
    name_kana_sealed BYTEA NOT NULL,
    birth_date_sealed BYTEA NOT NULL,
    sex_sealed BYTEA NOT NULL,
    address_sealed BYTEA,
    moved_out_on DATE,
    deceased_on DATE,
    address_protected BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (municipality_code, id)
);
CREATE UNIQUE INDEX residents_addressee ON residents (municipality_code, addressee_index);
CREATE UNIQUE INDEX residents_my_number ON residents (municipality_code, my_number_index);

-- Row-level security: the database itself returns and accepts only the rows
-- of the municipality named by the transaction's `vrs.municipality` setting.
-- FORCE makes it apply to the table owner (the application role) too.
ALTER TABLE residents ENABLE ROW LEVEL SECURITY;
ALTER TABLE residents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON residents
    USING (municipality_code = current_setting('vrs.municipality', true))
    WITH CHECK (municipality_code = current_setting('vrs.municipality', true));

-- The deployment's certificate signing keys (ES256), private half wrapped.
CREATE TABLE issuer_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'retained', 'revoked')),
    public_jwk TEXT NOT NULL,
    wrapped_private_key BYTEA NOT NULL,
    master_key_id TEXT NOT NULL,
    crl_version INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP
);
