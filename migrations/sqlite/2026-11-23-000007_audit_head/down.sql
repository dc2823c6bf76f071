-- PostgreSQL only: audit_chain_head(). On SQLite the transaction already
-- holds the database's write lock when it reads a chain's last line.
SELECT 1;
