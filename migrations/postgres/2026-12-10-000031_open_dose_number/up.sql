-- The dose number is an open value (the real system moved from 1st/2nd/3rd
-- to an open number): doses and tickets take 1 to 99. The wider check is
-- added NOT VALID and validated after, so that checking the stored rows
-- does not block writers.
ALTER TABLE doses DROP CONSTRAINT doses_dose_number_check;
ALTER TABLE doses ADD CONSTRAINT doses_dose_number_check CHECK (dose_number BETWEEN 1 AND 99) NOT VALID;
ALTER TABLE doses VALIDATE CONSTRAINT doses_dose_number_check;
ALTER TABLE tickets DROP CONSTRAINT tickets_dose_number_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_dose_number_check CHECK (dose_number BETWEEN 1 AND 99) NOT VALID;
ALTER TABLE tickets VALIDATE CONSTRAINT tickets_dose_number_check;
