use crate::db::schema::issuer_keys;
use crate::db::{DbConn, DbError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = issuer_keys)]
pub struct IssuerKeyRow {
    pub kid: String,
    pub status: String,
    pub public_jwk: String,
    pub wrapped_private_key: Vec<u8>,
    pub master_key_id: String,
    pub crl_version: i32,
    pub created_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
}

impl IssuerKeyRow {
    pub fn all(conn: &mut DbConn) -> Result<Vec<IssuerKeyRow>, DbError> {
        Ok(issuer_keys::table
            .order(issuer_keys::created_at)
            .select(IssuerKeyRow::as_select())
            .load(conn)?)
    }

    /// Keys whose public half is published: active and retained ones.
    pub fn published(conn: &mut DbConn) -> Result<Vec<IssuerKeyRow>, DbError> {
        Ok(issuer_keys::table
            .filter(issuer_keys::status.ne("revoked"))
            .order(issuer_keys::created_at)
            .select(IssuerKeyRow::as_select())
            .load(conn)?)
    }

    /// The key new cards are signed with.
    pub fn active(conn: &mut DbConn) -> Result<Option<IssuerKeyRow>, DbError> {
        Ok(issuer_keys::table
            .filter(issuer_keys::status.eq("active"))
            .order(issuer_keys::created_at.desc())
            .select(IssuerKeyRow::as_select())
            .first(conn)
            .optional()?)
    }

    pub fn find(conn: &mut DbConn, kid: &str) -> Result<Option<IssuerKeyRow>, DbError> {
        Ok(issuer_keys::table
            .find(kid)
            .select(IssuerKeyRow::as_select())
            .first(conn)
            .optional()?)
    }

    /// Stops signing with a key; its public half stays published.
    pub fn retain(conn: &mut DbConn, kid: &str, at: NaiveDateTime) -> Result<(), DbError> {
        diesel::update(issuer_keys::table.find(kid))
            .set((
                issuer_keys::status.eq("retained"),
                issuer_keys::retired_at.eq(Some(at)),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// Counts one more change of the key's revocation list.
    pub fn bump_crl_version(conn: &mut DbConn, kid: &str) -> Result<(), DbError> {
        diesel::update(issuer_keys::table.find(kid))
            .set(issuer_keys::crl_version.eq(issuer_keys::crl_version + 1))
            .execute(conn)?;
        Ok(())
    }

    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(issuer_keys::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn rewrap(
        conn: &mut DbConn,
        kid: &str,
        wrapped: &[u8],
        master_key_id: &str,
    ) -> Result<(), DbError> {
        diesel::update(issuer_keys::table.find(kid))
            .set((
                issuer_keys::wrapped_private_key.eq(wrapped),
                issuer_keys::master_key_id.eq(master_key_id),
            ))
            .execute(conn)?;
        Ok(())
    }
}
