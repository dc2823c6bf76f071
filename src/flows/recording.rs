//! The one path from a recorder — a site's tablet or site system, or a
//! municipal system — to the dose flows, shared by the tablet pages and the
//! machine API: the issuing municipality's partition opened for the
//! ticket's code, the flow, and the operation-log line in that
//! municipality's log.

use super::residents::ResidentError;
use crate::audit::{self, Actor, Entry};
use crate::db::DbConn;
use crate::db::TenantConn;
use crate::db::models::tenants::{KeysAndProduct, TenantKeyRow, TenantRow};
use crate::db::models::vaccines::{LotRow, ProductRow};
use crate::domain::{IdempotencyKey, LotNumber, MunicipalityCode, ProductCode, TicketRef};
use crate::flows::AppState;
use crate::flows::accounts;
use crate::flows::doses::{self, DoseError, Preview, Recorded, Recorder, Recording};
use crate::flows::vaccines::Master;
use crate::tenancy::{Partition, Scope, TenancyError};
use chrono::NaiveDate;

/// A signed-in account that may record doses, and for whom.
#[derive(Clone)]
pub struct RecorderCtx {
    pub recorder: Recorder,
    pub actor: Actor,
    /// The recorder's own municipality's log, for what concerns no other.
    pub chain: String,
    /// A municipal system records only its own municipality's tickets; a
    /// site records for any.
    pub only: Option<MunicipalityCode>,
    /// Scans paused after too many unknown tickets (read with the session).
    pub paused: bool,
}

impl RecorderCtx {
    pub fn site(&self) -> Option<&crate::flows::sites::OpenSite> {
        self.recorder.site.as_ref()
    }
}

/// Opens the ticket's municipality's partition and runs `work` in it. A
/// municipality that holds no partition answers exactly as a ticket it did
/// not issue.
fn in_issuer<T, P, C, F>(
    conn: &mut DbConn,
    st: &AppState,
    rec: &RecorderCtx,
    code: MunicipalityCode,
    open: impl FnOnce(&mut DbConn) -> Result<(P, C), TenancyError>,
    work: F,
) -> Result<T, DoseError>
where
    P: std::borrow::Borrow<Partition>,
    F: Fn(&Scope<'_>, &mut crate::db::TenantConn<'_>, &C) -> Result<T, DoseError>,
{
    if rec.only.is_some_and(|own| own != code) {
        return Err(DoseError::NotOurs);
    }
    if rec.paused {
        return Err(DoseError::Paused);
    }
    let outcome = in_partition_of(conn, open, &work);
    if matches!(outcome, Err(DoseError::NotIssued)) {
        count_miss(conn, st, rec, code)?;
    }
    outcome
}

/// A ticket the municipality did not issue: the miss is counted, and
/// logged where the recorder's own administrator reviews it; the number
/// looked up is not kept.
fn count_miss(
    conn: &mut DbConn,
    st: &AppState,
    rec: &RecorderCtx,
    code: MunicipalityCode,
) -> Result<(), DoseError> {
    accounts::count_scan_miss(conn, &rec.recorder.account_id)?;
    audit::record(
        conn,
        &st.audit,
        &rec.actor,
        Entry {
            chain: &rec.chain,
            action: "tickets.scan",
            target: Some(format!("municipality:{code}")),
            outcome: "not_found",
            detail: None,
        },
    )?;
    Ok(())
}

/// Opens the partition and runs the work, retrying a lost race.
fn in_partition_of<T, P, C, F>(
    conn: &mut DbConn,
    open: impl FnOnce(&mut DbConn) -> Result<(P, C), TenancyError>,
    work: &F,
) -> Result<T, DoseError>
where
    P: std::borrow::Borrow<Partition>,
    F: Fn(&Scope<'_>, &mut crate::db::TenantConn<'_>, &C) -> Result<T, DoseError>,
{
    let (partition, read) = match open(conn) {
        Ok(p) => p,
        Err(TenancyError::NotATenant(_) | TenancyError::Erased(_)) => {
            return Err(DoseError::NotIssued);
        }
        Err(e) => return Err(ResidentError::from(e).into()),
    };
    // Two requests with one idempotency key can both pass the lookup on
    // PostgreSQL; the loser's insert fails, and its retry finds the
    // winner's dose.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match partition
            .borrow()
            .run(conn, |scope, conn| work(scope, conn, &read))
        {
            Err(e) if e.is_race() && attempt < 3 => continue,
            other => return other,
        }
    }
}

