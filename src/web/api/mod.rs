//! The machine API (JSON, versioned under /api/v1) for site systems and
//! municipal systems, described by the OpenAPI document it serves. It takes
//! the same checks, idempotency and account rules as the tablet pages, with
//! a bearer token from `POST /api/v1/sessions` instead of a cookie (so no
//! browser can be made to call it cross-site).

mod certificates;
mod document;
pub(super) mod wire;

pub(super) use wire::{ApiError, ErrorCode};

use super::{AppError, Authed, with_db};
use super::{NotRecorder, recorder_of};
use crate::audit;
use crate::db::{DbConn, DbError};
use crate::domain::{FieldError, IdempotencyKey, LotNumber, ProductCode, Reason, TicketRef};
use crate::flows::AppState;
use crate::flows::accounts::{self, Live, LoginError};
use crate::flows::doses::{DoseError, Recorded};
use crate::flows::recording::{self, RecordInput, RecorderCtx};
use crate::flows::transfer::{self, Answer, Channel, Inquiry, TransferError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, post, web};
use wire::{
    BadJson, Busy, CheckRequest, Dose, DoseRequest, DoseStatus, InquiryRequest, LoginRequest,
    Session, TicketCheck, TooLarge, TransferAnswer, TransferredDose, Unauthorized,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(document::routes)
        .service(login)
        .service(logout)
        .service(check_ticket)
        .service(record_dose)
        .service(transfer_inquiry)
        .service(certificates::request_certificate)
        .configure(document::method_fallbacks);
}

/// A refusal as plain data: a stable code, the field at fault, and its
/// reason in words. Being data (not yet a response) it can be decided on
/// the database thread, inside the request's one use of a connection.
#[derive(Debug)]
pub(super) struct Refusal {
    status: StatusCode,
    code: ErrorCode,
    field: Option<String>,
    reason: Option<Reason>,
    /// For `dose_changed`: the dose number now due.
    due: Option<u8>,
    /// For `busy`: the seconds after which the same request may be sent
    /// again (a recording with its Idempotency-Key records once).
    retry_after: Option<u32>,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, code: ErrorCode) -> Refusal {
        Refusal {
            status,
            code,
            field: None,
            reason: None,
            due: None,
            retry_after: None,
        }
    }

    /// The database was too busy to answer in time.
    pub(super) fn busy() -> Refusal {
        Refusal {
            retry_after: Some(super::error::BUSY_RETRY_AFTER_SECS),
            ..Refusal::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Busy)
        }
    }

    pub(super) fn field(mut self, field: &str) -> Refusal {
        self.field = Some(field.to_string());
        self
    }

    fn reason(mut self, reason: Reason) -> Refusal {
        self.reason = Some(reason);
        self
    }

    /// The JSON answer: the code, the field when one is at fault, and a
    /// message in Japanese and English.
    pub(super) fn response(&self) -> HttpResponse {
        let body = ApiError {
            field: self.field.clone(),
            message_ja: self.reason.map(|r| r.message_ja()),
            message_en: self.reason.map(|r| r.message_en()),
            dose_number_due: self.due,
            ..ApiError::of(self.code)
        };
        let mut answer = HttpResponse::build(self.status);
        match self.retry_after {
            Some(secs) => answer
                .insert_header((actix_web::http::header::RETRY_AFTER, secs))
                .json(body.saying_busy()),
            None => answer.json(body),
        }
    }
}

pub(super) fn field_error(api_field: &str, e: FieldError) -> Refusal {
    Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField)
        .field(api_field)
        .reason(e.reason)
}

/// The body as `T`; a field of the wrong type is named in the answer.
pub(super) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let refusal = Refusal::new(StatusCode::BAD_REQUEST, ErrorCode::BadJson);
        if field != "." {
            refusal.field(&field)
        } else {
            refusal
        }
    })
}

fn unauthorized() -> Refusal {
    Refusal::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized)
}

fn answer<T>(outcome: Result<T, Refusal>, ok: impl FnOnce(T) -> HttpResponse) -> HttpResponse {
    match outcome {
        Ok(v) => ok(v),
        Err(r) => r.response(),
    }
}

/// How a request's database work is committed.
#[derive(Clone, Copy)]
enum Commit {
    /// On its own connection, as it goes.
    Alone,
    /// In the next commit group (a recording: see `db::commit_group`).
    Grouped,
}

