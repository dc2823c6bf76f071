//! Staff pages over their own residents: search, the record with its
//! tickets, doses and history, corrections with a reason, the moved-out /
//! deceased flags, address protection, ticket reissue and printing. Every
//! read and change leaves a line in the operation log.

use super::{
    AppError, Authed, Ctx, Nav, field_message, in_partition, log_in_scope, path_id, render,
};
use crate::db::models::doses::DoseRow;
use crate::domain::{
    AddresseeNumber, BirthDate, ChangeReason, FieldError, KanaName, MunicipalityCode, Permission,
    PersonName, Sex, TicketNumber,
};
use crate::flows::AppState;
use crate::flows::residents::{self, Correction, Flag, Resident, Search};
use crate::flows::tickets::{self, Label, ReissueReason, Ticket};
use crate::i18n::T;
use crate::tenancy::Scope;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(search_form)
        .service(dose_action)
        .service(search)
        .service(detail)
        .service(correct)
        .service(flag)
        .service(protection)
        .service(reissue)
        .service(ticket_sheet);
}

fn staff(auth: &Authed) -> Result<MunicipalityCode, AppError> {
    auth.require_staff(Permission::Residents)
}

pub struct Row {
    pub id: String,
    pub addressee: String,
    pub name: String,
    pub kana: String,
    pub birth_date: String,
    pub flagged: bool,
    pub protected: bool,
}

impl From<&Resident> for Row {
    fn from(r: &Resident) -> Row {
        Row {
            id: r.id.clone(),
            addressee: r.addressee_number.as_str().into(),
            name: r.name_kanji.as_str().into(),
            kana: r.name_kana.as_str().into(),
            birth_date: r.birth_date.date().to_string(),
            flagged: r.moved_out_on.is_some() || r.deceased_on.is_some(),
            protected: r.address_protected,
        }
    }
}

#[derive(Template)]
#[template(path = "records/search.html")]
struct SearchPage {
    t: T,
    nav: Nav,
    csrf: String,
    addressee: String,
    ticket: String,
    name: String,
    birth: String,
    error: Option<String>,
    searched: bool,
    results: Vec<Row>,
}

#[get("/residents")]
async fn search_form(ctx: Ctx, auth: Authed) -> Result<HttpResponse, AppError> {
    staff(&auth)?;
    render(&SearchPage {
        nav: Nav::for_account(&auth, "/residents"),
        csrf: auth.session.csrf_token.clone(),
        addressee: String::new(),
        ticket: String::new(),
        name: String::new(),
        birth: String::new(),
        error: None,
        searched: false,
        results: Vec::new(),
        t: ctx.t,
    })
}

#[derive(Deserialize)]
struct SearchForm {
    csrf: String,
    #[serde(default)]
    addressee: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    birth: String,
}

