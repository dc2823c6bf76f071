-- The server runs as a role that owns nothing (see README, "Two database
-- roles"): it cannot lift row-level security, change a policy or drop a
-- trigger. Its privileges are granted at start by `db::grant_server_role`;
-- this migration adds what those grants rely on.

-- Every table that holds one municipality's rows: inside a transaction of
-- one municipality (`vrs.municipality` set), only that municipality's rows
-- (and, for accounts, the platform's); outside one, the platform's flows
-- (sign-in, the operator's pages, opening a partition's keys) see all.
CREATE FUNCTION vrs_scope_allows(code text) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('vrs.municipality', true), '') IN ('', code)
$$;

ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY scoped ON accounts
    USING (municipality_code IS NULL OR vrs_scope_allows(municipality_code))
    WITH CHECK (municipality_code IS NULL OR vrs_scope_allows(municipality_code));

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['lgwan_networks', 'sites', 'stat_municipal', 'tenants', 'tenant_keys'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY scoped ON %I USING (vrs_scope_allows(municipality_code)) '
                   'WITH CHECK (vrs_scope_allows(municipality_code))', t);
  END LOOP;
END
$$;

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY scoped ON audit_log
    USING (chain = 'platform' OR vrs_scope_allows(chain))
    WITH CHECK (chain = 'platform' OR vrs_scope_allows(chain));

-- Provision records are insert-only for the server; the retention purge
-- removes only what is past seven years, whatever it is asked. Planner
-- statistics of the tables a resident import grows are taken by the import
-- as it goes (ANALYZE needs the owner). Both run as the owner, with the
-- search path pinned to this schema (temporary tables last), and may be
-- called only by the roles granted them (`db::grant_server_role`).
DO $$
BEGIN
  EXECUTE format($f$
    CREATE FUNCTION purge_provision_records(code text, before timestamp) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, %1$I, pg_temp AS $body$
      WITH gone AS (
        DELETE FROM provision_records
         WHERE municipality_code = code
           AND requested_at < least(before, (now() AT TIME ZONE 'UTC') - interval '7 years')
        RETURNING 1)
      SELECT count(*) FROM gone
    $body$;
    CREATE FUNCTION refresh_resident_statistics() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, %1$I, pg_temp AS $body$
    BEGIN
      ANALYZE residents (municipality_code), resident_next (municipality_code),
              tickets (municipality_code);
    END
    $body$;
  $f$, current_schema());
END
$$;
REVOKE ALL ON FUNCTION purge_provision_records(text, timestamp) FROM PUBLIC;
REVOKE ALL ON FUNCTION refresh_resident_statistics() FROM PUBLIC;
