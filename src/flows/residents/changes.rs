//! Changes to a registered resident: corrections, the moved-out and deceased
//! flags, address protection, each with its history event; and the history
//! read back.

use super::*;

/// What one history entry says, sealed: the reason staff gave and each
/// field's value before and after.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EventDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// One line of a resident's history, opened.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub at: chrono::NaiveDateTime,
    pub kind: String,
    pub account_id: Option<String>,
    pub detail: EventDetail,
}

const EVENTS: &str = "resident_events";

/// Appends a history entry; the detail is sealed under the event's own id.
#[allow(clippy::too_many_arguments)]
pub fn append_event(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
    kind: &str,
    account_id: Option<&str>,
    detail: &EventDetail,
    at: chrono::NaiveDateTime,
) -> Result<(), ResidentError> {
    event_row(scope, resident_id, kind, account_id, detail, at).insert(conn)?;
    Ok(())
}

/// An entry of a resident's history, its detail sealed, not yet stored.
pub fn event_row(
    scope: &Scope<'_>,
    resident_id: &str,
    kind: &str,
    account_id: Option<&str>,
    detail: &EventDetail,
    at: chrono::NaiveDateTime,
) -> crate::db::models::resident_events::ResidentEventRow {
    let id = crate::domain::new_record_id();
    let json = serde_json::to_vec(detail).unwrap_or_default();
    let sealed = scope.seal(
        AadContext {
            table: EVENTS,
            column: "detail",
            row_id: &id,
        },
        &json,
    );
    crate::db::models::resident_events::ResidentEventRow {
        municipality_code: scope.code().to_string(),
        id,
        resident_id: resident_id.to_string(),
        at,
        kind: kind.to_string(),
        account_id: account_id.map(str::to_string),
        detail_sealed: Some(sealed),
        staged_seq: None,
    }
}

pub fn history(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
) -> Result<Vec<HistoryEntry>, ResidentError> {
    use crate::db::models::resident_events::ResidentEventRow;
    ResidentEventRow::of_resident(scope, conn, resident_id)?
        .into_iter()
        .map(|e| {
            let detail = match &e.detail_sealed {
                Some(v) => {
                    let clear = scope.open(
                        AadContext {
                            table: EVENTS,
                            column: "detail",
                            row_id: &e.id,
                        },
                        v,
                    )?;
                    serde_json::from_slice(&clear).unwrap_or_default()
                }
                None => EventDetail::default(),
            };
            Ok(HistoryEntry {
                at: e.at,
                kind: e.kind,
                account_id: e.account_id,
                detail,
            })
        })
        .collect()
}
/// The attributes staff may correct (the individual number and 宛名番号 are
/// the registry's, corrected by re-import).
#[derive(Debug, Clone)]
pub struct Correction {
    pub name_kanji: PersonName,
    pub name_kana: KanaName,
    pub birth_date: BirthDate,
    pub sex: Sex,
    pub address: AddressFix,
}

/// What a correction does to the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressFix {
    /// Leaves it as stored: the form was shown without it (a protected
    /// resident's address, to someone who may not see it).
    Keep,
    /// Sets it (none: no address).
    Set(Option<String>),
}

/// Records in the resident's own (sealed) history that their protected
/// address was shown, with the reason given: the operation log says only
/// that it was.
pub fn address_viewed(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
    reason: &crate::domain::ChangeReason,
    account_id: &str,
) -> Result<(), ResidentError> {
    reason_event(scope, conn, id, "address_viewed", reason, account_id)
}

/// A held transfer inquiry about the resident approved or refused: the
/// administrator's reason goes into the resident's sealed history.
pub fn inquiry_decided(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
    approved: bool,
    reason: &crate::domain::ChangeReason,
    account_id: &str,
) -> Result<(), ResidentError> {
    let kind = if approved {
        "inquiry_approved"
    } else {
        "inquiry_refused"
    };
    reason_event(scope, conn, id, kind, reason, account_id)
}

/// An event whose detail is only the reason staff gave.
fn reason_event(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
    kind: &str,
    reason: &crate::domain::ChangeReason,
    account_id: &str,
) -> Result<(), ResidentError> {
    append_event(
        scope,
        conn,
        id,
        kind,
        Some(account_id),
        &EventDetail {
            reason: Some(reason.as_str().to_string()),
            ..Default::default()
        },
        now(),
    )
}

