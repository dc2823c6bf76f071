DROP TRIGGER doses_count_delete;
DROP TRIGGER doses_count_update;
DROP TRIGGER doses_count_insert;
DROP TABLE stat_open;
DROP TABLE stat_municipal;
DROP TABLE stat_demographic;
DROP TABLE stat_monthly;
DROP TABLE stat_daily;