/// Searches are posted: a name and a birth date do not belong in a URL.
#[post("/residents/search")]
async fn search(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<SearchForm>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    auth.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let t = &ctx.t;
    let today = crate::clock::now().date();
    // The search is by whichever field was filled in, in this order.
    let by = if !f.addressee.trim().is_empty() {
        "addressee"
    } else if !f.ticket.trim().is_empty() {
        "ticket"
    } else if !f.name.trim().is_empty() || !f.birth.trim().is_empty() {
        "name"
    } else {
        ""
    };
    let query = match by {
        "addressee" => AddresseeNumber::parse(&f.addressee)
            .map(Search::Addressee)
            .map_err(|e| field_error(t, "resident.addressee", e)),
        "ticket" => TicketNumber::parse(&f.ticket)
            .map(Search::Ticket)
            .map_err(|e| field_error(t, "ticket.number", e)),
        "" => Err(t.s("records.search_empty").to_string()),
        _ => match (
            PersonName::parse(&f.name),
            BirthDate::parse(&f.birth, today),
        ) {
            (Ok(n), Ok(birth)) => Ok(Search::NameAndBirth {
                name: n.as_str().to_string(),
                birth,
            }),
            (Err(e), _) => Err(field_error(t, "records.name", e)),
            (_, Err(e)) => Err(field_error(t, "resident.birth_date", e)),
        },
    };
    let (results, error) = match query {
        Ok(q) => {
            let (st, actor) = (state.clone(), auth.actor());
            let found = in_partition(&state, code, move |scope, conn| {
                let found = residents::search(scope, conn, &q)?;
                let ids: Vec<String> = found.iter().map(|r| r.id.clone()).collect();
                log_in_scope(
                    scope,
                    conn,
                    &st.audit,
                    &actor,
                    "resident.search",
                    (!ids.is_empty()).then(|| format!("resident:{}", ids.join(","))),
                    Some(format!("by={by} results={}", ids.len())),
                )?;
                Ok(found)
            })
            .await?;
            (found.iter().map(Row::from).collect(), None)
        }
        Err(msg) => (Vec::new(), Some(msg)),
    };
    let bad = error.is_some();
    let mut resp = render(&SearchPage {
        nav: Nav::for_account(&auth, "/residents"),
        csrf: auth.session.csrf_token.clone(),
        addressee: f.addressee,
        ticket: f.ticket,
        name: f.name,
        birth: f.birth,
        searched: !bad,
        error,
        results,
        t: ctx.t,
    })?;
    if bad {
        *resp.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

pub struct DoseView {
    pub id: String,
    pub dose_number: i32,
    pub status: String,
    pub rules: Vec<&'static str>,
    pub date: String,
    pub product: String,
    pub lot: String,
    pub site: String,
    pub origin: String,
}

impl DoseView {
    pub fn status_key(&self) -> &'static str {
        match self.status.as_str() {
            crate::db::models::doses::VALID => "dose.status.valid",
            crate::db::models::doses::PENDING => "dose.status.pending",
            crate::db::models::doses::CORRECTED => "dose.status.corrected",
            crate::db::models::doses::DELETED => "dose.status.deleted",
            _ => "dose.status.rejected",
        }
    }
    pub fn pending(&self) -> bool {
        self.status == crate::db::models::doses::PENDING
    }
    /// Staff may still correct or delete it.
    pub fn open(&self) -> bool {
        self.pending() || self.status == crate::db::models::doses::VALID
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
}

impl DetailPage {
    fn sex_is(&self, code: &str) -> bool {
        self.r.sex.code() == code
    }
    fn address(&self) -> &str {
        self.r.address.as_deref().unwrap_or("")
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

fn load(scope: &Scope<'_>, conn: &mut crate::db::DbConn, id: &str) -> Result<Loaded, AppError> {
    let r = residents::get(scope, conn, id)?.ok_or(AppError::NotFound)?;
    let master = crate::flows::vaccines::Master::load(conn)?;
    let rows = DoseRow::of_resident(scope, conn, id)?;
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
            rules: crate::flows::dose_checks::Rule::split(d.quality_flags.as_deref())
                .iter()
                .map(|r| r.label_key())
                .collect(),
            date: d.administered_on.to_string(),
            product: master
                .get(&d.product_code)
                .map(|p| p.product_ja.clone())
                .unwrap_or(d.product_code),
            lot: d.lot_number.unwrap_or_default(),
            site: d.site_name.unwrap_or_default(),
            origin: d.origin,
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
    let certificates =
        crate::db::models::certificates::CertificateRow::of_resident(scope, conn, id)?
            .into_iter()
            .map(|c| CertificateView {
                valid: c.status == crate::db::models::certificates::VALID,
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

async fn detail_page(
    ctx: Ctx,
    auth: &Authed,
    state: &AppState,
    code: MunicipalityCode,
    id: String,
    error: Option<String>,
    done: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (st, actor) = (state.clone(), auth.actor());
    let loaded = in_partition(state, code, move |scope, conn| {
        let loaded = load(scope, conn, &id)?;
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "resident.view",
            Some(format!("resident:{id}")),
            None,
        )?;
        Ok(loaded)
    })
    .await?;
    let bad = error.is_some();
    let mut resp = render(&DetailPage {
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
        t: ctx.t,
    })?;
    if bad {
        *resp.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(resp)
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

#[get("/residents/{id}")]
async fn detail(
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

fn back(id: &str, done: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", format!("/residents/{id}?done={done}")))
        .finish()
}

/// Runs one change to a record inside the municipality's partition and logs
/// it there, in the same transaction. `work` gets the record's id and the
/// account's id, and returns its result with the log line's detail.
async fn change<T, F>(
    state: &AppState,
    auth: &Authed,
    code: MunicipalityCode,
    id: &str,
    action: &'static str,
    work: F,
) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&Scope<'_>, &mut crate::db::DbConn, &str, &str) -> Result<(T, String), AppError>
        + Send
        + 'static,
{
    let (st, actor, account, rid) = (
        state.clone(),
        auth.actor(),
        auth.account.id.clone(),
        id.to_string(),
    );
    in_partition(state, code, move |scope, conn| {
        let (out, note) = work(scope, conn, &rid, &account)?;
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            action,
            Some(format!("resident:{rid}")),
            Some(note),
        )?;
        Ok(out)
    })
    .await
}

/// A field error as the page shows it: the field's label and the reason.
fn field_error(t: &T, label_key: &str, e: FieldError) -> String {
    format!("{}: {}", t.s(label_key), field_message(t, e.reason))
}

#[derive(Deserialize)]
struct CorrectForm {
    csrf: String,
    name_kanji: String,
    name_kana: String,
    birth_date: String,
    sex: String,
    #[serde(default)]
    address: String,
    reason: String,
}

#[post("/residents/{id}/correct")]
async fn correct(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<CorrectForm>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let id = path_id(&path)?;
    auth.check_csrf(&form.csrf)?;
    let today = crate::clock::now().date();
    let parsed = (|| {
        Ok::<_, FieldError>((
            Correction {
                name_kanji: PersonName::parse(&form.name_kanji)?,
                name_kana: KanaName::parse(&form.name_kana)?,
                birth_date: BirthDate::parse(&form.birth_date, today)?,
                sex: Sex::parse(&form.sex)?,
                address: crate::domain::Address::parse(&form.address)?
                    .map(|a| a.as_str().to_string()),
            },
            ChangeReason::parse(&form.reason)?,
        ))
    })();
    let (fix, reason) = match parsed {
        Ok(v) => v,
        Err(e) => {
            // The field names of these types are the page's labels.
            let msg = format!("{}: {}", e.field, field_message(&ctx.t, e.reason));
            return detail_page(ctx, &auth, &state, code, id, Some(msg), None).await;
        }
    };
    let changed = change(
        &state,
        &auth,
        code,
        &id,
        "resident.correct",
        move |s, c, rid, account| {
            let changed = residents::correct(s, c, rid, &fix, &reason, account)?;
            Ok((changed, format!("changed={changed}")))
        },
    )
    .await?;
    Ok(back(&id, if changed { "corrected" } else { "unchanged" }))
}

#[derive(Deserialize)]
struct FlagForm {
    csrf: String,
    flag: String,
    #[serde(default)]
    date: String,
    reason: String,
}

#[post("/residents/{id}/flag")]
async fn flag(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<FlagForm>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let id = path_id(&path)?;
    auth.check_csrf(&form.csrf)?;
    let which = Flag::parse(&form.flag).ok_or_else(|| AppError::BadRequest("flag".into()))?;
    let today = crate::clock::now().date();
    let t = &ctx.t;
    // A flag's date follows the rules of a birth date: real, not in the future.
    let date = match form.date.trim() {
        "" => Ok(None),
        d => BirthDate::parse(d, today)
            .map(|d| Some(d.date()))
            .map_err(|e| field_error(t, "records.flag_date", e)),
    };
    let reason = ChangeReason::parse(&form.reason).map_err(|e| field_error(t, "records.reason", e));
    let (on, reason) = match (date, reason) {
        (Ok(d), Ok(r)) => (d, r),
        (Err(m), _) | (_, Err(m)) => {
            return detail_page(ctx, &auth, &state, code, id, Some(m), None).await;
        }
    };
    change(
        &state,
        &auth,
        code,
        &id,
        "resident.flag",
        move |s, c, rid, account| {
            residents::set_flag(s, c, rid, which, on, &reason, account)?;
            let state = if on.is_some() { "set" } else { "cleared" };
            Ok(((), format!("{}={state}", which.code())))
        },
    )
    .await?;
    Ok(back(&id, "flag"))
}

#[derive(Deserialize)]
struct ProtectionForm {
    csrf: String,
    protected: String,
    reason: String,
}

#[post("/residents/{id}/protection")]
async fn protection(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ProtectionForm>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let id = path_id(&path)?;
    auth.check_csrf(&form.csrf)?;
    // The two values the page sends; anything else is refused, never read
    // as "off" (which would lift a resident's protection).
    let on = match form.protected.as_str() {
        "on" => true,
        "off" => false,
        _ => {
            let e = FieldError {
                field: "",
                reason: crate::domain::Reason::UnknownChoice,
            };
            let m = field_error(&ctx.t, "records.protection", e);
            return detail_page(ctx, &auth, &state, code, id, Some(m), None).await;
        }
    };
    let reason = match ChangeReason::parse(&form.reason) {
        Ok(r) => r,
        Err(e) => {
            let m = field_error(&ctx.t, "records.reason", e);
            return detail_page(ctx, &auth, &state, code, id, Some(m), None).await;
        }
    };
    change(
        &state,
        &auth,
        code,
        &id,
        "resident.protection",
        move |s, c, rid, account| {
            residents::set_protection(s, c, rid, on, &reason, account)?;
            Ok(((), format!("protected={on}")))
        },
    )
    .await?;
    Ok(back(&id, "protection"))
}

#[derive(Deserialize)]
struct ReissueForm {
    csrf: String,
    why: String,
    reason: String,
}

#[post("/residents/{id}/reissue")]
async fn reissue(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReissueForm>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let id = path_id(&path)?;
    auth.check_csrf(&form.csrf)?;
    let why = ReissueReason::parse(&form.why).ok_or_else(|| AppError::BadRequest("why".into()))?;
    let note = match ChangeReason::parse(&form.reason) {
        Ok(r) => r,
        Err(e) => {
            let m = field_error(&ctx.t, "records.reason", e);
            return detail_page(ctx, &auth, &state, code, id, Some(m), None).await;
        }
    };
    let issued = change(
        &state,
        &auth,
        code,
        &id,
        "ticket.reissue",
        move |s, c, rid, account| match tickets::reissue(s, c, rid, why, &note, account) {
            Ok(n) => Ok((None, format!("why={} ticket={}", why.code(), n.as_str()))),
            Err(residents::ResidentError::Flagged) => Ok((
                Some("records.flagged_no_ticket"),
                format!("why={} refused=flagged", why.code()),
            )),
            Err(residents::ResidentError::TicketFromRunningImport) => Ok((
                Some("records.ticket_from_running_import"),
                format!("why={} refused=import_running", why.code()),
            )),
            Err(e) => Err(e.into()),
        },
    )
    .await?;
    if let Some(refusal) = issued {
        let m = ctx.t.s(refusal).to_string();
        return detail_page(ctx, &auth, &state, code, id, Some(m), None).await;
    }
    Ok(back(&id, "reissued"))
}

#[derive(Template)]
#[template(path = "records/sheet.html")]
pub struct SheetPage {
    pub t: T,
    pub sheets: Vec<Vec<Label>>,
    pub back_href: String,
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
    pub position: String,
}

/// Splits labels into A4 sheets.
pub fn into_sheets(labels: Vec<Label>) -> Vec<Vec<Label>> {
    labels
        .chunks(tickets::PER_SHEET as usize)
        .map(|c| c.to_vec())
        .collect()
}

#[get("/residents/{id}/ticket")]
async fn ticket_sheet(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let id = path_id(&path)?;
    let (st, actor, rid) = (state.clone(), auth.actor(), id.clone());
    let label = in_partition(&state, code, move |scope, conn| {
        let label = tickets::label_of_resident(scope, conn, &rid)?;
        if let Some(l) = &label {
            log_in_scope(
                scope,
                conn,
                &st.audit,
                &actor,
                "ticket.print",
                Some(format!("resident:{rid}")),
                Some(format!("ticket={}", l.ticket)),
            )?;
        }
        Ok(label)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    render(&SheetPage {
        t: ctx.t,
        sheets: into_sheets(vec![label]),
        back_href: format!("/residents/{id}"),
        prev_href: None,
        next_href: None,
        position: String::new(),
    })
}

#[derive(Deserialize)]
struct DoseForm {
    csrf: String,
    action: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    dose_number: String,
    #[serde(default)]
    administered_on: String,
    #[serde(default)]
    product: String,
    #[serde(default)]
    lot: String,
}

/// What staff do to one dose: confirm or reject it from the queue, delete
/// it (a wrong scan undone) or correct it, always with a reason (optional
/// only when confirming). The dose row is never rewritten.
#[post("/residents/{id}/doses/{dose}")]
async fn dose_action(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<DoseForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf)?;
    let code = staff(&auth)?;
    let id = path_id(&path.0)?;
    let dose_id = path_id(&path.1)?;
    let form = form.into_inner();
    let t = &ctx.t;
    let action = match DoseAction::parse(t, &form) {
        Some(Ok(a)) => a,
        Some(Err(msg)) => return detail_page(ctx, &auth, &state, code, id, Some(msg), None).await,
        None => return Err(AppError::BadRequest("action".into())),
    };
    let did = dose_id.clone();
    let outcome = change(
        &state,
        &auth,
        code,
        &id,
        "doses.change",
        move |scope, conn, rid, account| {
            use crate::flows::doses::{self, DoseError};
            // The dose must be this resident's: a foreign id is simply not found.
            let row = DoseRow::find(scope, conn, &did)?
                .filter(|d| d.resident_id == rid)
                .ok_or(AppError::NotFound)?;
            let done = match &action {
                DoseAction::Confirm(r) => {
                    doses::confirm(scope, conn, &row.id, account, r.as_ref()).map(|_| None)
                }
                DoseAction::Reject(r) => {
                    doses::reject(scope, conn, &row.id, account, r).map(|_| None)
                }
                DoseAction::Delete(r) => {
                    doses::delete(scope, conn, &row.id, account, r).map(|_| None)
                }
                DoseAction::Correct {
                    number,
                    date,
                    product,
                    lot,
                    reason,
                } => {
                    let product =
                        crate::db::models::vaccines::ProductRow::find(conn, product.as_str())?
                            .ok_or(AppError::BadRequest("product".into()))?;
                    let c = doses::Correction {
                        dose_number: *number,
                        administered_on: *date,
                        product: &product,
                        lot: lot.clone(),
                    };
                    doses::correct(scope, conn, &row.id, &c, account, reason).map(Some)
                }
            };
            match done {
                Ok(new_id) => Ok((
                    "dose",
                    format!(
                        "dose:{} action={}{}",
                        row.id,
                        action.code(),
                        new_id.map(|n| format!(" new=dose:{n}")).unwrap_or_default()
                    ),
                )),
                Err(DoseError::Stale) => Ok(("dose_stale", format!("dose:{} stale", row.id))),
                Err(DoseError::ImpossibleDate(r)) => Ok((
                    match r {
                        crate::domain::Reason::BeforeBirth => "dose_before_birth",
                        _ => "dose_future",
                    },
                    format!("dose:{} refused date", row.id),
                )),
                Err(DoseError::NotFound) => Err(AppError::NotFound),
                Err(e) => Err(AppError::failed(e)),
            }
        },
    )
    .await?;
    Ok(back(&id, outcome))
}

enum DoseAction {
    Confirm(Option<ChangeReason>),
    Reject(ChangeReason),
    Delete(ChangeReason),
    Correct {
        number: crate::domain::DoseNumber,
        date: chrono::NaiveDate,
        product: crate::domain::ProductCode,
        lot: crate::domain::LotNumber,
        reason: ChangeReason,
    },
}

impl DoseAction {
    /// The form as an action, or the first field error as the page shows
    /// it; `None` for an action no button sends.
    fn parse(t: &T, form: &DoseForm) -> Option<Result<DoseAction, String>> {
        let field = |key: &'static str| move |e: FieldError| field_error(t, key, e);
        let reason = ChangeReason::parse(&form.reason).map_err(field("dose.reason"));
        Some(match form.action.as_str() {
            // A reason is optional when confirming, but one given must be
            // a valid one: never dropped silently.
            "confirm" => match reason {
                Ok(r) => Ok(DoseAction::Confirm(Some(r))),
                Err(_) if form.reason.trim().is_empty() => Ok(DoseAction::Confirm(None)),
                Err(e) => Err(e),
            },
            "reject" => reason.map(DoseAction::Reject),
            "delete" => reason.map(DoseAction::Delete),
            "correct" => (|| {
                Ok(DoseAction::Correct {
                    reason: reason?,
                    number: crate::domain::DoseNumber::parse(&form.dose_number)
                        .map_err(field("ticket.dose"))?,
                    date: crate::domain::parse_date_field("接種日", &form.administered_on)
                        .map_err(field("records.dose_date"))?,
                    product: crate::domain::ProductCode::parse(&form.product)
                        .map_err(field("records.product"))?,
                    lot: crate::domain::LotNumber::parse(&form.lot)
                        .map_err(field("records.lot"))?,
                })
            })(),
            _ => return None,
        })
    }

    fn code(&self) -> &'static str {
        match self {
            DoseAction::Confirm(_) => "confirm",
            DoseAction::Reject(_) => "reject",
            DoseAction::Delete(_) => "delete",
            DoseAction::Correct { .. } => "correct",
        }
    }
}
