ALTER TABLE doses ADD CONSTRAINT doses_municipality_code_fkey
    FOREIGN KEY (municipality_code) REFERENCES tenants (municipality_code);