/// Resolves the bearer token to its live session (with whatever else
/// `resolve` reads in the same query, given the request's `input`) and runs
/// `work` as that caller, on one connection for the whole request.
async fn as_caller<I, T, X, R, F>(
    req: &HttpRequest,
    state: &AppState,
    commit: Commit,
    input: I,
    resolve: R,
    work: F,
) -> Result<T, Refusal>
where
    I: Send + 'static,
    T: Send + 'static,
    R: FnOnce(&mut DbConn, &str, &I) -> Result<Option<(Live, X)>, DbError> + Send + 'static,
    F: FnOnce(&mut DbConn, Authed, X, I) -> Result<Result<T, Refusal>, AppError> + Send + 'static,
{
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthorized)?;
    let (addr, ip) = (super::auth::client_addr(req), super::auth::client_ip(req));
    let request = move |conn: &mut DbConn| {
        let Some((live, read)) = resolve(conn, &token, &input)? else {
            return Ok(Err(unauthorized()));
        };
        work(conn, Authed::of(live, token, addr, ip), read, input)
    };
    let outcome = match commit {
        Commit::Alone => with_db(state, request).await,
        Commit::Grouped => super::with_db_grouped(state, request).await,
    };
    outcome.unwrap_or_else(|e| Err(internal(e)))
}

/// The session alone.
fn session<I>(conn: &mut DbConn, token: &str, _: &I) -> Result<Option<(Live, ())>, DbError> {
    Ok(accounts::resolve(conn, token)?.map(|l| (l, ())))
}

fn recorder(auth: &Authed) -> Result<Result<RecorderCtx, Refusal>, AppError> {
    let forbidden = |code| Refusal::new(StatusCode::FORBIDDEN, code);
    Ok(match recorder_of(auth) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(NotRecorder::NoSite)) => Err(forbidden(ErrorCode::NoSite)),
        Ok(Err(NotRecorder::Role)) | Err(AppError::Forbidden) => {
            Err(forbidden(ErrorCode::Forbidden))
        }
        Err(AppError::PasswordChangeRequired) => Err(forbidden(ErrorCode::PasswordChangeRequired)),
        Err(e) => return Err(e),
    })
}

pub(super) fn internal(e: AppError) -> Refusal {
    let cause = crate::domain::mask_number_like(&e.cause_chain());
    if let AppError::Busy(_) = e {
        tracing::warn!(error = %cause, "api request met a busy database");
        return Refusal::busy();
    }
    tracing::error!(error = %cause, "api request failed");
    match e {
        AppError::Forbidden => Refusal::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden),
        AppError::Unavailable(_) => {
            Refusal::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable)
        }
        _ => Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
    }
}

fn refusal(e: DoseError) -> Refusal {
    match e {
        DoseError::NotIssued => {
            Refusal::new(StatusCode::NOT_FOUND, ErrorCode::TicketNotIssued).field("ticket")
        }
        DoseError::Invalidated => {
            Refusal::new(StatusCode::CONFLICT, ErrorCode::TicketInvalidated).field("ticket")
        }
        DoseError::DoseChanged { current, .. } => Refusal {
            due: Some(current),
            ..Refusal::new(StatusCode::CONFLICT, ErrorCode::DoseChanged).field("dose_number")
        },
        DoseError::Paused => Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyUnknownTickets,
        ),
        DoseError::KeyReused => Refusal::new(StatusCode::CONFLICT, ErrorCode::IdempotencyKeyReused)
            .field("Idempotency-Key"),
        DoseError::UnknownProduct => {
            Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField)
                .field("product_code")
                .reason(Reason::UnknownProduct)
        }
        other => internal(AppError::failed(other)),
    }
}

