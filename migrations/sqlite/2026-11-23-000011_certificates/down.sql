ALTER TABLE tenants DROP COLUMN certificate_channels;
DROP TABLE channel_clients;
DROP TABLE card_revocations;
DROP TABLE certificates;
