//! Many queued doses at once (in the real system about 5 % of records
//! needed correction): staff filter the 要確認 queue by site, rule, date and
//! lot, and confirm, reject or correct the lot of the doses chosen, with
//! one reason. Each dose gets its own history event and its own
//! operation-log line, exactly as when it is done one at a time; the work
//! commits in short transactions so that no other writer waits for it.

use super::*;
use crate::audit::{Actor, Entry};
use crate::tenancy::Partition;

/// Doses handled per transaction.
const CHUNK: usize = 200;

/// Which queued doses a list or an action is about (every part optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The site's name as recorded; `Some("")` for doses without one.
    pub site: Option<String>,
    pub rule: Option<Rule>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub lot: Option<String>,
}

impl Filter {
    pub fn matches(&self, d: &DoseRow) -> bool {
        self.site
            .as_ref()
            .is_none_or(|s| d.site_name.as_deref().unwrap_or("") == s)
            && self
                .rule
                .is_none_or(|r| Rule::split(d.quality_flags.as_deref()).contains(&r))
            && self.from.is_none_or(|f| d.administered_on >= f)
            && self.to.is_none_or(|t| d.administered_on <= t)
            && self
                .lot
                .as_ref()
                .is_none_or(|l| d.lot_number.as_deref() == Some(l.as_str()))
    }
}

/// What staff do to the doses chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkAction {
    Confirm,
    Reject,
    /// The lot number corrected (a typo for a whole session); the dose is
    /// otherwise as recorded.
    CorrectLot(LotNumber),
}

impl BulkAction {
    pub fn code(&self) -> &'static str {
        match self {
            BulkAction::Confirm => "confirm",
            BulkAction::Reject => "reject",
            BulkAction::CorrectLot(_) => "correct_lot",
        }
    }
}

/// What a bulk action did: doses acted on, and those someone else had
/// settled first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkDone {
    pub done: usize,
    pub stale: usize,
}

/// The queued doses that match, oldest first.
pub fn matching(conn: &mut TenantConn<'_>, filter: &Filter) -> Result<Vec<DoseRow>, DoseError> {
    let ids = DoseRow::pending_ids(conn)?;
    let mut doses: Vec<DoseRow> = DoseRow::by_ids(conn, &ids)?
        .into_iter()
        .filter(|d| filter.matches(d))
        .collect();
    doses.sort_by(|a, b| (a.recorded_at, &a.id).cmp(&(b.recorded_at, &b.id)));
    Ok(doses)
}

/// Applies one action with one reason to the queued doses `ids` (those no
/// longer queued, or not matching `filter`, are left as they are).
pub fn apply(
    conn: &mut crate::db::DbConn,
    partition: &Partition,
    (ids, filter): (&[String], &Filter),
    action: &BulkAction,
    reason: &ChangeReason,
    actor: &Actor,
) -> Result<BulkDone, DoseError> {
    let account = actor.account_id.clone().unwrap_or_default();
    let mut total = BulkDone::default();
    for chunk in ids.chunks(CHUNK) {
        let done = partition.run(conn, |scope, conn| {
            let mut done = BulkDone::default();
            for d in DoseRow::by_ids(conn, chunk)? {
                if d.status != rows::PENDING || !filter.matches(&d) {
                    done.stale += 1;
                    continue;
                }
                let outcome = match action {
                    BulkAction::Confirm => {
                        confirm(scope, conn, &d.id, &account, Some(reason)).map(|_| None)
                    }
                    BulkAction::Reject => {
                        reject(scope, conn, &d.id, &account, reason).map(|_| None)
                    }
                    BulkAction::CorrectLot(lot) => {
                        let c = Correction {
                            dose_number: DoseNumber::new(u8::try_from(d.dose_number).unwrap_or(1))
                                .unwrap_or_default(),
                            administered_on: d.administered_on,
                            product: crate::domain::ProductCode::parse(&d.product_code)
                                .map_err(|_| DoseError::UnknownProduct)?,
                            lot: lot.clone(),
                        };
                        correct(scope, conn, &d.id, &c, &account, reason).map(Some)
                    }
                };
                let new = match outcome {
                    Ok(new) => new,
                    Err(DoseError::Stale) => {
                        done.stale += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                // The same line as for one dose done on the record page.
                crate::audit::append_later(
                    conn,
                    actor,
                    Entry {
                        chain: scope.code().as_str(),
                        action: "doses.change",
                        target: Some(format!("resident:{}", d.resident_id)),
                        outcome: "ok",
                        detail: Some(format!(
                            "dose:{} action={} bulk=1{}",
                            d.id,
                            action.code(),
                            new.map(|n| format!(" new=dose:{n}")).unwrap_or_default()
                        )),
                    },
                )?;
                done.done += 1;
            }
            Ok::<_, DoseError>(done)
        })?;
        total.done += done.done;
        total.stale += done.stale;
    }
    Ok(total)
}

/// A bulk action from the queue page: on the doses `ids`, or on every
/// queued dose the filter keeps (`None`), in the municipality's partition.
pub fn review(
    conn: &mut crate::db::DbConn,
    state: &crate::flows::AppState,
    code: MunicipalityCode,
    (ids, filter): (Option<Vec<String>>, &Filter),
    action: &BulkAction,
    reason: &ChangeReason,
    actor: &Actor,
) -> Result<BulkDone, DoseError> {
    let partition = Partition::open(conn, &state.master, code).map_err(ResidentError::from)?;
    let ids = match ids {
        Some(ids) => ids,
        None => partition.read(conn, |_, c| {
            Ok::<_, DoseError>(matching(c, filter)?.into_iter().map(|d| d.id).collect())
        })?,
    };
    apply(conn, &partition, (&ids, filter), action, reason, actor)
}
