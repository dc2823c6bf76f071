DROP TRIGGER provision_records_never_change;
DROP TABLE notices;
DROP TABLE provision_records;