/// Runs a recorder's request: the caller must be one, and the parsed input
/// is refused only after the caller is known (401 comes first). `resolve`
/// reads the session for good input (see `as_caller`).
async fn as_recorder<I, X, T, R, F>(
    req: &HttpRequest,
    state: &AppState,
    commit: Commit,
    input: Result<I, Refusal>,
    resolve: R,
    work: F,
) -> Result<T, Refusal>
where
    I: Send + 'static,
    X: Default,
    T: Send + 'static,
    R: FnOnce(&mut DbConn, &str, &I) -> Result<Option<(Live, X)>, DbError> + Send + 'static,
    F: FnOnce(&mut DbConn, &AppState, &RecorderCtx, I, X) -> Result<T, DoseError> + Send + 'static,
{
    let st = state.clone();
    let resolve = move |conn: &mut DbConn, token: &str, input: &Result<I, Refusal>| match input {
        Ok(i) => resolve(conn, token, i),
        Err(_) => Ok(accounts::resolve(conn, token)?.map(|l| (l, X::default()))),
    };
    as_caller(
        req,
        state,
        commit,
        input,
        resolve,
        move |conn, auth, read, input| {
            let input = match input {
                Ok(i) => i,
                Err(r) => return Ok(Err(r)),
            };
            let rec = match recorder(&auth)? {
                Ok(r) => r,
                Err(r) => return Ok(Err(r)),
            };
            Ok(super::outcome(work(conn, &st, &rec, input, read))?.map_err(refusal))
        },
    )
    .await
}

/// Sign in
///
/// Signs a machine client in; the token goes in `Authorization: Bearer`.
/// A missing login id or password is refused before anything is checked
/// (and counts as no attempt).
#[utoipa::path(
    tag = "sessions",
    request_body = LoginRequest,
    responses(
        (status = 201, description = "Signed in.", body = Session),
        (status = 400, response = BadJson),
        (status = 401, description = "`login_refused`", body = ApiError),
        (status = 413, response = TooLarge),
        (status = 422, description = "`invalid_field`: `login_id` or `password` is empty", body = ApiError),
        (status = 503, response = Busy),
    ),
)]
#[post("/api/v1/sessions")]
async fn login(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let r: LoginRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(refused) => return refused.response(),
    };
    // What is missing or malformed is no attempt at an account: it is
    // refused by its field before anything is checked.
    let invalid = |field: &str, reason| {
        Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField)
            .field(field)
            .reason(reason)
            .response()
    };
    for (field, value) in [("login_id", &r.login_id), ("password", &r.password)] {
        if value.as_deref().is_none_or(str::is_empty) {
            return invalid(field, Reason::Empty);
        }
    }
    if let Some(code) = r.totp_code.as_deref().filter(|c| !c.is_empty()) {
        if !code.bytes().all(|b| b.is_ascii_digit()) {
            return invalid("totp_code", Reason::NotDigits);
        }
        if code.len() != 6 {
            return invalid("totp_code", Reason::WrongLength(6));
        }
    }
    let addr = super::auth::client_addr(&req);
    let st = state.clone();
    let outcome = web::block(move || {
        let typed = accounts::Credentials {
            login: r.login_id.as_deref().unwrap_or_default(),
            password: r.password.as_deref().unwrap_or_default(),
            code: r.totp_code.as_deref().unwrap_or_default(),
        };
        accounts::login(&st.pool, &st.master, &st.audit, &typed, &addr)
    })
    .await;
    match outcome {
        Ok(Ok(s)) => HttpResponse::Created().json(Session {
            token: s.token,
            token_type: "Bearer",
            idle_timeout_minutes: accounts::IDLE_MINUTES,
            role: s.account.role,
        }),
        Ok(Err(LoginError::Refused)) => {
            Refusal::new(StatusCode::UNAUTHORIZED, ErrorCode::LoginRefused).response()
        }
        _ => Refusal::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable).response(),
    }
}

/// Sign out
#[utoipa::path(
    tag = "sessions",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out."),
        (status = 401, response = Unauthorized),
        (status = 503, response = Busy),
    ),
)]
#[delete("/api/v1/sessions")]
async fn logout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let st = state.clone();
    let done = as_caller(
        &req,
        &state,
        Commit::Alone,
        (),
        session,
        move |conn, auth, (), ()| {
            accounts::logout(conn, &st.audit, &auth.token, &auth.account, &auth.addr)?;
            Ok(Ok(()))
        },
    )
    .await;
    answer(done, |()| HttpResponse::NoContent().finish())
}

