-- A shared account (a site tablet) is reviewed by its administrator —
-- who holds it, whether it is still needed — by this date, and flagged
-- once it is past.
ALTER TABLE accounts ADD COLUMN shared_review_on DATE;
