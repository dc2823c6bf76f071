-- The LG-WAN networks each municipality declares. Pages and API calls that
-- show or accept an individual number answer only requests from these.
CREATE TABLE lgwan_networks (
    municipality_code TEXT NOT NULL REFERENCES tenants (municipality_code),
    cidr TEXT NOT NULL,
    label TEXT NOT NULL,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (municipality_code, cidr)
);
