DROP TABLE counts_owed;
DROP TRIGGER dose_events_queue_day ON dose_events;
DROP FUNCTION dose_events_queue_day();
DROP TABLE queue_days;
