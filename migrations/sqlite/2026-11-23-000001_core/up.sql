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
    wrapped_data_key BLOB NOT NULL,
    wrapped_index_key BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (municipality_code, version)
);

-- Residents: every identifying field sealed; lookups through keyed indexes.
CREATE TABLE residents (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    id TEXT NOT NULL,
    addressee_index BLOB NOT NULL,
    my_number_index BLOB,
    addressee_number_sealed BLOB NOT NULL,
    my_number_sealed BLOB,
    name_kanji_sealed BLOB NOT NULL,
    name_kana_sealed BLOB NOT NULL,
    birth_date_sealed BLOB NOT NULL,
    sex_sealed BLOB NOT NULL,
    address_sealed BLOB,
    moved_out_on DATE,
    deceased_on DATE,
    address_protected BOOLEAN NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (municipality_code, id)
);
CREATE UNIQUE INDEX residents_addressee ON residents (municipality_code, addressee_index);
CREATE UNIQUE INDEX residents_my_number ON residents (municipality_code, my_number_index);

-- The deployment's certificate signing keys (ES256), private half wrapped.
CREATE TABLE issuer_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'retained', 'revoked')),
    public_jwk TEXT NOT NULL,
    wrapped_private_key BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    crl_version INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP
);