/// A line in the issuing municipality's log, written in the transaction
/// and chained moments later (`audit::append_later`): a busy site does not
/// wait for the municipality's log chain. (A recording's line is written
/// with the dose itself, by `doses::record`.)
fn log(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    actor: &Actor,
    action: &str,
    target: String,
    detail: String,
) -> Result<(), DoseError> {
    audit::append_later(
        conn,
        actor,
        Entry {
            chain: scope.code().as_str(),
            action,
            target: Some(target),
            outcome: "ok",
            detail: Some(detail),
        },
    )?;
    Ok(())
}

fn site_detail(rec: &RecorderCtx) -> String {
    match rec.site() {
        Some(s) => format!("site={}", s.id),
        None => "site=-".into(),
    }
}

/// Looks a ticket up for a site: the masked hint, the dose due, the blocks.
pub fn preview_on(
    conn: &mut DbConn,
    st: &AppState,
    rec: &RecorderCtx,
    t: TicketRef,
    product: Option<ProductCode>,
) -> Result<Preview, DoseError> {
    let code = t.municipality;
    let open = |conn: &mut DbConn| Ok((Partition::open(conn, &st.master, code)?, ()));
    in_issuer(conn, st, rec, code, open, |scope, conn, ()| {
        let p = doses::preview(
            scope,
            conn,
            &t,
            product.as_ref().map(ProductCode::as_str),
            crate::clock::today_in_japan(),
        )?;
        log(
            scope,
            conn,
            &rec.actor,
            "tickets.scan",
            format!("ticket:{}", t.ticket.as_str()),
            site_detail(rec),
        )?;
        Ok(p)
    })
}

pub async fn preview(
    state: &AppState,
    rec: &RecorderCtx,
    t: TicketRef,
    product: Option<ProductCode>,
) -> Result<Preview, DoseError> {
    let (st, r) = (state.clone(), rec.clone());
    state
        .blocking(move |conn| preview_on(conn, &st, &r, t, product))
        .await
}

/// A recording as parsed at the edge (form or JSON).
#[derive(Debug, Clone)]
pub struct RecordInput {
    pub ticket: TicketRef,
    pub administered_on: NaiveDate,
    pub product_code: ProductCode,
    pub lot: LotNumber,
    pub expected_dose: Option<u8>,
    pub key: IdempotencyKey,
}

/// Records a dose by ticket in the issuing municipality's partition, with
/// its operation-log line there.
/// `preread`: the platform's rows the recording needs, if the caller read
/// them already (`TenantRow::with_keys_and_product`).
pub fn record_on(
    conn: &mut DbConn,
    st: &AppState,
    rec: &RecorderCtx,
    input: RecordInput,
    preread: Option<Vec<KeysAndProduct>>,
) -> Result<Recorded, DoseError> {
    let code = input.ticket.municipality;
    let open = |conn: &mut DbConn| open_with_product(conn, st, code, &input, preread);
    in_issuer(conn, st, rec, code, open, |scope, conn, product| {
        record_in(scope, conn, rec, &input, product.as_ref())
    })
}

/// One dose of a batch: who records it, what, and the product with
/// whether the lot is known for it, read once for the batch.
pub struct BatchItem<'a> {
    pub rec: RecorderCtx,
    pub input: RecordInput,
    pub product: Option<&'a (ProductRow, bool)>,
}

