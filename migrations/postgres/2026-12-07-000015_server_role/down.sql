DROP FUNCTION refresh_resident_statistics();
DROP FUNCTION purge_provision_records(text, timestamp);
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['accounts', 'lgwan_networks', 'sites', 'stat_municipal', 'tenants',
                           'tenant_keys', 'audit_log'] LOOP
    EXECUTE format('DROP POLICY scoped ON %I', t);
    EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t);
  END LOOP;
END
$$;
DROP FUNCTION vrs_scope_allows(text);
