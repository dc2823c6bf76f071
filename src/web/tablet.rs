//! The vaccination-site tablet: one task per screen. Scan (camera, wedge
//! scanner or typed digits), see the ticket's municipality, number, masked
//! hint, the dose due and any block, pick product and lot (remembered for
//! the next person), confirm, see a clear success, scan the next.

use super::{AppError, Authed, Ctx, Nav, field_message, render};
use super::{NotRecorder, recorder_of};
use crate::domain::{
    FieldError, IdempotencyKey, LotNumber, MunicipalityCode, ProductCode, Reason, TicketRef,
};
use crate::flows::AppState;
use crate::flows::dose_checks::Rule;
use crate::flows::doses::{DoseError, Preview};
use crate::flows::recording::{self, RecordInput, RecorderCtx};
use crate::i18n::T;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(home).service(scan).service(record);
}

/// The product and lot last used on this tablet (not personal data).
const VIAL_COOKIE: &str = "vrs_site_vial";

fn remembered(req: &HttpRequest) -> (Option<String>, Option<String>) {
    let Some(c) = req.cookie(VIAL_COOKIE) else {
        return (None, None);
    };
    let mut parts = c.value().splitn(2, '|');
    let product = parts
        .next()
        .and_then(|p| ProductCode::parse(p).ok())
        .map(|p| p.as_str().to_string());
    let lot = parts
        .next()
        .and_then(|l| LotNumber::parse(l).ok())
        .map(|l| l.as_str().to_string());
    (product, lot)
}

fn recorder(auth: &Authed) -> Result<RecorderCtx, AppError> {
    match recorder_of(auth)? {
        Ok(r) if r.site().is_some() => Ok(r),
        Ok(_) | Err(NotRecorder::Role) => Err(AppError::Forbidden),
        Err(NotRecorder::NoSite) => Err(AppError::Forbidden),
    }
}

/// What the scan screen shows above the scan field: the last recording's
/// outcome, never a person.
struct Done {
    dose_number: u8,
    queued: bool,
    municipality: String,
}

#[derive(Template)]
#[template(path = "site/scan.html")]
struct ScanPage {
    t: T,
    nav: Nav,
    csrf: String,
    site_name: String,
    ticket: String,
    error: Option<String>,
    done: Option<Done>,
    /// The account's previous login, shown until the first recording.
    previous_login: Option<String>,
}

#[derive(Deserialize)]
struct HomeQuery {
    recorded: Option<u8>,
    queued: Option<u8>,
    m: Option<String>,
}

fn municipality_name(code: MunicipalityCode) -> String {
    crate::domain::Registry::global()
        .get(&code)
        .map(|m| m.full_name())
        .unwrap_or_else(|| code.to_string())
}

#[get("/site")]
async fn home(ctx: Ctx, auth: Authed, q: web::Query<HomeQuery>) -> Result<HttpResponse, AppError> {
    let rec = recorder(&auth)?;
    let done = match (q.recorded, q.m.as_deref().map(MunicipalityCode::parse)) {
        (Some(n), Some(Ok(code))) if crate::domain::DoseNumber::new(n).is_some() => Some(Done {
            dose_number: n,
            queued: q.queued == Some(1),
            municipality: municipality_name(code),
        }),
        _ => None,
    };
    render(&ScanPage {
        nav: Nav::for_account(&auth, "/site"),
        csrf: auth.session.csrf_token.clone(),
        site_name: rec.site().map(|s| s.name.clone()).unwrap_or_default(),
        ticket: String::new(),
        error: None,
        previous_login: done
            .is_none()
            .then(|| auth.session.previous_login_at.map(crate::clock::jst))
            .flatten(),
        done,
        t: ctx.t,
    })
}

#[derive(Deserialize)]
struct ScanForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ticket: String,
}

/// The confirm screen: what was scanned, and the form that records.
#[derive(Template)]
#[template(path = "site/confirm.html")]
struct ConfirmPage {
    t: T,
    nav: Nav,
    csrf: String,
    site_name: String,
    ticket_input: String,
    municipality: String,
    ticket_number: String,
    kana_initials: String,
    birth_year: i32,
    birth_month: u32,
    dose_number: u8,
    blocks: Vec<Rule>,
    earliest: Option<String>,
    products: Vec<crate::flows::vaccines::ProductLine>,
    product: String,
    lots: Vec<String>,
    lot: String,
    administered_on: String,
    key: String,
    errors: RecordErrors,
}

impl ConfirmPage {
    fn product_label(&self, p: &crate::flows::vaccines::ProductLine) -> String {
        p.label(self.t.is_en())
    }
}

#[derive(Default)]
struct RecordErrors {
    product: Option<String>,
    lot: Option<String>,
    administered_on: Option<String>,
    acknowledged: Option<String>,
    general: Option<String>,
}

