ALTER TABLE residents DROP COLUMN protection_review;
ALTER TABLE residents DROP COLUMN protected_until;
ALTER TABLE residents DROP COLUMN protected_from;
