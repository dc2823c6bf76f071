//! Vaccination sites: registered by a municipal administrator, each with
//! tablet accounts bound to it. A site records doses for tickets of any
//! municipality; what it may see of a person is the masked hint only.

use crate::audit::{self, Actor, AuditKey, Entry};
use crate::clock::now;
use crate::db::models::accounts::AccountRow;
use crate::db::models::sites::SiteRow;
use crate::db::{DbConn, DbError};
#[cfg(test)]
use crate::domain::Reason;
use crate::domain::{FieldError, MunicipalityCode};

/// Clinic (個別接種) or mass site (集団接種).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteKind {
    Clinic,
    Mass,
}

impl SiteKind {
    pub const ALL: [SiteKind; 2] = [SiteKind::Clinic, SiteKind::Mass];

    pub fn code(&self) -> &'static str {
        match self {
            SiteKind::Clinic => "clinic",
            SiteKind::Mass => "mass",
        }
    }

    pub fn parse(s: &str) -> Option<SiteKind> {
        SiteKind::ALL.into_iter().find(|k| k.code() == s)
    }
}

/// 接種会場名: what the ledger export prints as the site's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteName(String);

impl SiteName {
    pub const FIELD: &'static str = "会場名";
    pub const MAX: usize = 100;

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        crate::domain::parse_text(Self::FIELD, input, Self::MAX).map(SiteName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Registers a site of the administrator's municipality.
pub fn register(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    municipality: MunicipalityCode,
    name: &SiteName,
    kind: SiteKind,
) -> Result<SiteRow, DbError> {
    let row = SiteRow {
        id: crate::domain::new_record_id(),
        municipality_code: municipality.to_string(),
        name: name.as_str().to_string(),
        kind: kind.code().to_string(),
        created_by: actor.account_id.clone().unwrap_or_default(),
        created_at: now(),
        closed_at: None,
    };
    crate::db::write_transaction(conn, |conn| {
        row.insert(conn)?;
        audit::append(
            conn,
            key,
            actor,
            Entry::done(
                municipality.as_str(),
                "sites.register",
                Some(format!("site:{}", row.id)),
                Some(format!("kind={}", kind.code())),
            ),
        )?;
        Ok(row.clone())
    })
}

/// Closes a site: its tablets can no longer record. Doses already recorded
/// keep the site's name.
pub fn close(
    conn: &mut DbConn,
    key: &AuditKey,
    actor: &Actor,
    municipality: MunicipalityCode,
    id: &str,
) -> Result<bool, DbError> {
    crate::db::write_transaction(conn, |conn| {
        let closed = SiteRow::close(conn, municipality.as_str(), id, now())?;
        if closed {
            audit::append(
                conn,
                key,
                actor,
                Entry::done(
                    municipality.as_str(),
                    "sites.close",
                    Some(format!("site:{id}")),
                    None,
                ),
            )?;
        }
        Ok(closed)
    })
}

/// A site as the administrator's list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub kind: Option<SiteKind>,
    pub open: bool,
}

/// The municipality's sites, closed ones included.
pub fn of_municipality(
    conn: &mut crate::db::DbConn,
    code: crate::domain::MunicipalityCode,
) -> Result<Vec<Listed>, crate::db::DbError> {
    Ok(SiteRow::of_municipality(conn, code.as_str())?
        .into_iter()
        .map(|s| Listed {
            kind: SiteKind::parse(&s.kind),
            open: s.closed_at.is_none(),
            id: s.id,
            name: s.name,
        })
        .collect())
}

/// The open site a tablet records at.
#[derive(Debug, Clone)]
pub struct OpenSite {
    pub id: String,
    pub municipality_code: String,
    pub name: String,
}

/// The open site a tablet account records for, if it has one, from the
/// site row read with the account.
pub fn usable_for(account: &AccountRow, site: Option<SiteRow>) -> Option<OpenSite> {
    site.filter(|s| account.site_id.as_deref() == Some(s.id.as_str()))
        .filter(|s| s.closed_at.is_none())
        .filter(|s| account.municipality_code.as_deref() == Some(s.municipality_code.as_str()))
        .map(|s| OpenSite {
            id: s.id,
            municipality_code: s.municipality_code,
            name: s.name,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_names() {
        assert_eq!(
            SiteName::parse(" 福山市集団接種会場 ").unwrap().as_str(),
            "福山市集団接種会場"
        );
        assert_eq!(SiteName::parse("").unwrap_err().reason, Reason::Empty);
        assert_eq!(
            SiteName::parse("a\u{7}").unwrap_err().reason,
            Reason::ControlChars
        );
        assert_eq!(SiteKind::parse("mass"), Some(SiteKind::Mass));
        assert_eq!(SiteKind::parse("x"), None);
    }
}
