use crate::db::TenantConn;
use crate::db::schema::{card_revocations, certificates, channel_clients};
use crate::db::{DbConn, DbError};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

pub const VALID: &str = "valid";
pub const REVOKED: &str = "revoked";

/// One 接種証明書 as its municipality keeps it. The card and the passport
/// details are sealed; `dose_ids` is the comma list of the doses carried.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = certificates, treat_none_as_default_value = false)]
pub struct CertificateRow {
    pub municipality_code: String,
    /// 証明書ID, printed on the certificate.
    pub id: String,
    pub resident_id: String,
    pub kind: String,
    pub channel: String,
    pub issued_at: NaiveDateTime,
    /// 証明書発行年月日 (the date in Japan).
    pub issued_on: NaiveDate,
    /// The account, or the channel client, that issued it.
    pub issued_by: String,
    pub kid: String,
    pub rid: String,
    pub dose_ids: String,
    pub card_sealed: Vec<u8>,
    pub passport_sealed: Option<Vec<u8>>,
    pub id_document: Option<String>,
    pub id_checked_by: Option<String>,
    pub status: String,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_reason: Option<String>,
}

impl CertificateRow {
    pub fn insert(&self, conn: &mut TenantConn<'_>) -> Result<(), DbError> {
        crate::db::insert_owned!(conn, certificates::table, self)
    }

    pub fn find(conn: &mut TenantConn<'_>, id: &str) -> Result<Option<CertificateRow>, DbError> {
        Ok(conn
            .rows(certificates::table)
            .filter(certificates::id.eq(id))
            .select(CertificateRow::as_select())
            .first(conn.db())
            .optional()?)
    }

    /// A resident's certificates, newest first.
    pub fn of_resident(
        conn: &mut TenantConn<'_>,
        resident_id: &str,
    ) -> Result<Vec<CertificateRow>, DbError> {
        Ok(conn
            .rows(certificates::table)
            .filter(certificates::resident_id.eq(resident_id))
            .order(certificates::issued_at.desc())
            .select(CertificateRow::as_select())
            .load(conn.db())?)
    }

    /// Marks a valid certificate revoked; false when it was not valid.
    pub fn revoke(
        conn: &mut TenantConn<'_>,
        id: &str,
        at: NaiveDateTime,
        reason: &str,
    ) -> Result<bool, DbError> {
        let n = diesel::update(
            conn.rows(certificates::table)
                .filter(certificates::id.eq(id))
                .filter(certificates::status.eq(VALID)),
        )
        .set((
            certificates::status.eq(REVOKED),
            certificates::revoked_at.eq(Some(at)),
            certificates::revoked_reason.eq(Some(reason)),
        ))
        .execute(conn.db())?;
        Ok(n == 1)
    }

    pub fn carries(&self, dose_id: &str) -> bool {
        self.dose_ids.split(',').any(|d| d == dose_id)
    }
}

/// One line of an issuer key's public revocation list.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = card_revocations)]
pub struct RevocationRow {
    pub kid: String,
    pub rid: String,
    pub revoked_at: NaiveDateTime,
}

impl RevocationRow {
    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(card_revocations::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    /// The rids revoked under one key, oldest first.
    pub fn of_key(conn: &mut DbConn, kid: &str) -> Result<Vec<RevocationRow>, DbError> {
        Ok(card_revocations::table
            .filter(card_revocations::kid.eq(kid))
            .order((card_revocations::revoked_at, card_revocations::rid))
            .select(RevocationRow::as_select())
            .load(conn)?)
    }
}

/// A machine client of a certificate channel, registered by the operator.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = channel_clients, treat_none_as_default_value = false)]
pub struct ChannelClientRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// Where the client may call from (comma list of CIDRs); empty: anywhere.
    pub networks: String,
    pub secret_hash: Vec<u8>,
    pub created_at: NaiveDateTime,
    pub created_by: String,
    pub revoked_at: Option<NaiveDateTime>,
}

impl ChannelClientRow {
    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(channel_clients::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn all(conn: &mut DbConn) -> Result<Vec<ChannelClientRow>, DbError> {
        Ok(channel_clients::table
            .order(channel_clients::created_at)
            .select(ChannelClientRow::as_select())
            .load(conn)?)
    }

    /// The client holding a secret, unless it was revoked.
    pub fn by_secret(
        conn: &mut DbConn,
        secret_hash: &[u8],
    ) -> Result<Option<ChannelClientRow>, DbError> {
        Ok(channel_clients::table
            .filter(channel_clients::secret_hash.eq(secret_hash))
            .filter(channel_clients::revoked_at.is_null())
            .select(ChannelClientRow::as_select())
            .first(conn)
            .optional()?)
    }

    pub fn revoke(conn: &mut DbConn, id: &str, at: NaiveDateTime) -> Result<bool, DbError> {
        let n = diesel::update(
            channel_clients::table
                .filter(channel_clients::id.eq(id))
                .filter(channel_clients::revoked_at.is_null()),
        )
        .set(channel_clients::revoked_at.eq(Some(at)))
        .execute(conn)?;
        Ok(n == 1)
    }
}