/// Records many doses of one municipality's tickets in one transaction of
/// its partition (a clinic's batch): each exactly as one recording is —
/// the same flow, rules and log line, a miss counted the same way — but
/// without a savepoint each. A refusal is that dose's answer; a fault
/// underneath aborts them all.
pub fn record_many(
    conn: &mut DbConn,
    st: &AppState,
    partition: &Partition,
    items: &[BatchItem<'_>],
) -> Result<Vec<Result<Recorded, DoseError>>, DoseError> {
    partition.run(conn, |scope, c| {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let code = item.input.ticket.municipality;
            let answer = if item.rec.only.is_some_and(|own| own != code) || code != scope.code() {
                Err(DoseError::NotOurs)
            } else {
                record_in(scope, c, &item.rec, &item.input, item.product)
            };
            match answer {
                Err(e) if e.is_fault() || e.is_race() => return Err(e),
                Err(DoseError::NotIssued) => {
                    count_miss(c, st, &item.rec, code)?;
                    out.push(Err(DoseError::NotIssued));
                }
                other => out.push(other),
            }
        }
        Ok(out)
    })
}

fn record_in(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    rec: &RecorderCtx,
    input: &RecordInput,
    product: Option<&(ProductRow, bool)>,
) -> Result<Recorded, DoseError> {
    let (product, lot_known) = product.ok_or(DoseError::UnknownProduct)?;
    doses::record(
        scope,
        conn,
        &Recording {
            ticket: &input.ticket,
            administered_on: input.administered_on,
            product,
            lot: input.lot.clone(),
            lot_known: *lot_known,
            expected_dose: input.expected_dose,
            key: &input.key,
            recorder: &rec.recorder,
            actor: &rec.actor,
        },
        crate::clock::today_in_japan(),
    )
}

/// Opens the issuing municipality's partition and reads the chosen product
/// and whether the lot is known for it, in one query.
pub(crate) fn open_with_product(
    conn: &mut DbConn,
    st: &AppState,
    code: MunicipalityCode,
    input: &RecordInput,
    preread: Option<Vec<KeysAndProduct>>,
) -> Result<(Partition, Option<(ProductRow, bool)>), TenancyError> {
    let rows = match preread {
        Some(rows) => rows,
        None => TenantRow::with_keys_and_product(
            conn,
            code.as_str(),
            input.product_code.as_str(),
            input.lot.as_str(),
        )?,
    };
    let Some((tenant, _, product, lot)) = rows.first() else {
        // No keys: Partition::open says whether erased or never enabled.
        return Ok((Partition::open(conn, &st.master, code)?, None));
    };
    let keys: Vec<TenantKeyRow> = rows.iter().map(|r| r.1.clone()).collect();
    let partition = Partition::from_rows(&st.master, code, tenant, &keys)?;
    Ok((partition, product.clone().map(|p| (p, lot.is_some()))))
}

pub async fn record(
    state: &AppState,
    rec: &RecorderCtx,
    input: RecordInput,
) -> Result<Recorded, DoseError> {
    let (st, r) = (state.clone(), rec.clone());
    // Only a fault is an error to the commit group, which rolls back the
    // failed piece's savepoint: a refusal's writes (a miss counted and
    // logged) must stay.
    state
        .grouped(move |conn| match record_on(conn, &st, &r, input, None) {
            Err(e) if e.is_fault() => Err(e),
            answered => Ok(answered),
        })
        .await
        .and_then(|answered| answered)
}

/// The products a site may choose and the lots known for one of them.
pub async fn choices(
    state: &AppState,
    product: Option<ProductCode>,
) -> Result<(Vec<super::vaccines::ProductLine>, Vec<String>), DoseError> {
    state
        .blocking(move |conn| {
            let master = Master::load(conn)?;
            let products = master.in_use().map(Into::into).collect();
            let lots = match product {
                Some(p) => LotRow::of_product(conn, p.as_str())?
                    .into_iter()
                    .map(|l| l.lot_number)
                    .collect(),
                None => Vec::new(),
            };
            Ok((products, lots))
        })
        .await
}
