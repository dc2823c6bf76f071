use crate::db::schema::lgwan_networks;
use crate::db::{DbConn, DbError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = lgwan_networks)]
pub struct NetworkRow {
    pub municipality_code: String,
    pub cidr: String,
    pub label: String,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
}

impl NetworkRow {
    pub fn of_municipality(conn: &mut DbConn, code: &str) -> Result<Vec<NetworkRow>, DbError> {
        Ok(lgwan_networks::table
            .filter(lgwan_networks::municipality_code.eq(code))
            .order(lgwan_networks::cidr)
            .select(NetworkRow::as_select())
            .load(conn)?)
    }

    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(lgwan_networks::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn delete(conn: &mut DbConn, code: &str, cidr: &str) -> Result<usize, DbError> {
        Ok(diesel::delete(
            lgwan_networks::table
                .filter(lgwan_networks::municipality_code.eq(code))
                .filter(lgwan_networks::cidr.eq(cidr)),
        )
        .execute(conn)?)
    }
}
