DROP TABLE issuer_keys;
DROP TABLE residents;
DROP TABLE tenant_keys;
DROP TABLE tenants;
