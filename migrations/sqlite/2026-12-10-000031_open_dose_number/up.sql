-- The dose number is an open value (the real system moved from 1st/2nd/3rd
-- to an open number): doses and tickets take 1 to 99. SQLite cannot alter
-- a CHECK constraint; widening one changes nothing stored, so the table
-- definitions are edited in place as SQLite documents for such changes
-- (writable_schema), and the schema version moved so that every open
-- connection reads them again.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, 'dose_number INTEGER NOT NULL CHECK (dose_number BETWEEN 1 AND 9)',
                          'dose_number INTEGER NOT NULL CHECK (dose_number BETWEEN 1 AND 99)')
 WHERE type = 'table' AND name IN ('doses', 'tickets');
PRAGMA schema_version = 31000031;
PRAGMA writable_schema = OFF;
