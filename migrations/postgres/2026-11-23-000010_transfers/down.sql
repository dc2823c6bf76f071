DROP TABLE notices;
DROP TABLE provision_records;
DROP FUNCTION provision_records_never_change();
