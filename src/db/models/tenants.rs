use crate::db::schema::{tenant_keys, tenants};
use crate::db::{DbConn, DbError};
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = tenants)]
pub struct TenantRow {
    pub municipality_code: String,
    pub status: String,
    pub active_key_version: i32,
    pub enabled_at: NaiveDateTime,
    pub erased_at: Option<NaiveDateTime>,
    pub require_totp: bool,
    /// The certificate channels (`app`, `kiosk`) the municipality answers,
    /// as a comma list.
    pub certificate_channels: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = tenant_keys)]
pub struct TenantKeyRow {
    pub municipality_code: String,
    pub version: i32,
    pub wrapped_data_key: Vec<u8>,
    pub wrapped_index_key: Vec<u8>,
    pub master_key_id: String,
    pub created_at: NaiveDateTime,
}

/// One row of [`TenantRow::with_keys_and_product`].
pub type KeysAndProduct = (
    TenantRow,
    TenantKeyRow,
    Option<crate::db::models::vaccines::ProductRow>,
    Option<String>,
);

pub const ACTIVE: &str = "active";
pub const ERASED: &str = "erased";

impl TenantRow {
    pub fn find(conn: &mut DbConn, code: &str) -> Result<Option<TenantRow>, DbError> {
        Ok(tenants::table
            .find(code)
            .select(TenantRow::as_select())
            .first(conn)
            .optional()?)
    }

    /// The municipality's row with its key rows in version order, in one
    /// query where it holds keys (opening a partition on every request).
    pub fn with_keys(
        conn: &mut DbConn,
        code: &str,
    ) -> Result<Option<(TenantRow, Vec<TenantKeyRow>)>, DbError> {
        let rows: Vec<(TenantRow, TenantKeyRow)> = tenants::table
            .inner_join(tenant_keys::table)
            .filter(tenants::municipality_code.eq(code))
            .order(tenant_keys::version)
            .select((TenantRow::as_select(), TenantKeyRow::as_select()))
            .load(conn)?;
        let Some((tenant, _)) = rows.first() else {
            // No keys: erased, or not a tenant at all.
            return Ok(TenantRow::find(conn, code)?.map(|t| (t, Vec::new())));
        };
        let tenant = tenant.clone();
        Ok(Some((tenant, rows.into_iter().map(|(_, k)| k).collect())))
    }

    /// What recording a dose reads from the platform's tables, in one
    /// query: the municipality's row and key rows (as `with_keys`), the
    /// product, and whether `lot` is known for it. Empty when the
    /// municipality holds no keys; the product is `None` when unknown.
    pub fn with_keys_and_product(
        conn: &mut DbConn,
        code: &str,
        product: &str,
        lot: &str,
    ) -> Result<Vec<KeysAndProduct>, DbError> {
        use crate::db::models::vaccines::ProductRow;
        use crate::db::schema::{vaccine_lots, vaccine_products};
        Ok(tenants::table
            .inner_join(tenant_keys::table)
            .left_join(
                vaccine_products::table.on(vaccine_products::product_code.eq(product.to_owned())),
            )
            .left_join(
                vaccine_lots::table.on(vaccine_lots::product_code
                    .eq(vaccine_products::product_code)
                    .and(vaccine_lots::lot_number.eq(lot))),
            )
            .filter(tenants::municipality_code.eq(code))
            .order(tenant_keys::version)
            .select((
                TenantRow::as_select(),
                TenantKeyRow::as_select(),
                Option::<ProductRow>::as_select(),
                vaccine_lots::lot_number.nullable(),
            ))
            .load(conn)?)
    }

    pub fn all(conn: &mut DbConn) -> Result<Vec<TenantRow>, DbError> {
        Ok(tenants::table
            .order(tenants::municipality_code)
            .select(TenantRow::as_select())
            .load(conn)?)
    }