/// Corrects a resident's attributes; the reason and each change go into the
/// history. Returns false when nothing differed. A protected resident's
/// address is changed only by an account that may see it (`sees_protected`).
pub fn correct(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
    fix: &Correction,
    reason: &crate::domain::ChangeReason,
    account_id: &str,
    sees_protected: bool,
) -> Result<bool, ResidentError> {
    let Some(current) = get(scope, conn, id)? else {
        return Err(ResidentError::NotFound);
    };
    if current.address_protected && !sees_protected && fix.address != AddressFix::Keep {
        return Err(ResidentError::AddressProtected);
    }
    let mut changes = Vec::new();
    let mut note = |field: &str, before: String, after: String| {
        if before != after {
            changes.push(Change {
                field: field.to_string(),
                before,
                after,
            });
        }
    };
    note(
        PersonName::FIELD,
        current.name_kanji.as_str().into(),
        fix.name_kanji.as_str().into(),
    );
    note(
        KanaName::FIELD,
        current.name_kana.as_str().into(),
        fix.name_kana.as_str().into(),
    );
    note(
        BirthDate::FIELD,
        current.birth_date.date().to_string(),
        fix.birth_date.date().to_string(),
    );
    note(Sex::FIELD, current.sex.code().into(), fix.sex.code().into());
    let address = match &fix.address {
        AddressFix::Keep => current.address.clone(),
        AddressFix::Set(a) => a.clone(),
    };
    note(
        crate::domain::Address::FIELD,
        current.address.clone().unwrap_or_default(),
        address.clone().unwrap_or_default(),
    );
    if changes.is_empty() {
        return Ok(false);
    }
    let at = now();
    let fresh = NewResident {
        addressee_number: current.addressee_number,
        my_number: current.my_number,
        name_kanji: fix.name_kanji.clone(),
        name_kana: fix.name_kana.clone(),
        birth_date: fix.birth_date,
        sex: fix.sex,
        address,
    };
    let mut row = new_row(scope, &fresh, id.to_string(), at);
    row.updated_at = at;
    row.update_sealed(scope, conn)?;
    append_event(
        scope,
        conn,
        id,
        "corrected",
        Some(account_id),
        &EventDetail {
            reason: Some(reason.as_str().to_string()),
            import: None,
            changes,
        },
        at,
    )?;
    Ok(true)
}

/// The status flags of PRODUCT.md flow 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    MovedOut,
    Deceased,
}

impl Flag {
    pub fn code(&self) -> &'static str {
        match self {
            Flag::MovedOut => "moved_out",
            Flag::Deceased => "deceased",
        }
    }

    pub fn parse(s: &str) -> Option<Flag> {
        match s {
            "moved_out" => Some(Flag::MovedOut),
            "deceased" => Some(Flag::Deceased),
            _ => None,
        }
    }
}

/// Sets (with a date) or clears a flag. Setting one invalidates the
/// resident's active ticket; the record itself stays, since the old
/// municipality must still answer inquiries about a person who moved.
pub fn set_flag(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
    flag: Flag,
    on: Option<NaiveDate>,
    reason: &crate::domain::ChangeReason,
    account_id: &str,
) -> Result<(), ResidentError> {
    use crate::db::models::tickets::TicketRow;
    let Some(row) = ResidentRow::find_by_id_and_municipality(scope, conn, id)? else {
        return Err(ResidentError::NotFound);
    };
    let (mut moved, mut died) = (row.moved_out_on, row.deceased_on);
    let before = match flag {
        Flag::MovedOut => std::mem::replace(&mut moved, on),
        Flag::Deceased => std::mem::replace(&mut died, on),
    };
    let at = now();
    ResidentRow::set_flags(conn, id, moved, died, at)?;
    if on.is_some() {
        TicketRow::invalidate_active(scope, conn, id, flag.code(), at)?;
        // A ticket a running import issues them is published invalid too.
        // (On PostgreSQL, an import batch that read the resident before
        // this flag committed and commits after it is not caught.)
        TicketRow::invalidate_unpublished(scope, conn, id, flag.code(), at)?;
    }
    let show = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    append_event(
        scope,
        conn,
        id,
        if on.is_some() {
            flag.code()
        } else {
            "flag_cleared"
        },
        Some(account_id),
        &EventDetail {
            reason: Some(reason.as_str().to_string()),
            import: None,
            changes: vec![Change {
                field: flag.code().to_string(),
                before: show(before),
                after: show(on),
            }],
        },
        at,
    )?;
    Ok(())
}

/// Sets a support measure (DV支援措置) with its period, changes the period
/// of one in place, or lifts it (`None`); each change is a history event
/// naming the period. Returns false when nothing changed. A measure once
/// stored is changed or lifted only by an account that may see protected
/// addresses (`sees_protected`): ending it shows the address to everyone.
pub fn set_protection(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
    period: Option<crate::domain::Protection>,
    reason: &crate::domain::ChangeReason,
    account_id: &str,
    sees_protected: bool,
) -> Result<bool, ResidentError> {
    let Some(row) = ResidentRow::find_by_id_and_municipality(scope, conn, id)? else {
        return Err(ResidentError::NotFound);
    };
    if row.address_protected && !sees_protected {
        return Err(ResidentError::AddressProtected);
    }
    let stored = stored_period(&row);
    if row.address_protected == period.is_some() && (period.is_none() || stored == period) {
        return Ok(false);
    }
    let at = now();
    ResidentRow::set_protected(conn, id, period, at)?;
    let show = |p: Option<crate::domain::Protection>| {
        p.map(|p| {
            format!(
                "{}〜{} 見直し {}",
                p.from,
                p.until.map(|u| u.to_string()).unwrap_or_default(),
                p.review
            )
        })
        .unwrap_or_else(|| "-".to_string())
    };
    let kind = match (row.address_protected, period.is_some()) {
        (false, true) => "protected",
        (true, true) => "protection_changed",
        _ => "unprotected",
    };
    append_event(
        scope,
        conn,
        id,
        kind,
        Some(account_id),
        &EventDetail {
            reason: Some(reason.as_str().to_string()),
            changes: vec![Change {
                field: "支援措置の期間".into(),
                before: show(stored.filter(|_| row.address_protected)),
                after: show(period),
            }],
            ..Default::default()
        },
        at,
    )?;
    Ok(true)
}
