//! A resident's record: the person, their tickets, doses with their
//! events, certificates and the history of changes.

use super::staff;
use crate::db::TenantConn;
use crate::domain::{ChangeReason, MunicipalityCode};
use crate::flows::AppState;
use crate::flows::resident_doses::{self, Standing};
use crate::flows::residents::{self, Resident};
use crate::flows::tickets::{self, Ticket};
use crate::i18n::T;
use crate::tenancy::Scope;
use crate::web::{AppError, Authed, Ctx, Nav, in_partition, log_in_scope, path_id, render_form};
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub struct DoseView {
    pub id: String,
    pub dose_number: i32,
    pub status: String,
    pub standing: Standing,
    pub rules: Vec<&'static str>,
    pub date: String,
    pub product: String,
    pub lot: String,
    pub site: String,
    pub transferred: bool,
}

impl DoseView {
    pub fn status_key(&self) -> &'static str {
        self.standing.label_key()
    }
    pub fn pending(&self) -> bool {
        self.standing == Standing::Pending
    }
    /// Staff may still correct or delete it.
    pub fn open(&self) -> bool {
        self.standing.open()
    }
}

pub struct DoseEventView {
    pub at: String,
    pub dose_number: i32,
    pub kind: String,
    pub detail: String,
    pub reason: String,
}

impl DoseEventView {
    pub fn kind_key(&self) -> &'static str {
        match self.kind.as_str() {
            "queued" => "dose.event.queued",
            "confirmed" => "dose.event.confirmed",
            "corrected" => "dose.event.corrected",
            "deleted" => "dose.event.deleted",
            _ => "dose.event.rejected",
        }
    }
}

pub struct HistoryView {
    pub at: String,
    pub kind: String,
    pub reason: String,
    pub changes: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "records/detail.html")]
struct DetailPage {
    t: T,
    nav: Nav,
    csrf: String,
    r: Resident,
    tickets: Vec<Ticket>,
    doses: Vec<DoseView>,
    dose_events: Vec<DoseEventView>,
    products: Vec<(String, String)>,
    history: Vec<HistoryView>,
    certificates: Vec<CertificateView>,
    /// Whether this account issues certificates (the list links to them).
    can_certify: bool,
    error: Option<String>,
    done: Option<String>,
    /// The resident is protected and the address is not shown.
    address_masked: bool,
    /// This account may show it, with a reason.
    may_reveal: bool,
    /// Shown now, after a reason was given and logged.
    revealed: bool,
    /// This account may set, change or lift the measure.
    may_change_protection: bool,
    /// This account answers disclosure requests (the access record).
    may_disclose: bool,
}

impl DetailPage {
    fn sex_is(&self, code: &str) -> bool {
        self.r.sex.code() == code
    }
    fn address(&self) -> &str {
        if self.address_masked {
            return "";
        }
        self.r.address.as_deref().unwrap_or("")
    }
    /// The measure's period as the form shows it: the stored one, or a new
    /// one from today with a review in a year.
    fn protection_from(&self) -> String {
        self.r
            .protection
            .map_or_else(crate::clock::today_in_japan, |p| p.from)
            .to_string()
    }
    fn protection_until(&self) -> String {
        Self::date_or_empty(&self.r.protection.and_then(|p| p.until))
    }
    fn protection_review(&self) -> String {
        match self.r.protection {
            Some(p) => p.review.to_string(),
            None => crate::clock::today_in_japan()
                .checked_add_months(chrono::Months::new(12))
                .map(|d| d.to_string())
                .unwrap_or_default(),
        }
    }
    /// A measure is stored (holding today or not): it can be lifted.
    fn stored_protection(&self) -> bool {
        self.r.address_protected || self.r.protection.is_some()
    }
    /// A stored measure whose period has ended.
    fn protection_ended(&self) -> bool {
        !self.r.address_protected && self.r.protection.is_some()
    }
    fn date_or_empty(d: &Option<chrono::NaiveDate>) -> String {
        d.map(|d| d.to_string()).unwrap_or_default()
    }
    fn moved_out(&self) -> String {
        Self::date_or_empty(&self.r.moved_out_on)
    }
    fn deceased(&self) -> String {
        Self::date_or_empty(&self.r.deceased_on)
    }
    fn flagged(&self) -> bool {
        self.r.moved_out_on.is_some() || self.r.deceased_on.is_some()
    }
    fn has_active_ticket(&self) -> bool {
        self.tickets.iter().any(|t| t.active)
    }
}