/// Check a ticket before recording
///
/// What a site sees before recording: municipality, ticket, masked hint,
/// the dose due and any block. Nothing is written but the log line.
#[utoipa::path(
    tag = "sites",
    security(("bearer" = [])),
    request_body = CheckRequest,
    responses(
        (status = 200, description = "The ticket and what a dose today would be.", body = TicketCheck),
        (status = 400, response = BadJson),
        (status = 401, response = Unauthorized),
        (status = 403, description = "`forbidden` (not a recording account), `no_site`, `password_change_required`", body = ApiError),
        (status = 404, description = "`ticket_not_issued`", body = ApiError),
        (status = 409, description = "`ticket_invalidated`", body = ApiError),
        (status = 413, response = TooLarge),
        (status = 422, description = "`invalid_field` naming the field", body = ApiError),
        (status = 429, description = "`too_many_unknown_tickets`: the site is paused after many unknown tickets", body = ApiError),
        (status = 503, response = Busy),
    ),
)]
#[post("/api/v1/tickets/check")]
async fn check_ticket(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let input = parse_json::<CheckRequest>(&body).and_then(|r| {
        let ticket = TicketRef::parse(r.ticket.as_deref().unwrap_or_default())
            .map_err(|e| field_error("ticket", e))?;
        // Optional: without one, the check leaves the product out.
        let product = match r.product_code.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(ProductCode::parse(p).map_err(|e| field_error("product_code", e))?),
        };
        Ok((ticket, product))
    });
    let outcome = as_recorder(
        &req,
        &state,
        Commit::Alone,
        input,
        session,
        |conn, st, rec, (ticket, product), ()| {
            recording::preview_on(conn, st, rec, ticket, product)
        },
    )
    .await;
    answer(outcome, |p| {
        HttpResponse::Ok().json(TicketCheck {
            municipality_code: p.municipality.as_str().to_string(),
            ticket_number: p.ticket.as_str().to_string(),
            hint: wire::Hint {
                kana_initials: p.hint.kana_initials,
                birth_year: p.hint.birth_year,
                birth_month: p.hint.birth_month,
            },
            dose_number_due: p.dose_number,
            blocks: p.blocks.iter().map(|b| b.code().to_string()).collect(),
            earliest_date: p.earliest.map(|d| d.to_string()),
        })
    })
}

fn recorded_body(d: &Recorded) -> Dose {
    Dose {
        dose_id: d.dose_id.clone(),
        municipality_code: d.municipality.as_str().to_string(),
        ticket_number: d.ticket.as_str().to_string(),
        dose_number: d.dose_number,
        status: if d.queued() {
            DoseStatus::Queued
        } else {
            DoseStatus::Recorded
        },
        rules: d.rules.iter().map(|r| r.code().to_string()).collect(),
        replayed: d.replayed,
    }
}

/// The recording a request asks for, every field parsed and named if bad.
fn record_input(req: &HttpRequest, body: &[u8]) -> Result<RecordInput, Refusal> {
    let key = IdempotencyKey::parse(
        req.headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    )
    .map_err(|e| field_error("Idempotency-Key", e))?;
    let r: DoseRequest = parse_json(body)?;
    let ticket = TicketRef::parse(r.ticket.as_deref().unwrap_or_default())
        .map_err(|e| field_error("ticket", e))?;
    let administered_on = crate::domain::parse_date_field(
        "administered_on",
        r.administered_on.as_deref().unwrap_or_default(),
    )
    .map_err(|e| field_error("administered_on", e))?;
    let product_code = ProductCode::parse(r.product_code.as_deref().unwrap_or_default())
        .map_err(|e| field_error("product_code", e))?;
    let lot = LotNumber::parse(r.lot_number.as_deref().unwrap_or_default())
        .map_err(|e| field_error("lot_number", e))?;
    if let Some(n) = r.dose_number
        && !(1..=9).contains(&n)
    {
        return Err(
            Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField)
                .field("dose_number")
                .reason(Reason::OutOfRange(1, 9)),
        );
    }
    Ok(RecordInput {
        ticket,
        administered_on,
        product_code,
        lot,
        expected_dose: r.dose_number,
        key,
    })
}

