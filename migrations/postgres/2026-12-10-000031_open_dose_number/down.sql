ALTER TABLE doses DROP CONSTRAINT doses_dose_number_check;
ALTER TABLE doses ADD CONSTRAINT doses_dose_number_check CHECK (dose_number BETWEEN 1 AND 9);
ALTER TABLE tickets DROP CONSTRAINT tickets_dose_number_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_dose_number_check CHECK (dose_number BETWEEN 1 AND 9);
