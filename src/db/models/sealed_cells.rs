//! Sealed cells of the tables that hold one sealed value per column and no
//! index made from it, read and replaced one column at a time: what a key
//! rotation re-seals besides the residents (see `flows::keys`).

use crate::db::TenantConn;
use crate::db::{DbError, numbered};
use crate::tenancy::Scope;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Text};

/// One sealed column: where it is stored and the names its seal is bound
/// to (the additional data of `crypto::AadContext`).
pub struct SealedColumn {
    pub table: &'static str,
    column: &'static str,
    /// The column's name in the seal's additional data.
    pub sealed_as: &'static str,
}

/// Every sealed column of a municipality outside `residents` and
/// `resident_next` (whose cells come with blind indexes).
pub const SEALED_COLUMNS: [SealedColumn; 5] = [
    SealedColumn {
        table: "resident_events",
        column: "detail_sealed",
        sealed_as: "detail",
    },
    SealedColumn {
        table: "dose_events",
        column: "reason_sealed",
        sealed_as: "reason",
    },
    SealedColumn {
        table: "certificates",
        column: "card_sealed",
        sealed_as: "card",
    },
    SealedColumn {
        table: "certificates",
        column: "passport_sealed",
        sealed_as: "passport",
    },
    SealedColumn {
        table: "held_inquiries",
        column: "request_sealed",
        sealed_as: "request",
    },
];

#[derive(QueryableByName)]
struct Cell {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Binary)]
    sealed: Vec<u8>,
}

impl SealedColumn {
    /// The next `limit` cells after row `after` in id order (rows whose
    /// cell is empty are skipped).
    pub fn page(
        &self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, Vec<u8>)>, DbError> {
        let sql = format!(
            "SELECT id, {c} AS sealed FROM {t} WHERE municipality_code = $1 AND id > $2 \
             AND {c} IS NOT NULL ORDER BY id LIMIT $3",
            c = self.column,
            t = self.table
        );
        Ok(diesel::sql_query(numbered(conn, sql))
            .bind::<Text, _>(scope.code().as_str())
            .bind::<Text, _>(after)
            .bind::<BigInt, _>(limit)
            .load::<Cell>(conn.db())?
            .into_iter()
            .map(|c| (c.id, c.sealed))
            .collect())
    }

    /// Replaces a cell that still holds `was`; false when it has changed
    /// since it was read (the newer value stands).
    pub fn replace(
        &self,
        scope: &Scope<'_>,
        conn: &mut TenantConn<'_>,
        id: &str,
        was: &[u8],
        sealed: &[u8],
    ) -> Result<bool, DbError> {
        let sql = format!(
            "UPDATE {t} SET {c} = $1 WHERE municipality_code = $2 AND id = $3 AND {c} = $4",
            c = self.column,
            t = self.table
        );
        Ok(diesel::sql_query(numbered(conn, sql))
            .bind::<Binary, _>(sealed)
            .bind::<Text, _>(scope.code().as_str())
            .bind::<Text, _>(id)
            .bind::<Binary, _>(was)
            .execute(conn.db())?
            == 1)
    }
}
