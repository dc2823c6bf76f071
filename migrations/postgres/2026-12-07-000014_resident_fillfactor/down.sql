ALTER TABLE residents RESET (fillfactor);
