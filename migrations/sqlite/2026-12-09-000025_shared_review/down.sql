ALTER TABLE accounts DROP COLUMN shared_review_on;
