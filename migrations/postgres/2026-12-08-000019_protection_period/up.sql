-- A support measure's period: its start, its end if known, and its next
-- review. A resident protected before this migration has none of them:
-- the protection holds and its review is due (see flows::residents).
ALTER TABLE residents ADD COLUMN protected_from DATE;
ALTER TABLE residents ADD COLUMN protected_until DATE;
ALTER TABLE residents ADD COLUMN protection_review DATE;
