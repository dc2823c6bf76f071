DROP TABLE issuer_keys;
DROP POLICY tenant_isolation ON residents;
DROP TABLE residents;
DROP TABLE tenant_keys;
DROP TABLE tenants;