struct Loaded {
    r: Resident,
    tickets: Vec<Ticket>,
    doses: Vec<DoseView>,
    dose_events: Vec<DoseEventView>,
    products: Vec<(String, String)>,
    history: Vec<HistoryView>,
    certificates: Vec<CertificateView>,
}

/// A certificate in the record's list.
pub struct CertificateView {
    pub id: String,
    pub kind: String,
    pub channel: String,
    pub issued_on: String,
    pub valid: bool,
}

fn load(scope: &Scope<'_>, conn: &mut TenantConn<'_>, id: &str) -> Result<Loaded, AppError> {
    let r = residents::get(scope, conn, id)?.ok_or(AppError::NotFound)?;
    let master = crate::flows::vaccines::Master::load(conn)?;
    let rows = resident_doses::of_resident(scope, conn, id)?;
    let number_of = |dose_id: &str| {
        rows.iter()
            .find(|d| d.id == dose_id)
            .map_or(0, |d| d.dose_number)
    };
    let dose_events = crate::flows::doses::events_of_resident(scope, conn, id)
        .map_err(AppError::failed)?
        .into_iter()
        .map(|e| DoseEventView {
            at: crate::clock::jst(e.at),
            dose_number: number_of(&e.dose_id),
            kind: e.kind,
            detail: e
                .detail
                .as_deref()
                .map(|d| {
                    crate::flows::dose_checks::Rule::split(Some(d))
                        .iter()
                        .map(|r| r.code())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
            reason: e.reason.unwrap_or_default(),
        })
        .collect();
    let products = master
        .in_use()
        .map(|p| (p.product_code.clone(), p.product_ja.clone()))
        .collect();
    let doses = rows
        .into_iter()
        .map(|d| DoseView {
            id: d.id.clone(),
            dose_number: d.dose_number,
            status: d.status.clone(),
            standing: d.standing,
            rules: d.rules.iter().map(|r| r.label_key()).collect(),
            date: d.administered_on.to_string(),
            product: master
                .get(&d.product_code)
                .map(|p| p.product_ja.clone())
                .unwrap_or(d.product_code),
            lot: d.lot_number.unwrap_or_default(),
            site: d.site_name.unwrap_or_default(),
            transferred: d.transferred,
        })
        .collect();
    let history = residents::history(scope, conn, id)?
        .into_iter()
        .map(|h| HistoryView {
            at: h.at.format("%Y-%m-%d %H:%M").to_string(),
            kind: h.kind,
            reason: h.detail.reason.unwrap_or_default(),
            changes: h
                .detail
                .changes
                .into_iter()
                .map(|c| (c.field, c.before, c.after))
                .collect(),
        })
        .collect();
    let certificates = crate::flows::certificates::of_resident(conn, id)?
        .into_iter()
        .map(|c| CertificateView {
            valid: c.valid,
            id: c.id,
            kind: c.kind,
            channel: c.channel,
            issued_on: c.issued_on.to_string(),
        })
        .collect();
    Ok(Loaded {
        certificates,
        tickets: tickets::of_resident(scope, conn, id)?,
        r,
        doses,
        dose_events,
        products,
        history,
    })
}

pub(super) async fn detail_page(
    ctx: Ctx,
    auth: &Authed,
    state: &AppState,
    code: MunicipalityCode,
    id: String,
    error: Option<String>,
    done: Option<String>,
) -> Result<HttpResponse, AppError> {
    record_page(ctx, auth, state, code, id, error, done, None).await
}

/// The record page; with `reveal`, a protected resident's address is shown
/// to an account that may see it, and the view is logged with the reason.
#[allow(clippy::too_many_arguments)]
async fn record_page(
    ctx: Ctx,
    auth: &Authed,
    state: &AppState,
    code: MunicipalityCode,
    id: String,
    error: Option<String>,
    done: Option<String>,
    reveal: Option<ChangeReason>,
) -> Result<HttpResponse, AppError> {
    let sees = super::sees_protected(auth);
    if reveal.is_some() && !sees {
        return Err(AppError::Forbidden);
    }
    let (st, actor) = (state.clone(), auth.actor());
    let loaded = in_partition(state, code, move |scope, conn| {
        let loaded = load(scope, conn, &id)?;
        let target = Some(format!("resident:{id}"));
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "resident.view",
            target.clone(),
            None,
        )?;
        if let Some(reason) = reveal.as_ref().filter(|_| loaded.r.address_protected) {
            // The reason goes into the resident's sealed history; the log,
            // kept in clear, says only that the address was shown.
            let account = actor.account_id.clone().unwrap_or_default();
            residents::address_viewed(scope, conn, &id, reason, &account)?;
            log_in_scope(
                scope,
                conn,
                &st.audit,
                &actor,
                "resident.address_view",
                target,
                Some("reason=in_history".into()),
            )?;
        }
        Ok((loaded, reveal.is_some()))
    })
    .await?;
    let (mut loaded, revealed) = loaded;
    // A measure once stored is changed or lifted only by who may see the
    // address (lifting it shows the address to everyone).
    let may_change_protection =
        sees || loaded.r.protection.is_none() && !loaded.r.address_protected;
    let protected = loaded.r.address_protected;
    let address_masked = protected && !revealed;
    if address_masked {
        // What the history says of the address is the address.
        let masked = ctx.t.s("records.address_masked").to_string();
        for h in &mut loaded.history {
            for (field, before, after) in &mut h.changes {
                if field == crate::domain::Address::FIELD {
                    *before = masked.clone();
                    *after = masked.clone();
                }
            }
        }
    }
    let bad = error.is_some();
    render_form(
        &DetailPage {
            nav: Nav::for_account(auth, "/residents"),
            csrf: auth.session.csrf_token.clone(),
            r: loaded.r,
            tickets: loaded.tickets,
            doses: loaded.doses,
            dose_events: loaded.dose_events,
            products: loaded.products,
            history: loaded.history,
            certificates: loaded.certificates,
            can_certify: auth
                .permissions()
                .contains(&crate::domain::Permission::Certificates),
            error,
            done,
            address_masked,
            may_reveal: address_masked && sees,
            revealed: protected && revealed,
            may_change_protection,
            may_disclose: auth
                .permissions()
                .contains(&crate::domain::Permission::Disclosure),
            t: ctx.t,
        },
        bad,
    )
}

#[derive(Deserialize)]
struct RevealForm {
    csrf: String,
    reason: String,
}

/// Shows a protected resident's address to an account that may see it,
/// once, with the reason in the operation log.
#[post("/residents/{id}/address")]
pub(super) async fn reveal_address(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RevealForm>,
) -> Result<HttpResponse, AppError> {
    let (code, id) = super::posted(&auth, &path, &form.csrf)?;
    if !super::sees_protected(&auth) {
        return Err(AppError::Forbidden);
    }
    match ChangeReason::parse(&form.reason) {
        Ok(reason) => record_page(ctx, &auth, &state, code, id, None, None, Some(reason)).await,
        Err(e) => {
            let m = super::field_error(&ctx.t, "records.address_reveal_reason", e);
            record_page(ctx, &auth, &state, code, id, Some(m), None, None).await
        }
    }
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

#[get("/residents/{id}")]
pub(super) async fn detail(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let id = path_id(&path)?;
    // Only known notices are shown; nothing from the URL is echoed.
    let done = q
        .done
        .as_deref()
        .filter(|d| {
            [
                "corrected",
                "flag",
                "protection",
                "reissued",
                "unchanged",
                "dose",
                "dose_stale",
                "dose_future",
                "dose_before_birth",
            ]
            .contains(d)
        })
        .map(|d| format!("records.done.{d}"));
    detail_page(ctx, &auth, &state, code, id, None, done).await
}
