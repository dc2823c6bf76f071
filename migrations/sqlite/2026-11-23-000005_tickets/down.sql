DROP TABLE import_jobs;
DROP TABLE doses;
DROP TABLE resident_events;
DROP TABLE tickets;
DROP INDEX residents_kanji_birth;
DROP INDEX residents_kana_birth;
ALTER TABLE residents DROP COLUMN kanji_birth_index;
ALTER TABLE residents DROP COLUMN kana_birth_index;
ALTER TABLE residents DROP COLUMN content_mac;
