//! The batch changes that settle a resident import (see
//! `flows::import_settle`), as data: each removes or finalises, a batch at
//! a time, rows that carry one import's sequence number.

use crate::db::TenantConn;
use crate::db::{DbError, RowsWhere};
use crate::tenancy::Scope;

/// One bulk change of rows marked with an import's number.
#[derive(Debug, Clone, Copy)]
pub struct Change {
    sql: &'static str,
    rows: RowsWhere<'static>,
}

impl Change {
    /// Applies the change to at most `limit` rows marked with `seq`;
    /// returns how many changed (0: none left).
    pub fn run(
        &self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        seq: i64,
        limit: i64,
    ) -> Result<usize, DbError> {
        crate::db::change_batch(conn, self.sql, self.rows, scope.code().as_str(), seq, limit)
    }
}

const fn rows(table: &'static str, key: &'static str, column: &'static str) -> RowsWhere<'static> {
    RowsWhere { table, key, column }
}

/// What an import that did not succeed wrote goes, children before
/// parents; a replaced ticket is the resident's again only once the ticket
/// that replaced it is gone (one ticket per resident may be active and not
/// being replaced), so the steps run in this order, each to its end.
pub const DISCARD: [Change; 5] = [
    Change {
        sql: "DELETE FROM tickets",
        rows: rows("tickets", "ticket_number", "staged_seq"),
    },
    Change {
        sql: "UPDATE tickets SET retired_seq = NULL, invalidated_at = NULL, \
              invalidated_reason = NULL",
        rows: rows("tickets", "ticket_number", "retired_seq"),
    },
    Change {
        sql: "DELETE FROM resident_next",
        rows: rows("resident_next", "resident_id", "seq"),
    },
    Change {
        sql: "DELETE FROM resident_events",
        rows: rows("resident_events", "id", "staged_seq"),
    },
    Change {
        sql: "DELETE FROM residents",
        rows: rows("residents", "id", "staged_seq"),
    },
];

/// An import that succeeded: the tickets it replaced are stored as
/// invalidated (readers already see them so).
pub const RETIRE_REPLACED: Change = Change {
    sql: "UPDATE tickets SET status = 'invalidated', retired_seq = NULL",
    rows: rows("tickets", "ticket_number", "retired_seq"),
};
