use crate::db::models::tenants::KeysAndProduct;
use crate::db::schema::{accounts, login_throttle, password_history, platform_secrets, sessions};
use crate::db::{DbConn, DbError};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = accounts)]
pub struct AccountRow {
    pub id: String,
    pub login_id: String,
    pub role: String,
    pub municipality_code: Option<String>,
    pub prefecture_code: Option<String>,
    pub display_name: String,
    pub permissions: String,
    pub password_hash: String,
    pub must_change_password: bool,
    pub expires_on: Option<NaiveDate>,
    pub disabled_at: Option<NaiveDateTime>,
    pub device_name: Option<String>,
    pub responsible_person: Option<String>,
    pub failed_logins: i32,
    pub locked_until: Option<NaiveDateTime>,
    pub last_login_at: Option<NaiveDateTime>,
    pub last_login_addr: Option<String>,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub totp_secret_wrapped: Option<Vec<u8>>,
    pub totp_last_step: Option<i64>,
    /// The vaccination site a tablet account is bound to.
    pub site_id: Option<String>,
}

impl AccountRow {
    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(accounts::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn find_by_login_id(
        conn: &mut DbConn,
        login_id: &str,
    ) -> Result<Option<AccountRow>, DbError> {
        Ok(accounts::table
            .filter(accounts::login_id.eq(login_id))
            .select(AccountRow::as_select())
            .first(conn)
            .optional()?)
    }

    pub fn find(conn: &mut DbConn, id: &str) -> Result<Option<AccountRow>, DbError> {
        Ok(accounts::table
            .find(id)
            .select(AccountRow::as_select())
            .first(conn)
            .optional()?)
    }

    pub fn count_operators(conn: &mut DbConn) -> Result<i64, DbError> {
        Ok(accounts::table
            .filter(accounts::role.eq("operator"))
            .count()
            .get_result(conn)?)
    }

    pub fn record_failure(
        conn: &mut DbConn,
        id: &str,
        failures: i32,
        locked_until: Option<NaiveDateTime>,
    ) -> Result<(), DbError> {
        diesel::update(accounts::table.find(id))
            .set((
                accounts::failed_logins.eq(failures),
                accounts::locked_until.eq(locked_until),
            ))
            .execute(conn)?;
        Ok(())
    }

    pub fn record_login(
        conn: &mut DbConn,
        id: &str,
        at: NaiveDateTime,
        addr: &str,
    ) -> Result<(), DbError> {
        diesel::update(accounts::table.find(id))
            .set((
                accounts::failed_logins.eq(0),
                accounts::locked_until.eq(None::<NaiveDateTime>),
                accounts::last_login_at.eq(Some(at)),
                accounts::last_login_addr.eq(Some(addr)),
            ))
            .execute(conn)?;
        Ok(())
    }

    pub fn set_totp(conn: &mut DbConn, id: &str, wrapped: &[u8], step: i64) -> Result<(), DbError> {
        diesel::update(accounts::table.find(id))
            .set((
                accounts::totp_secret_wrapped.eq(Some(wrapped)),
                accounts::totp_last_step.eq(Some(step)),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// Accepts a time step only if it is later than the last one accepted;
    /// returns whether this call took it (so two racing logins cannot both).
    pub fn take_totp_step(conn: &mut DbConn, id: &str, step: i64) -> Result<bool, DbError> {
        let n = diesel::update(
            accounts::table.find(id).filter(
                accounts::totp_last_step
                    .is_null()
                    .or(accounts::totp_last_step.lt(step)),
            ),
        )
        .set(accounts::totp_last_step.eq(Some(step)))
        .execute(conn)?;
        Ok(n == 1)
    }

    pub fn set_password(
        conn: &mut DbConn,
        id: &str,
        hash: &str,
        must_change: bool,
    ) -> Result<(), DbError> {
        diesel::update(accounts::table.find(id))
            .set((
                accounts::password_hash.eq(hash),
                accounts::must_change_password.eq(must_change),
                accounts::password_changed_at.eq(crate::clock::now()),
            ))
            .execute(conn)?;
        Ok(())
    }

    /// When the password was last set (none: when the account was made).
    pub fn password_set_at(conn: &mut DbConn, id: &str) -> Result<Option<NaiveDateTime>, DbError> {
        Ok(accounts::table
            .find(id)
            .select((accounts::password_changed_at, accounts::created_at))
            .first::<(Option<NaiveDateTime>, NaiveDateTime)>(conn)
            .optional()?
            .map(|(changed, created)| changed.unwrap_or(created)))
    }

    /// The password is to be changed at the next page.
    pub fn require_password_change(conn: &mut DbConn, id: &str) -> Result<(), DbError> {
        diesel::update(accounts::table.find(id))
            .set(accounts::must_change_password.eq(true))
            .execute(conn)?;
        Ok(())
    }
}

/// A tablet account's enrolled device and pending enrolment code.
#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = accounts)]
pub struct DeviceRow {
    pub device_key_hash: Option<String>,
    pub device_enrolled_at: Option<NaiveDateTime>,
    pub enrol_code_hash: Option<String>,
    pub enrol_code_expires: Option<NaiveDateTime>,
}

impl DeviceRow {
    pub fn of(conn: &mut DbConn, account_id: &str) -> Result<Option<DeviceRow>, DbError> {
        Ok(accounts::table
            .find(account_id)
            .select(DeviceRow::as_select())
            .first(conn)
            .optional()?)
    }

    /// The municipality's tablets with an enrolled device, and when.
    pub fn enrolled_of_municipality(
        conn: &mut DbConn,
        code: &str,
    ) -> Result<Vec<(String, NaiveDateTime)>, DbError> {
        Ok(accounts::table
            .filter(accounts::municipality_code.eq(code))
            .filter(accounts::device_enrolled_at.is_not_null())
            .select((accounts::id, accounts::device_enrolled_at.assume_not_null()))
            .load(conn)?)
    }

    /// A one-time enrolment code (its hash) valid until `expires`.
    pub fn set_code(
        conn: &mut DbConn,
        account_id: &str,
        code_hash: &str,
        expires: NaiveDateTime,
    ) -> Result<usize, DbError> {
        Ok(diesel::update(accounts::table.find(account_id))
            .set((
                accounts::enrol_code_hash.eq(code_hash),
                accounts::enrol_code_expires.eq(expires),
            ))
            .execute(conn)?)
    }

    /// Binds the account to the device whose key hashes to `key_hash`,
    /// using up the code `code_hash` if it still holds at `at`. False when
    /// it does not.
    pub fn enrol(
        conn: &mut DbConn,
        account_id: &str,
        code_hash: &str,
        key_hash: &str,
        at: NaiveDateTime,
    ) -> Result<bool, DbError> {
        let n = diesel::update(
            accounts::table
                .find(account_id)
                .filter(accounts::enrol_code_hash.eq(code_hash))
                .filter(accounts::enrol_code_expires.gt(at)),
        )
        .set((
            accounts::device_key_hash.eq(key_hash),
            accounts::device_enrolled_at.eq(at),
            accounts::enrol_code_hash.eq(None::<String>),
            accounts::enrol_code_expires.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// Unbinds the device (and drops any pending code).
    pub fn revoke(conn: &mut DbConn, account_id: &str) -> Result<usize, DbError> {
        Ok(diesel::update(accounts::table.find(account_id))
            .set((
                accounts::device_key_hash.eq(None::<String>),
                accounts::device_enrolled_at.eq(None::<NaiveDateTime>),
                accounts::enrol_code_hash.eq(None::<String>),
                accounts::enrol_code_expires.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?)
    }
}

/// When each shared account of a municipality is next to be reviewed.
pub struct SharedReview;

impl SharedReview {
    pub fn set(conn: &mut DbConn, account_id: &str, on: NaiveDate) -> Result<usize, DbError> {
        Ok(diesel::update(accounts::table.find(account_id))
            .set(accounts::shared_review_on.eq(on))
            .execute(conn)?)
    }

    pub fn of_municipality(
        conn: &mut DbConn,
        code: &str,
    ) -> Result<Vec<(String, Option<NaiveDate>)>, DbError> {
        Ok(accounts::table
            .filter(accounts::municipality_code.eq(code))
            .filter(accounts::role.eq("site_tablet"))
            .select((accounts::id, accounts::shared_review_on))
            .load(conn)?)
    }
}

/// An account's earlier password hashes, newest first.
pub struct PasswordHistory;

impl PasswordHistory {
    pub fn recent(conn: &mut DbConn, account_id: &str, n: i64) -> Result<Vec<String>, DbError> {
        Ok(password_history::table
            .filter(password_history::account_id.eq(account_id))
            .order(password_history::at.desc())
            .limit(n)
            .select(password_history::password_hash)
            .load(conn)?)
    }

    /// Keeps `hash` as the newest earlier password, and no more than
    /// `keep` of them.
    pub fn push(conn: &mut DbConn, account_id: &str, hash: &str, keep: i64) -> Result<(), DbError> {
        diesel::insert_into(password_history::table)
            .values((
                password_history::account_id.eq(account_id),
                password_history::at.eq(crate::clock::now()),
                password_history::password_hash.eq(hash),
            ))
            .execute(conn)?;
        let kept: Vec<NaiveDateTime> = password_history::table
            .filter(password_history::account_id.eq(account_id))
            .order(password_history::at.desc())
            .limit(keep.max(0))
            .select(password_history::at)
            .load(conn)?;
        diesel::delete(
            password_history::table
                .filter(password_history::account_id.eq(account_id))
                .filter(password_history::at.ne_all(kept)),
        )
        .execute(conn)?;
        Ok(())
    }
}

/// What [`SessionRow::find_with_account`] reads.
#[derive(Debug, Clone)]
pub struct SessionParts {
    pub session: SessionRow,
    pub account: AccountRow,
    pub site: Option<crate::db::models::sites::SiteRow>,
    pub scans_locked_until: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = sessions, treat_none_as_default_value = false)]
pub struct SessionRow {
    pub token_hash: String,
    pub account_id: String,
    pub csrf_token: String,
    pub client_addr: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub previous_login_at: Option<NaiveDateTime>,
    pub previous_login_addr: Option<String>,
}

impl SessionRow {
    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(sessions::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn find(conn: &mut DbConn, token_hash: &str) -> Result<Option<SessionRow>, DbError> {
        Ok(sessions::table
            .find(token_hash)
            .select(SessionRow::as_select())
            .first(conn)
            .optional()?)
    }

    /// The session with what every request asks of it, in one query: its
    /// account, the account's site (a tablet's), and until when the
    /// account's ticket scans are paused (its row in the throttle under
    /// `scan_key_prefix` + account id).
    pub fn find_with_account(
        conn: &mut DbConn,
        token_hash: &str,
        scan_key_prefix: &str,
    ) -> Result<Option<SessionParts>, DbError> {
        use crate::db::models::sites::SiteRow;
        use crate::db::schema::sites;
        use diesel::sql_types::Text;
        let found: Option<(
            SessionRow,
            AccountRow,
            Option<SiteRow>,
            Option<NaiveDateTime>,
        )> = sessions::table
            .inner_join(accounts::table)
            .left_join(sites::table.on(accounts::site_id.eq(sites::id.nullable())))
            .left_join(
                login_throttle::table.on(login_throttle::throttle_key
                    .eq(scan_key_prefix.into_sql::<Text>().concat(accounts::id))),
            )
            .filter(sessions::token_hash.eq(token_hash))
            .select((
                SessionRow::as_select(),
                AccountRow::as_select(),
                Option::<SiteRow>::as_select(),
                login_throttle::locked_until.nullable(),
            ))
            .first(conn)
            .optional()?;
        Ok(found.map(|(session, account, site, locked)| SessionParts {
            session,
            account,
            site,
            scans_locked_until: locked,
        }))
    }

    /// As `find_with_account`, and in the same query what recording a dose
    /// reads from the platform's tables (see
    /// `TenantRow::with_keys_and_product`): a machine client's recording
    /// then costs one round trip before its transaction, not two. One row
    /// per key version of the municipality; tenant and key are `None` when
    /// it holds no keys.
    pub fn find_for_recording(
        conn: &mut DbConn,
        token_hash: &str,
        scan_key_prefix: &str,
        code: &str,
        product: &str,
        lot: &str,
    ) -> Result<Vec<(SessionParts, Option<KeysAndProduct>)>, DbError> {
        use crate::db::models::sites::SiteRow;
        use crate::db::models::tenants::{TenantKeyRow, TenantRow};
        use crate::db::models::vaccines::ProductRow;
        use crate::db::schema::{sites, tenant_keys, tenants, vaccine_lots, vaccine_products};
        use diesel::sql_types::Text;
        type Row = (
            SessionRow,
            AccountRow,
            Option<SiteRow>,
            Option<NaiveDateTime>,
            Option<TenantRow>,
            Option<TenantKeyRow>,
            Option<ProductRow>,
            Option<String>,
        );
        let rows: Vec<Row> = sessions::table
            .inner_join(accounts::table)
            .left_join(sites::table.on(accounts::site_id.eq(sites::id.nullable())))
            .left_join(
                login_throttle::table.on(login_throttle::throttle_key.eq(scan_key_prefix
                    .to_owned()
                    .into_sql::<Text>()
                    .concat(accounts::id))),
            )
            .left_join(tenants::table.on(tenants::municipality_code.eq(code.to_owned())))
            .left_join(
                tenant_keys::table
                    .on(tenant_keys::municipality_code.eq(tenants::municipality_code)),
            )
            .left_join(
                vaccine_products::table.on(vaccine_products::product_code.eq(product.to_owned())),
            )
            .left_join(
                vaccine_lots::table.on(vaccine_lots::product_code
                    .eq(vaccine_products::product_code)
                    .and(vaccine_lots::lot_number.eq(lot.to_owned()))),
            )
            .filter(sessions::token_hash.eq(token_hash.to_owned()))
            .order(tenant_keys::version)
            .select((
                SessionRow::as_select(),
                AccountRow::as_select(),
                Option::<SiteRow>::as_select(),
                login_throttle::locked_until.nullable(),
                Option::<TenantRow>::as_select(),
                Option::<TenantKeyRow>::as_select(),
                Option::<ProductRow>::as_select(),
                vaccine_lots::lot_number.nullable(),
            ))
            .load(conn)?;
        Ok(rows
            .into_iter()
            .map(
                |(session, account, site, locked, tenant, key, product, lot)| {
                    let parts = SessionParts {
                        session,
                        account,
                        site,
                        scans_locked_until: locked,
                    };
                    (parts, tenant.zip(key).map(|(t, k)| (t, k, product, lot)))
                },
            )
            .collect())
    }

    pub fn touch(conn: &mut DbConn, token_hash: &str, at: NaiveDateTime) -> Result<(), DbError> {
        diesel::update(sessions::table.find(token_hash))
            .set(sessions::last_seen_at.eq(at))
            .execute(conn)?;
        Ok(())
    }

    pub fn delete(conn: &mut DbConn, token_hash: &str) -> Result<(), DbError> {
        diesel::delete(sessions::table.find(token_hash)).execute(conn)?;
        Ok(())
    }

    pub fn delete_for_account(conn: &mut DbConn, account_id: &str) -> Result<usize, DbError> {
        Ok(
            diesel::delete(sessions::table.filter(sessions::account_id.eq(account_id)))
                .execute(conn)?,
        )
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = login_throttle, treat_none_as_default_value = false)]
pub struct ThrottleRow {
    pub throttle_key: String,
    pub failures: i32,
    pub window_start: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
}

impl ThrottleRow {
    pub fn find(conn: &mut DbConn, key: &str) -> Result<Option<ThrottleRow>, DbError> {
        Ok(login_throttle::table
            .find(key)
            .select(ThrottleRow::as_select())
            .first(conn)
            .optional()?)
    }

    /// Writes the row whole (insert or replace), portable across backends.
    pub fn save(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::delete(login_throttle::table.find(&self.throttle_key)).execute(conn)?;
        diesel::insert_into(login_throttle::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn clear(conn: &mut DbConn, key: &str) -> Result<(), DbError> {
        diesel::delete(login_throttle::table.find(key)).execute(conn)?;
        Ok(())
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, PartialEq)]
#[diesel(table_name = platform_secrets)]
pub struct PlatformSecretRow {
    pub name: String,
    pub wrapped_value: Vec<u8>,
    pub master_key_id: String,
    pub created_at: NaiveDateTime,
}

impl PlatformSecretRow {
    pub fn all(conn: &mut DbConn) -> Result<Vec<PlatformSecretRow>, DbError> {
        Ok(platform_secrets::table
            .order(platform_secrets::name)
            .select(PlatformSecretRow::as_select())
            .load(conn)?)
    }

    pub fn find(conn: &mut DbConn, name: &str) -> Result<Option<PlatformSecretRow>, DbError> {
        Ok(platform_secrets::table
            .find(name)
            .select(PlatformSecretRow::as_select())
            .first(conn)
            .optional()?)
    }

    pub fn insert(&self, conn: &mut DbConn) -> Result<(), DbError> {
        diesel::insert_into(platform_secrets::table)
            .values(self)
            .execute(conn)?;
        Ok(())
    }

    pub fn rewrap(
        conn: &mut DbConn,
        name: &str,
        wrapped: &[u8],
        master_key_id: &str,
    ) -> Result<(), DbError> {
        diesel::update(platform_secrets::table.find(name))
            .set((
                platform_secrets::wrapped_value.eq(wrapped),
                platform_secrets::master_key_id.eq(master_key_id),
            ))
            .execute(conn)?;
        Ok(())
    }
}

impl AccountRow {
    /// Accounts of one municipality, for its administrator.
    /// Holds the municipality's administrator rows to the end of the
    /// transaction, so that two administrators disabling each other at the
    /// same moment do not both find the other still active. (SQLite's
    /// writers already take their turn one at a time.)
    pub fn lock_administrators(conn: &mut DbConn, code: &str) -> Result<(), DbError> {
        if let DbConn::Postgresql(c) = conn {
            accounts::table
                .filter(accounts::municipality_code.eq(code))
                .filter(accounts::role.eq("municipal_admin"))
                .select(accounts::id)
                .for_update()
                .load::<String>(c)?;
        }
        Ok(())
    }

    pub fn of_municipality(conn: &mut DbConn, code: &str) -> Result<Vec<AccountRow>, DbError> {
        Ok(accounts::table
            .filter(accounts::municipality_code.eq(code))
            .order(accounts::login_id)
            .select(AccountRow::as_select())
            .load(conn)?)
    }

    /// An account, only if it belongs to this municipality: a foreign id is
    /// simply not found.
    pub fn find_by_id_and_municipality(
        conn: &mut DbConn,
        id: &str,
        code: &str,
    ) -> Result<Option<AccountRow>, DbError> {
        Ok(accounts::table
            .filter(accounts::id.eq(id))
            .filter(accounts::municipality_code.eq(code))
            .select(AccountRow::as_select())
            .first(conn)
            .optional()?)
    }

    /// Accounts without a municipality (operator, viewers), for the operator.
    pub fn platform_accounts(conn: &mut DbConn) -> Result<Vec<AccountRow>, DbError> {
        Ok(accounts::table
            .filter(accounts::municipality_code.is_null())
            .order(accounts::login_id)
            .select(AccountRow::as_select())
            .load(conn)?)
    }

    pub fn disable(conn: &mut DbConn, id: &str, at: NaiveDateTime) -> Result<(), DbError> {
        diesel::update(accounts::table.find(id))
            .set(accounts::disabled_at.eq(Some(at)))
            .execute(conn)?;
        Ok(())
    }

    pub fn unlock(conn: &mut DbConn, id: &str) -> Result<(), DbError> {
        diesel::update(accounts::table.find(id))
            .set((
                accounts::failed_logins.eq(0),
                accounts::locked_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        Ok(())
    }
}