/// Record a dose by ticket
///
/// The `Idempotency-Key` header makes a retry (same key) answer with the
/// dose the first request recorded.
#[utoipa::path(
    tag = "sites",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = String, Header, min_length = 16, max_length = 64, pattern = "^[A-Za-z0-9_-]+$",
         description = "16–64 of A–Z a–z 0–9 - _ (a UUID fits), new for each dose. Sending the same key again (a retry after a dropped connection, a double tap) records nothing new and answers with the dose the first request recorded."),
    ),
    request_body = DoseRequest,
    responses(
        (status = 201, description = "Recorded (status recorded), or recorded into the municipality's to-check queue (status queued).", body = Dose),
        (status = 200, description = "A repeat of an earlier request with the same Idempotency-Key: nothing new was recorded.", body = Dose),
        (status = 400, response = BadJson),
        (status = 401, response = Unauthorized),
        (status = 403, description = "`forbidden`, `no_site`, `password_change_required`", body = ApiError),
        (status = 404, description = "`ticket_not_issued`", body = ApiError),
        (status = 409, description = "`ticket_invalidated`, `dose_changed` (with `dose_number_due`), `idempotency_key_reused`", body = ApiError),
        (status = 413, response = TooLarge),
        (status = 422, description = "`invalid_field` naming the field (or the `Idempotency-Key` header)", body = ApiError),
        (status = 429, description = "`too_many_unknown_tickets`", body = ApiError),
        (status = 503, response = Busy),
    ),
)]
#[post("/api/v1/doses")]
async fn record_dose(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let input = record_input(&req, &body);
    let resolve = |conn: &mut DbConn, token: &str, i: &RecordInput| {
        accounts::resolve_for_recording(
            conn,
            token,
            i.ticket.municipality,
            i.product_code.as_str(),
            i.lot.as_str(),
        )
        .map(|found| found.map(|(live, read)| (live, Some(read))))
    };
    let outcome = as_recorder(
        &req,
        &state,
        Commit::Grouped,
        input,
        resolve,
        recording::record_on,
    )
    .await;
    answer(outcome, |d| {
        let status = if d.replayed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        HttpResponse::build(status).json(recorded_body(&d))
    })
}

/// The API's name for a field the domain names in Japanese.
fn api_field(domain: &str) -> &'static str {
    use crate::domain::{Consent, IdDocument, InquiryPurpose, MyNumber};
    match domain {
        f if f == MyNumber::FIELD => "individual_number",
        f if f == crate::domain::SOURCE_FIELD => "source_municipality_code",
        f if f == Consent::FORM_FIELD => "consent.form_received",
        f if f == Consent::CHECKED_BY_FIELD => "consent.checked_by",
        f if f == IdDocument::FIELD => "consent.id_document",
        f if f == InquiryPurpose::FIELD => "purpose",
        _ => "",
    }
}