    pub fn active(conn: &mut DbConn) -> Result<Vec<TenantRow>, DbError> {
        Ok(tenants::table
            .filter(tenants::status.eq(ACTIVE))
            .order(tenants::municipality_code)
            .select(TenantRow::as_select())
            .load(conn)?)
    }

    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(tenants::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn reactivate(
        conn: &mut DbConn,
        code: &str,
        version: i32,
        at: NaiveDateTime,
    ) -> Result<(), DbError> {
        diesel::update(tenants::table.find(code))
            .set((
                tenants::status.eq(ACTIVE),
                tenants::active_key_version.eq(version),
                tenants::enabled_at.eq(at),
                tenants::erased_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        Ok(())
    }

    pub fn set_active_version(conn: &mut DbConn, code: &str, version: i32) -> Result<(), DbError> {
        diesel::update(tenants::table.find(code))
            .set(tenants::active_key_version.eq(version))
            .execute(conn)?;
        Ok(())
    }

    pub fn set_require_totp(conn: &mut DbConn, code: &str, on: bool) -> Result<(), DbError> {
        diesel::update(tenants::table.find(code))
            .set(tenants::require_totp.eq(on))
            .execute(conn)?;
        Ok(())
    }

    pub fn set_certificate_channels(
        conn: &mut DbConn,
        code: &str,
        channels: &str,
    ) -> Result<(), DbError> {
        diesel::update(tenants::table.find(code))
            .set(tenants::certificate_channels.eq(channels))
            .execute(conn)?;
        Ok(())
    }

    pub fn mark_erased(conn: &mut DbConn, code: &str, at: NaiveDateTime) -> Result<(), DbError> {
        diesel::update(tenants::table.find(code))
            .set((tenants::status.eq(ERASED), tenants::erased_at.eq(Some(at))))
            .execute(conn)?;
        Ok(())
    }
}

impl TenantKeyRow {
    pub fn for_municipality(conn: &mut DbConn, code: &str) -> Result<Vec<TenantKeyRow>, DbError> {
        Ok(tenant_keys::table
            .filter(tenant_keys::municipality_code.eq(code))
            .order(tenant_keys::version)
            .select(TenantKeyRow::as_select())
            .load(conn)?)
    }

    pub fn all(conn: &mut DbConn) -> Result<Vec<TenantKeyRow>, DbError> {
        Ok(tenant_keys::table
            .order((tenant_keys::municipality_code, tenant_keys::version))
            .select(TenantKeyRow::as_select())
            .load(conn)?)
    }

    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(tenant_keys::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    /// Replaces the wrapping of one key version (master-key rotation).
    pub fn rewrap(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::update(tenant_keys::table.find((&self.municipality_code, self.version)))
            .set((
                tenant_keys::wrapped_data_key.eq(&self.wrapped_data_key),
                tenant_keys::wrapped_index_key.eq(&self.wrapped_index_key),
                tenant_keys::master_key_id.eq(&self.master_key_id),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// Destroys key versions; data sealed with them can never be opened again.
    pub fn destroy(
        conn: &mut DbConn,
        code: &str,
        versions_below: Option<i32>,
    ) -> Result<usize, DbError> {
        let q = tenant_keys::table.filter(tenant_keys::municipality_code.eq(code));
        Ok(match versions_below {
            Some(v) => diesel::delete(q.filter(tenant_keys::version.lt(v))).execute(conn)?,
            None => diesel::delete(q).execute(conn)?,
        })
    }
}

/// A municipality's password rules (columns of `tenants`).
#[derive(Debug, Clone, Copy, Queryable, Selectable, AsChangeset, PartialEq, Eq)]
#[diesel(table_name = tenants)]
pub struct PasswordRulesRow {
    /// Days a password lasts; 0 for no limit.
    pub password_max_days: i32,
    /// Earlier passwords that may not be chosen again.
    pub password_reuse_count: i32,
}

impl PasswordRulesRow {
    pub fn find(conn: &mut DbConn, code: &str) -> Result<Option<PasswordRulesRow>, DbError> {
        Ok(tenants::table
            .find(code)
            .select(PasswordRulesRow::as_select())
            .first(conn)
            .optional()?)
    }

    pub fn save(&self, conn: &mut DbConn, code: &str) -> Result<usize, DbError> {
        Ok(diesel::update(tenants::table.find(code))
            .set(self)
            .execute(conn)?)
    }
}
