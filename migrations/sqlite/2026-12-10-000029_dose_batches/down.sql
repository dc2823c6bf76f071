DROP TABLE dose_batch_lines;