/// The message for a ticket the site cannot record on.
fn refusal(t: &T, e: &DoseError) -> String {
    t.s(match e {
        DoseError::NotIssued => "site.error.not_issued",
        DoseError::Invalidated => "site.error.invalidated",
        DoseError::DoseChanged { .. } => "site.error.changed",
        DoseError::KeyReused => "site.error.key_reused",
        DoseError::UnknownProduct => "site.error.product",
        DoseError::Paused => "site.error.paused",
        _ => "site.error.other",
    })
    .to_string()
}

fn scan_error(t: &T, e: FieldError) -> String {
    format!("{}: {}", t.s("site.ticket"), field_message(t, e.reason))
}

#[allow(clippy::too_many_arguments)]
async fn confirm_page(
    req: &HttpRequest,
    ctx: &Ctx,
    auth: &Authed,
    state: &AppState,
    rec: &RecorderCtx,
    ticket_input: String,
    p: Preview,
    chosen: (Option<String>, Option<String>, Option<String>),
    key: IdempotencyKey,
    errors: RecordErrors,
) -> Result<HttpResponse, AppError> {
    let (last_product, last_lot) = remembered(req);
    let (product, lot, date) = chosen;
    let product = product.or(last_product);
    let listed = product.as_deref().and_then(|p| ProductCode::parse(p).ok());
    let (products, lots) = recording::choices(state, listed)
        .await
        .map_err(AppError::failed)?;
    let status = if errors.any() {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        actix_web::http::StatusCode::OK
    };
    let mut resp = render(&ConfirmPage {
        nav: Nav::for_account(auth, "/site"),
        csrf: auth.session.csrf_token.clone(),
        site_name: rec.site().map(|s| s.name.clone()).unwrap_or_default(),
        ticket_input,
        municipality: municipality_name(p.municipality),
        ticket_number: p.ticket.as_str().to_string(),
        kana_initials: p.hint.kana_initials.clone(),
        birth_year: p.hint.birth_year,
        birth_month: p.hint.birth_month,
        dose_number: p.dose_number,
        blocks: p.blocks.clone(),
        earliest: p.earliest.map(|d| d.to_string()),
        products,
        product: product.unwrap_or_default(),
        lots,
        lot: lot.or(last_lot).unwrap_or_default(),
        administered_on: date.unwrap_or_else(|| crate::clock::today_in_japan().to_string()),
        key: key.as_str().to_string(),
        errors,
        t: ctx.t.clone(),
    })?;
    *resp.status_mut() = status;
    Ok(resp)
}

impl RecordErrors {
    fn any(&self) -> bool {
        self.product.is_some()
            || self.lot.is_some()
            || self.administered_on.is_some()
            || self.acknowledged.is_some()
            || self.general.is_some()
    }
}

async fn scan_again(
    ctx: &Ctx,
    auth: &Authed,
    rec: &RecorderCtx,
    ticket: String,
    error: String,
) -> Result<HttpResponse, AppError> {
    let mut resp = render(&ScanPage {
        nav: Nav::for_account(auth, "/site"),
        csrf: auth.session.csrf_token.clone(),
        site_name: rec.site().map(|s| s.name.clone()).unwrap_or_default(),
        ticket,
        error: Some(error),
        done: None,
        previous_login: None,
        t: ctx.t.clone(),
    })?;
    *resp.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(resp)
}

#[post("/site/scan")]
async fn scan(
    req: HttpRequest,
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<ScanForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf)?;
    let rec = recorder(&auth)?;
    // Shown back on the page at most 40 characters long; parsed whole, so
    // what is cut off is refused, never ignored.
    let input = form.ticket.trim().chars().take(40).collect::<String>();
    // The check digit is verified here, before anything is looked up.
    let t = match TicketRef::parse(form.ticket.trim()) {
        Ok(t) => t,
        Err(e) => return scan_again(&ctx, &auth, &rec, input, scan_error(&ctx.t, e)).await,
    };
    let product = remembered(&req).0.and_then(|p| ProductCode::parse(&p).ok());
    match super::outcome(recording::preview(&state, &rec, t, product).await)? {
        Ok(p) => {
            confirm_page(
                &req,
                &ctx,
                &auth,
                &state,
                &rec,
                input,
                p,
                (None, None, None),
                IdempotencyKey::generate(),
                RecordErrors::default(),
            )
            .await
        }
        Err(e) => {
            let msg = refusal(&ctx.t, &e);
            scan_again(&ctx, &auth, &rec, input, msg).await
        }
    }
}

