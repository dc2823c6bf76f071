-- Operation-log lines written in the transaction of the change they record,
-- and chained into audit_log (MAC, sequence number) moments later, in
-- batches, by one writer per chain at a time. A busy path (recording doses)
-- then does not wait for its municipality's chain, and the line is still
-- never lost: it commits or rolls back with the change. `id` is a UUID v7:
-- lines are chained in (at, id) order.
CREATE TABLE audit_pending (
    chain TEXT NOT NULL,
    id TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    account_id TEXT,
    login_id TEXT,
    client_addr TEXT,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (chain, id)
);
