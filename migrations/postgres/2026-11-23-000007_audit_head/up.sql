-- The head of an operation-log chain, read under the chain's lock, in one
-- round trip. The transaction-scoped advisory lock (class 0x76730001, the
-- chain's name hashed) makes a second append to the chain wait until the
-- first commits. The function is VOLATILE, so under READ COMMITTED its
-- SELECT takes a new snapshot after the lock is granted and sees the line
-- the first append wrote (a plain statement would have taken its snapshot
-- before waiting).
CREATE FUNCTION audit_chain_head(chain_name text, OUT seq bigint, OUT mac text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(1987248129, hashtext(chain_name));
  SELECT a.seq, a.mac INTO seq, mac
    FROM audit_log a
   WHERE a.chain = chain_name
   ORDER BY a.seq DESC
   LIMIT 1;
END
$$;