#[derive(Deserialize)]
struct RecordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    dose_number: String,
    #[serde(default)]
    product: String,
    #[serde(default)]
    lot: String,
    #[serde(default)]
    administered_on: String,
    #[serde(default)]
    acknowledged: Option<String>,
    #[serde(default)]
    blocked: Option<String>,
}

#[post("/site/doses")]
async fn record(
    req: HttpRequest,
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<RecordForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf)?;
    let rec = recorder(&auth)?;
    let form = form.into_inner();
    let t = &ctx.t;
    let ticket = match TicketRef::parse(&form.ticket) {
        Ok(x) => x,
        Err(e) => {
            return scan_again(&ctx, &auth, &rec, form.ticket.clone(), scan_error(t, e)).await;
        }
    };
    // The key came with the confirm screen; a tampered one is refused.
    let key = IdempotencyKey::parse(&form.key)
        .map_err(|_| AppError::BadRequest("idempotency key".into()))?;
    let mut errors = RecordErrors::default();
    let msg =
        |label: &str, e: FieldError| format!("{}: {}", t.s(label), field_message(t, e.reason));
    let lot = LotNumber::parse(&form.lot)
        .map_err(|e| errors.lot = Some(msg("site.lot", e)))
        .ok();
    let date = crate::domain::parse_date_field("接種日", &form.administered_on)
        .map_err(|e| errors.administered_on = Some(msg("site.date", e)))
        .ok();
    let product = ProductCode::parse(&form.product)
        .map_err(|e| errors.product = Some(msg("site.product", e)))
        .ok();
    // A dose with a block on screen is recorded only when staff said they
    // saw it; it then goes to the municipality's queue.
    if form.blocked.is_some() && form.acknowledged.is_none() {
        errors.acknowledged = Some(t.s("site.ack_needed").to_string());
    }
    // The dose number came with the confirm screen, as the key did: parsed
    // as the API parses it, and a tampered one refused.
    let expected = match form.dose_number.trim() {
        "" => None,
        n => Some(
            crate::domain::DoseNumber::parse(n)
                .map_err(|_| AppError::BadRequest("dose_number".into()))?
                .get(),
        ),
    };
    let chosen = (
        Some(form.product.clone()).filter(|p| !p.is_empty()),
        Some(form.lot.clone()),
        Some(form.administered_on.clone()),
    );
    if let (Some(lot), Some(date), Some(product), false) =
        (lot, date, product.clone(), errors.any())
    {
        let input = RecordInput {
            ticket: ticket.clone(),
            administered_on: date,
            product_code: product,
            lot: lot.clone(),
            expected_dose: expected,
            key: key.clone(),
        };
        match super::outcome(recording::record(&state, &rec, input).await)? {
            Ok(done) => {
                let location = format!(
                    "/site?recorded={}&queued={}&m={}",
                    done.dose_number,
                    u8::from(done.queued()),
                    done.municipality
                );
                let vial = format!("{}|{}", form.product.trim(), lot.as_str());
                let cookie = Cookie::build(VIAL_COOKIE, vial)
                    .path("/site")
                    .http_only(true)
                    .same_site(SameSite::Strict)
                    // Secure as the server's own cookies are: a client's
                    // X-Forwarded-Proto says nothing.
                    .secure(
                        req.app_data::<web::Data<super::frame::Transport>>()
                            .is_some_and(|t| t.secure),
                    )
                    .max_age(actix_web::cookie::time::Duration::hours(12))
                    .finish();
                return Ok(HttpResponse::SeeOther()
                    .insert_header((actix_web::http::header::LOCATION, location))
                    .cookie(cookie)
                    .finish());
            }
            Err(DoseError::UnknownProduct) => {
                errors.product = Some(msg(
                    "site.product",
                    FieldError {
                        field: "製品",
                        reason: Reason::UnknownProduct,
                    },
                ));
            }
            Err(e @ (DoseError::NotIssued | DoseError::Invalidated)) => {
                let m = refusal(t, &e);
                return scan_again(&ctx, &auth, &rec, form.ticket.clone(), m).await;
            }
            Err(e) => errors.general = Some(refusal(t, &e)),
        }
    }
    // Show the confirm screen again, freshly looked up, with the errors.
    match super::outcome(recording::preview(&state, &rec, ticket, product).await)? {
        Ok(p) => {
            confirm_page(
                &req,
                &ctx,
                &auth,
                &state,
                &rec,
                form.ticket.clone(),
                p,
                chosen,
                // The record changed: a new screen, a new key.
                if errors.general.is_some() {
                    IdempotencyKey::generate()
                } else {
                    key
                },
                errors,
            )
            .await
        }
        Err(e) => {
            let m = refusal(t, &e);
            scan_again(&ctx, &auth, &rec, form.ticket.clone(), m).await
        }
    }
}
