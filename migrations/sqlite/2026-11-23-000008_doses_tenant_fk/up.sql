-- PostgreSQL only: there the redundant doses -> tenants reference share-locked
-- the municipality's row on every dose. A SQLite foreign-key check takes no
-- row lock, and dropping a constraint would mean rebuilding the table.
SELECT 1;
