PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, 'dose_number INTEGER NOT NULL CHECK (dose_number BETWEEN 1 AND 99)',
                          'dose_number INTEGER NOT NULL CHECK (dose_number BETWEEN 1 AND 9)')
 WHERE type = 'table' AND name IN ('doses', 'tickets');
PRAGMA schema_version = 31000032;
PRAGMA writable_schema = OFF;
