//! After recording: the 要確認 queue and its decisions (confirm, reject),
//! corrections and deletions, each a history event and an operation-log line
//! in the same transaction, and a resident's history of dose events.

use super::*;

/// The kinds of event a dose can have after it was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Queued,
    Confirmed,
    Corrected,
    Deleted,
    Rejected,
}

impl EventKind {
    pub fn code(&self) -> &'static str {
        match self {
            EventKind::Queued => "queued",
            EventKind::Confirmed => "confirmed",
            EventKind::Corrected => "corrected",
            EventKind::Deleted => "deleted",
            EventKind::Rejected => "rejected",
        }
    }
}

fn reason_ctx(id: &str) -> AadContext<'_> {
    AadContext {
        table: "dose_events",
        column: "reason",
        row_id: id,
    }
}

pub(super) fn add_event(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    dose: &DoseRow,
    kind: EventKind,
    account_id: Option<&str>,
    detail: Option<String>,
    reason: Option<&ChangeReason>,
) -> Result<(), DoseError> {
    let id = crate::domain::new_record_id();
    let reason_sealed = reason.map(|r| scope.seal(reason_ctx(&id), r.as_str().as_bytes()));
    DoseEventRow {
        municipality_code: scope.code().to_string(),
        id,
        dose_id: dose.id.clone(),
        resident_id: dose.resident_id.clone(),
        at: now(),
        kind: kind.code().into(),
        account_id: account_id.map(str::to_string),
        detail,
        reason_sealed,
    }
    .insert(conn)?;
    Ok(())
}

fn dose(_scope: &Scope<'_>, conn: &mut TenantConn<'_>, id: &str) -> Result<DoseRow, DoseError> {
    DoseRow::find(conn, id)?.ok_or(DoseError::NotFound)
}

/// A status move staff make, and the event that records it.
struct Move {
    from: &'static [&'static str],
    to: &'static str,
    kind: EventKind,
}

/// Moves a dose's status and records why.
fn resolve(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
    m: Move,
    account_id: &str,
    reason: Option<&ChangeReason>,
) -> Result<DoseRow, DoseError> {
    let row = dose(scope, conn, id)?;
    if !DoseRow::set_status(conn, id, m.from, m.to)? {
        return Err(DoseError::Stale);
    }
    add_event(scope, conn, &row, m.kind, Some(account_id), None, reason)?;
    if row.status == rows::VALID && m.to != rows::VALID {
        revoke_certificates(scope, conn, &row, account_id)?;
    }
    Ok(row)
}

/// A dose that stops counting takes the certificates carrying it with it:
/// they are revoked in the same transaction, and staff reissue.
fn revoke_certificates(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    dose: &DoseRow,
    account_id: &str,
) -> Result<usize, DoseError> {
    let actor = crate::audit::Actor {
        account_id: Some(account_id.to_string()),
        login_id: None,
        client_addr: None,
    };
    crate::flows::certificates::revoke_carrying(scope, conn, &dose.resident_id, &dose.id, &actor)
        .map_err(|e| DoseError::Certificates(e.to_string()))
}