/// Ask a former municipality for a person's dose history (転出元への接種記録照会)
///
/// Flow 4 for municipal systems: one person's transfer inquiry, under the
/// window's rules — inquiry and individual-number permissions, the
/// municipality's LG-WAN networks, consent recorded, rate limits — and
/// answered no sooner than the same floor. A miss is one uniform answer
/// whatever its cause. Every inquiry and refusal is in the asking
/// municipality's operation log; both sides keep a provision record
/// (metadata only).
#[utoipa::path(
    tag = "municipal systems",
    security(("bearer" = [])),
    request_body = InquiryRequest,
    responses(
        (status = 200, description = "The answer: matched, or the one uniform no_match.", body = TransferAnswer),
        (status = 400, description = "`bad_json` (also for a field the request does not take)", body = ApiError),
        (status = 401, response = Unauthorized),
        (status = 403, description = "`forbidden` (not municipal staff with the inquiry and individual-number permissions), `outside_lgwan` (not from the municipality's LG-WAN networks), `second_factor_required`", body = ApiError),
        (status = 413, response = TooLarge),
        (status = 422, description = "`invalid_field` naming the field, or `not_a_resident` (nothing was sent)", body = ApiError),
        (status = 429, description = "`rate_limited` (the administrators of both municipalities are notified)", body = ApiError),
        (status = 503, response = Busy),
    ),
)]
#[post("/api/v1/transfer-inquiries")]
async fn transfer_inquiry(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let input = parse_json::<InquiryRequest>(&body);
    let st = state.clone();
    let allowed = as_caller(
        &req,
        &state,
        Commit::Alone,
        input,
        session,
        move |conn, auth, (), input| {
            use crate::domain::{Permission, Role};
            use crate::flows::networks::NumberRefusal;
            let refuse = |conn: &mut DbConn, code: ErrorCode, reason: &str| {
                audit::record(
                    conn,
                    &st.audit,
                    &auth.actor(),
                    audit::Entry {
                        chain: &accounts::chain_of(&auth.account),
                        action: "transfer.inquire",
                        target: None,
                        outcome: "refused",
                        detail: Some(format!("channel=api reason={reason}")),
                    },
                )?;
                Ok::<_, AppError>(Err(Refusal::new(StatusCode::FORBIDDEN, code)))
            };
            // As the inquiry page: staff holding the inquiry and the
            // individual-number permission, on an LG-WAN terminal.
            let permissions = auth.permissions();
            let staff = auth.role() == Some(Role::MunicipalStaff)
                && !auth.account.must_change_password
                && permissions.contains(&Permission::Inquiry)
                && permissions.contains(&Permission::MyNumber);
            let Some(code) = auth.municipality().filter(|_| staff) else {
                return refuse(conn, ErrorCode::Forbidden, NumberRefusal::Role.code());
            };
            let has_second_factor = auth.account.second_factor;
            match crate::flows::networks::terminal_check(
                conn,
                code,
                auth.client_ip,
                has_second_factor,
            )? {
                Ok(()) => {}
                Err(r @ NumberRefusal::Network) => {
                    return refuse(conn, ErrorCode::OutsideLgwan, r.code());
                }
                Err(r) => return refuse(conn, ErrorCode::SecondFactorRequired, r.code()),
            }
            let r = match input {
                Ok(r) => r,
                Err(refused) => return Ok(Err(refused)),
            };
            let consent = r.consent.unwrap_or_default();
            let parsed = crate::domain::parse_inquiry(
                code,
                &crate::domain::InquiryFields {
                    number: r.individual_number.as_deref().unwrap_or_default(),
                    again: None,
                    source: r.source_municipality_code.as_deref().unwrap_or_default(),
                    consent: consent.form_received.unwrap_or(false),
                    id_document: consent.id_document.as_deref().unwrap_or_default(),
                    checked_by: consent.checked_by.as_deref().unwrap_or_default(),
                    purpose: r.purpose.as_deref().unwrap_or_default(),
                },
            );
            Ok(match parsed {
                Ok(p) => Ok((auth.actor(), code, p)),
                Err(errors) => {
                    let first = errors.into_iter().next();
                    Err(match first {
                        Some(e) => field_error(api_field(e.field), e),
                        None => {
                            Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField)
                        }
                    })
                }
            })
        },
    )
    .await;
    let (actor, code, p) = match allowed {
        Ok(v) => v,
        Err(r) => return r.response(),
    };
    let inquiry = Inquiry {
        asking: code,
        source: p.source,
        number: p.number,
        consent: p.consent,
        purpose: p.purpose,
        channel: Channel::Api,
    };
    match super::outcome(transfer::inquire_held(&state, actor, inquiry, started).await) {
        Ok(Ok(Answer::NoMatch)) => HttpResponse::Ok().json(TransferAnswer::NoMatch),
        Ok(Ok(Answer::Matched {
            inquiry_id,
            resident_id,
            doses,
            newly_copied,
        })) => HttpResponse::Ok().json(TransferAnswer::Matched {
            inquiry_id,
            resident_id,
            newly_copied,
            doses: doses
                .iter()
                .map(|d| TransferredDose {
                    dose_number: d.dose_number,
                    administered_on: d.administered_on.to_string(),
                    product_code: d.product_code.clone(),
                    lot_number: d.lot_number.clone(),
                    site_name: d.site_name.clone(),
                    site_municipality_code: d.site_municipality_code.clone(),
                })
                .collect(),
        }),
        Ok(Err(TransferError::NotResident)) => {
            Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::NotAResident)
                .field("individual_number")
                .response()
        }
        Ok(Err(_)) => {
            Refusal::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited).response()
        }
        Err(e) => internal(e).response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn a_busy_database_answers_503_busy_with_when_to_send_again() {
        let r = internal(AppError::Busy("database is locked".into())).response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            r.headers()
                .get(actix_web::http::header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"5"[..])
        );
        let body: serde_json::Value =
            serde_json::from_slice(&r.into_body().try_into_bytes().expect("a whole body"))
                .expect("json");
        assert_eq!(body["error"], "busy");
        assert!(body["message_ja"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body["message_en"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(
            !body.to_string().contains("locked"),
            "the cause stays in the log"
        );

        let r = internal(AppError::Internal("x".into())).response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !r.headers()
                .contains_key(actix_web::http::header::RETRY_AFTER)
        );
    }
}
