//! A municipality's password rules: how long a password lasts before its
//! holder must choose another, and how many earlier ones may not be chosen
//! again. The operator's and viewers' accounts (no municipality) follow
//! the defaults.

use super::*;
use crate::db::models::accounts::PasswordHistory;
use crate::db::models::tenants::PasswordRulesRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordRules {
    /// Days a password lasts; 0 for no limit.
    pub max_days: u32,
    /// Earlier passwords that may not be chosen again.
    pub reuse: u32,
}

impl Default for PasswordRules {
    fn default() -> PasswordRules {
        PasswordRules {
            max_days: 180,
            reuse: 5,
        }
    }
}

impl PasswordRules {
    pub const MAX_DAYS: u32 = 3650;
    pub const MAX_REUSE: u32 = 24;
}

/// The rules an account's password follows.
pub fn rules_of(conn: &mut DbConn, municipality: Option<&str>) -> Result<PasswordRules, DbError> {
    let Some(code) = municipality else {
        return Ok(PasswordRules::default());
    };
    Ok(PasswordRulesRow::find(conn, code)?
        .map(|r| PasswordRules {
            max_days: r.password_max_days.max(0) as u32,
            reuse: r.password_reuse_count.max(0) as u32,
        })
        .unwrap_or_default())
}

/// Sets a municipality's rules; logged in its chain.
pub fn set_rules(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    code: MunicipalityCode,
    rules: PasswordRules,
) -> Result<(), DbError> {
    let line = (
        "tenant.password_rules",
        format!("max_days={} reuse={}", rules.max_days, rules.reuse),
    );
    crate::flows::municipalities::save_setting(conn, key, actor, code, line, |conn| {
        PasswordRulesRow {
            password_max_days: rules.max_days.min(PasswordRules::MAX_DAYS) as i32,
            password_reuse_count: rules.reuse.min(PasswordRules::MAX_REUSE) as i32,
        }
        .save(conn, code.as_str())?;
        Ok(())
    })
}

/// Whether the account's password, set at `set_at`, has outlived its rules
/// at `at`.
pub fn expired(rules: PasswordRules, set_at: NaiveDateTime, at: NaiveDateTime) -> bool {
    rules.max_days > 0 && set_at + Duration::days(i64::from(rules.max_days)) < at
}

/// Whether `new` is one of the account's `rules.reuse` earlier passwords.
pub fn reused(
    conn: &mut DbConn,
    account_id: &str,
    rules: PasswordRules,
    new: &str,
) -> Result<bool, DbError> {
    if rules.reuse == 0 {
        return Ok(false);
    }
    Ok(
        PasswordHistory::recent(conn, account_id, i64::from(rules.reuse))?
            .iter()
            .any(|h| password::verify(h, new)),
    )
}

/// Keeps the password being replaced among the earlier ones.
pub fn remember(
    conn: &mut DbConn,
    account_id: &str,
    rules: PasswordRules,
    replaced_hash: &str,
) -> Result<(), DbError> {
    PasswordHistory::push(conn, account_id, replaced_hash, i64::from(rules.reuse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_expires_after_its_days_and_never_without_a_limit() {
        let set = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a valid time");
        let rules = PasswordRules {
            max_days: 30,
            reuse: 0,
        };
        assert!(!expired(rules, set, set + Duration::days(30)));
        assert!(expired(rules, set, set + Duration::days(31)));
        let none = PasswordRules {
            max_days: 0,
            reuse: 0,
        };
        assert!(!expired(none, set, set + Duration::days(10_000)));
    }
}