/// Doses that count although they were given on or after the day their
/// person moved out or died (the registry's change arrived after them) go
/// to the 要確認 queue, each with its event, its log line and the
/// certificates carrying it revoked. `ended` are the people whose flags
/// were just set; returns how many doses moved.
pub fn queue_after_end(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    ended: &[String],
    audit: &crate::audit::AuditKey,
    actor: &crate::audit::Actor,
) -> Result<usize, DoseError> {
    let mut moved = 0;
    for chunk in ended.chunks(500) {
        let people: std::collections::HashMap<String, ResidentRow> =
            ResidentRow::by_ids(scope, conn, chunk)?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect();
        for d in DoseRow::of_residents(scope, conn, chunk)? {
            let Some(p) = people.get(&d.resident_id) else {
                continue;
            };
            if d.status != rows::VALID {
                continue;
            }
            let mut rules = Rule::split(d.quality_flags.as_deref());
            for (on, rule) in [
                (p.moved_out_on, Rule::MovedOut),
                (p.deceased_on, Rule::Deceased),
            ] {
                if on.is_some_and(|on| on <= d.administered_on) && !rules.contains(&rule) {
                    rules.push(rule);
                }
            }
            let Some(flags) = Rule::join(&rules)
                .filter(|_| rules.len() > Rule::split(d.quality_flags.as_deref()).len())
            else {
                continue;
            };
            if !DoseRow::requeue(conn, &d.id, &flags)? {
                continue;
            }
            add_event(
                scope,
                conn,
                &d,
                EventKind::Queued,
                None,
                Some(flags.clone()),
                None,
            )?;
            crate::flows::certificates::revoke_carrying(scope, conn, &d.resident_id, &d.id, actor)
                .map_err(|e| DoseError::Certificates(e.to_string()))?;
            crate::audit::append(
                conn.db(),
                audit,
                actor,
                crate::audit::Entry {
                    chain: scope.code().as_str(),
                    action: "doses.change",
                    target: Some(format!("dose:{}", d.id)),
                    outcome: "ok",
                    detail: Some(format!("queued rules={flags}")),
                },
            )?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Staff confirm a queued dose: it counts as recorded.
pub fn confirm(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
    account_id: &str,
    reason: Option<&ChangeReason>,
) -> Result<DoseRow, DoseError> {
    resolve(
        scope,
        conn,
        id,
        Move {
            from: &[rows::PENDING],
            to: rows::VALID,
            kind: EventKind::Confirmed,
        },
        account_id,
        reason,
    )
}

/// Staff reject a queued dose: it never counts.
pub fn reject(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
    account_id: &str,
    reason: &ChangeReason,
) -> Result<DoseRow, DoseError> {
    resolve(
        scope,
        conn,
        id,
        Move {
            from: &[rows::PENDING],
            to: rows::REJECTED,
            kind: EventKind::Rejected,
        },
        account_id,
        Some(reason),
    )
}

/// Staff delete a dose (a wrong scan undone): the row stays, with the
/// reason, and stops counting.
pub fn delete(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
    account_id: &str,
    reason: &ChangeReason,
) -> Result<DoseRow, DoseError> {
    resolve(
        scope,
        conn,
        id,
        Move {
            from: &[rows::VALID, rows::PENDING],
            to: rows::DELETED,
            kind: EventKind::Deleted,
        },
        account_id,
        Some(reason),
    )
}

/// What staff put right in a dose.
#[derive(Debug, Clone)]
pub struct Correction {
    pub dose_number: DoseNumber,
    pub administered_on: NaiveDate,
    /// A product of the vaccine master (refused as `UnknownProduct`
    /// otherwise, before anything else is looked at).
    pub product: crate::domain::ProductCode,
    pub lot: LotNumber,
}

/// Corrects a dose: a new row with the corrected values replaces it (and
/// counts: staff have checked it); the old row stays as it was, marked
/// corrected, with the reason. Returns the new dose's id.
pub fn correct(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    id: &str,
    c: &Correction,
    account_id: &str,
    reason: &ChangeReason,
) -> Result<String, DoseError> {
    let product = ProductRow::find(conn, c.product.as_str())?.ok_or(DoseError::UnknownProduct)?;
    let old = dose(scope, conn, id)?;
    let resident = ResidentRow::find_by_id_and_municipality(scope, conn, &old.resident_id)?
        .ok_or(DoseError::NotFound)?;
    let facts = residents::site_facts(scope, &resident)?;
    // A corrected dose is valid at once, without the checks a recorded one
    // meets: a date it could not have is refused here, before anything is
    // written (certificates are issued from it).
    if c.administered_on > crate::clock::today_in_japan() {
        return Err(DoseError::ImpossibleDate(crate::domain::Reason::FutureDate));
    }
    if c.administered_on < facts.birth_date {
        return Err(DoseError::ImpossibleDate(
            crate::domain::Reason::BeforeBirth,
        ));
    }
    if !DoseRow::set_status(conn, id, &[rows::VALID, rows::PENDING], rows::CORRECTED)? {
        return Err(DoseError::Stale);
    }
    let new = DoseRow {
        id: crate::domain::new_record_id(),
        dose_number: c.dose_number.get().into(),
        administered_on: c.administered_on,
        recorded_at: now(),
        product_code: product.product_code,
        lot_number: Some(c.lot.as_str().to_string()),
        recorded_by: Some(account_id.to_string()),
        status: rows::VALID.into(),
        idempotency_key: None,
        quality_flags: None,
        supersedes: Some(old.id.clone()),
        age_band: Some(dose_checks::age_band(facts.birth_date, c.administered_on)),
        sex: Some(facts.sex.code().to_string()),
        ..old.clone()
    };
    new.insert(conn)?;
    if old.status == rows::VALID {
        revoke_certificates(scope, conn, &old, account_id)?;
    }
    add_event(
        scope,
        conn,
        &old,
        EventKind::Corrected,
        Some(account_id),
        Some(format!("replaced_by={}", new.id)),
        Some(reason),
    )?;
    Ok(new.id)
}

/// A dose event as the record page shows it, with the reason opened.
#[derive(Debug, Clone)]
pub struct Event {
    pub dose_id: String,
    pub at: chrono::NaiveDateTime,
    pub kind: String,
    pub detail: Option<String>,
    pub reason: Option<String>,
}

pub fn events_of_resident(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    resident_id: &str,
) -> Result<Vec<Event>, DoseError> {
    DoseEventRow::of_resident(conn, resident_id)?
        .into_iter()
        .map(|e| {
            let reason = e
                .reason_sealed
                .as_ref()
                .map(|r| scope.open_string(reason_ctx(&e.id), r))
                .transpose()?;
            Ok(Event {
                dose_id: e.dose_id,
                at: e.at,
                kind: e.kind,
                detail: e.detail,
                reason,
            })
        })
        .collect()
}

/// The 要確認 queue: the waiting doses, and how many came from each site.
pub struct Queue {
    pub doses: Vec<DoseRow>,
    pub per_site: Vec<(Option<String>, i64)>,
    pub total: i64,
    /// Those the filter keeps.
    pub matching: i64,
}

pub fn queue(
    _scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    filter: &super::QueueFilter,
    limit: i64,
) -> Result<Queue, DoseError> {
    // The waiting doses are few beside a city's valid ones: their ids from
    // the status index, then their rows.
    let ids = DoseRow::pending_ids(conn)?;
    let all = DoseRow::by_ids(conn, &ids)?;
    let mut per_site: std::collections::BTreeMap<Option<String>, i64> = Default::default();
    for d in &all {
        *per_site.entry(d.site_name.clone()).or_insert(0) += 1;
    }
    let mut doses: Vec<DoseRow> = all.into_iter().filter(|d| filter.matches(d)).collect();
    doses.sort_by(|a, b| (a.recorded_at, &a.id).cmp(&(b.recorded_at, &b.id)));
    let matching = doses.len() as i64;
    doses.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(Queue {
        doses,
        total: ids.len() as i64,
        matching,
        per_site: per_site.into_iter().collect(),
    })
}
