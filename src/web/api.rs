//! The machine API (JSON, versioned under /api/v1) for site systems and
//! municipal systems, described by the OpenAPI document it serves. It takes
//! the same checks, idempotency and account rules as the tablet pages, with
//! a bearer token from `POST /api/v1/sessions` instead of a cookie (so no
//! browser can be made to call it cross-site).

use super::recording::{self, NotRecorder, RecordInput, RecorderCtx};
use super::{AppError, Authed, with_db};
use crate::audit;
use crate::db::{DbConn, DbError};
use crate::domain::{FieldError, IdempotencyKey, LotNumber, Reason, TicketRef};
use crate::flows::accounts::{self, Live, LoginError};
use crate::flows::doses::{DoseError, Recorded};
use crate::flows::transfer::{Answer, Channel, Inquiry, TransferError};
use crate::startup::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use serde::Deserialize;
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(openapi)
        .service(login)
        .service(logout)
        .service(check_ticket)
        .service(record_dose)
        .service(transfer_inquiry)
        .service(super::api_certificates::request_certificate);
}

const OPENAPI: &str = include_str!("../../reference/openapi.json");

#[get("/api/v1/openapi.json")]
async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

/// A refusal as plain data: a stable code, the field at fault, and its
/// reason in words. Being data (not yet a response) it can be decided on
/// the database thread, inside the request's one use of a connection.
#[derive(Debug)]
pub(super) struct Refusal {
    status: StatusCode,
    code: &'static str,
    field: Option<String>,
    reason: Option<Reason>,
    /// For `dose_changed`: the dose number now due.
    due: Option<u8>,
    /// For `busy`: the seconds after which the same request may be sent
    /// again (a recording with its Idempotency-Key records once).
    retry_after: Option<u32>,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, code: &'static str) -> Refusal {
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
            ..Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "busy")
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
        let mut body = json!({ "error": self.code });
        if let Some(f) = &self.field {
            body["field"] = json!(f);
        }
        if let Some(r) = self.reason {
            body["message_ja"] = json!(r.message_ja());
            body["message_en"] = json!(r.message_en());
        }
        if let Some(n) = self.due {
            body["dose_number_due"] = json!(n);
        }
        let mut answer = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            let (ja, en) = super::error::busy_messages();
            body["message_ja"] = json!(ja);
            body["message_en"] = json!(en);
            answer.insert_header((actix_web::http::header::RETRY_AFTER, secs));
        }
        answer.json(body)
    }
}

pub(super) fn field_error(api_field: &str, e: FieldError) -> Refusal {
    Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
        .field(api_field)
        .reason(e.reason)
}

/// The body as `T`; a field of the wrong type is named in the answer.
pub(super) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let refusal = Refusal::new(StatusCode::BAD_REQUEST, "bad_json");
        if field != "." {
            refusal.field(&field)
        } else {
            refusal
        }
    })
}

fn unauthorized() -> Refusal {
    Refusal::new(StatusCode::UNAUTHORIZED, "unauthorized")
}

fn answer<T>(outcome: Result<T, Refusal>, ok: impl FnOnce(T) -> HttpResponse) -> HttpResponse {
    match outcome {
        Ok(v) => ok(v),
        Err(r) => r.response(),
    }
}

/// Resolves the bearer token to its live session (with whatever else
/// `resolve` reads in the same query, given the request's `input`) and runs
/// `work` as that caller, on one pooled connection for the whole request.
async fn as_caller<I, T, X, R, F>(
    req: &HttpRequest,
    state: &AppState,
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
    let outcome = with_db(state, move |conn| {
        let Some((live, read)) = resolve(conn, &token, &input)? else {
            return Ok(Err(unauthorized()));
        };
        work(conn, Authed::of(live, token, addr, ip), read, input)
    })
    .await;
    outcome.unwrap_or_else(|e| Err(internal(e)))
}

/// The session alone.
fn session<I>(conn: &mut DbConn, token: &str, _: &I) -> Result<Option<(Live, ())>, DbError> {
    Ok(accounts::resolve(conn, token)?.map(|l| (l, ())))
}

fn recorder(auth: &Authed) -> Result<Result<RecorderCtx, Refusal>, AppError> {
    let forbidden = |code| Refusal::new(StatusCode::FORBIDDEN, code);
    Ok(match recording::recorder_of(auth) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(NotRecorder::NoSite)) => Err(forbidden("no_site")),
        Ok(Err(NotRecorder::Role)) | Err(AppError::Forbidden) => Err(forbidden("forbidden")),
        Err(AppError::PasswordChangeRequired) => Err(forbidden("password_change_required")),
        Err(e) => return Err(e),
    })
}

pub(super) fn internal(e: AppError) -> Refusal {
    let cause = crate::domain::mask_number_like(&e.to_string());
    if let AppError::Busy(_) = e {
        tracing::warn!(error = %cause, "api request met a busy database");
        return Refusal::busy();
    }
    tracing::error!(error = %cause, "api request failed");
    match e {
        AppError::Forbidden => Refusal::new(StatusCode::FORBIDDEN, "forbidden"),
        AppError::Unavailable(_) => Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        _ => Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

fn refusal(e: DoseError) -> Refusal {
    match e {
        DoseError::NotIssued => {
            Refusal::new(StatusCode::NOT_FOUND, "ticket_not_issued").field("ticket")
        }
        DoseError::Invalidated => {
            Refusal::new(StatusCode::CONFLICT, "ticket_invalidated").field("ticket")
        }
        DoseError::DoseChanged { current, .. } => Refusal {
            due: Some(current),
            ..Refusal::new(StatusCode::CONFLICT, "dose_changed").field("dose_number")
        },
        DoseError::Paused => {
            Refusal::new(StatusCode::TOO_MANY_REQUESTS, "too_many_unknown_tickets")
        }
        DoseError::KeyReused => {
            Refusal::new(StatusCode::CONFLICT, "idempotency_key_reused").field("Idempotency-Key")
        }
        DoseError::UnknownProduct => {
            Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
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
    input: Result<I, Refusal>,
    resolve: R,
    work: F,
) -> Result<T, Refusal>
where
    I: Send + 'static,
    X: Default,
    T: Send + 'static,
    R: FnOnce(&mut DbConn, &str, &I) -> Result<Option<(Live, X)>, DbError> + Send + 'static,
    F: FnOnce(&mut DbConn, &AppState, &RecorderCtx, I, X) -> Result<Result<T, DoseError>, AppError>
        + Send
        + 'static,
{
    let st = state.clone();
    let resolve = move |conn: &mut DbConn, token: &str, input: &Result<I, Refusal>| match input {
        Ok(i) => resolve(conn, token, i),
        Err(_) => Ok(accounts::resolve(conn, token)?.map(|l| (l, X::default()))),
    };
    as_caller(
        req,
        state,
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
            Ok(work(conn, &st, &rec, input, read)?.map_err(refusal))
        },
    )
    .await
}

#[derive(Deserialize)]
struct LoginRequest {
    login_id: Option<String>,
    password: Option<String>,
    totp_code: Option<String>,
}

/// Signs a machine client in; the token goes in `Authorization: Bearer`.
#[post("/api/v1/sessions")]
async fn login(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let r: LoginRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(refused) => return refused.response(),
    };
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
        Ok(Ok(s)) => HttpResponse::Created().json(json!({
            "token": s.token,
            "token_type": "Bearer",
            "idle_timeout_minutes": accounts::IDLE_MINUTES,
            "role": s.account.role,
        })),
        Ok(Err(LoginError::Refused)) => {
            Refusal::new(StatusCode::UNAUTHORIZED, "login_refused").response()
        }
        _ => Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable").response(),
    }
}

#[delete("/api/v1/sessions")]
async fn logout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let st = state.clone();
    let done = as_caller(&req, &state, (), session, move |conn, auth, (), ()| {
        accounts::logout(conn, &st.audit, &auth.token, &auth.account, &auth.addr)?;
        Ok(Ok(()))
    })
    .await;
    answer(done, |()| HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct CheckRequest {
    ticket: Option<String>,
    product_code: Option<String>,
}

/// What a site sees before recording: municipality, ticket, masked hint,
/// the dose due and any block. Nothing is written but the log line.
#[post("/api/v1/tickets/check")]
async fn check_ticket(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let input = parse_json::<CheckRequest>(&body).and_then(|r| {
        let ticket = TicketRef::parse(r.ticket.as_deref().unwrap_or_default())
            .map_err(|e| field_error("ticket", e))?;
        Ok((ticket, r.product_code))
    });
    let outcome = as_recorder(
        &req,
        &state,
        input,
        session,
        |conn, st, rec, (ticket, product), ()| {
            recording::preview_on(conn, st, rec, ticket, product)
        },
    )
    .await;
    answer(outcome, |p| {
        HttpResponse::Ok().json(json!({
            "municipality_code": p.municipality.as_str(),
            "ticket_number": p.ticket.as_str(),
            "hint": p.hint,
            "dose_number_due": p.dose_number,
            "blocks": p.blocks.iter().map(|b| b.code()).collect::<Vec<_>>(),
            "earliest_date": p.earliest.map(|d| d.to_string()),
        }))
    })
}

#[derive(Deserialize)]
struct DoseRequest {
    ticket: Option<String>,
    administered_on: Option<String>,
    product_code: Option<String>,
    lot_number: Option<String>,
    dose_number: Option<u8>,
}

fn recorded_body(d: &Recorded) -> serde_json::Value {
    json!({
        "dose_id": d.dose_id,
        "municipality_code": d.municipality.as_str(),
        "ticket_number": d.ticket.as_str(),
        "dose_number": d.dose_number,
        "status": if d.queued() { "queued" } else { "recorded" },
        "rules": d.rules.iter().map(|r| r.code()).collect::<Vec<_>>(),
        "replayed": d.replayed,
    })
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
    let product_code = r.product_code.unwrap_or_default().trim().to_string();
    if product_code.is_empty() {
        return Err(
            Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
                .field("product_code")
                .reason(Reason::Empty),
        );
    }
    let lot = LotNumber::parse(r.lot_number.as_deref().unwrap_or_default())
        .map_err(|e| field_error("lot_number", e))?;
    if let Some(n) = r.dose_number
        && !(1..=9).contains(&n)
    {
        return Err(
            Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
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

/// Records a dose by ticket. The `Idempotency-Key` header makes a retry
/// (same key) answer with the dose the first request recorded.
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
            &i.product_code,
            i.lot.as_str(),
        )
        .map(|found| found.map(|(live, read)| (live, Some(read))))
    };
    let outcome = as_recorder(&req, &state, input, resolve, recording::record_on).await;
    answer(outcome, |d| {
        let status = if d.replayed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        HttpResponse::build(status).json(recorded_body(&d))
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    form_received: Option<bool>,
    id_document: Option<String>,
    checked_by: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InquiryRequest {
    individual_number: Option<String>,
    source_municipality_code: Option<String>,
    consent: Option<ConsentRequest>,
    purpose: Option<String>,
}

/// The API's name for a field the domain names in Japanese.
fn api_field(domain: &str) -> &'static str {
    use crate::domain::{Consent, IdDocument, InquiryPurpose, MyNumber};
    match domain {
        f if f == MyNumber::FIELD => "individual_number",
        f if f == super::transfers::SOURCE_FIELD => "source_municipality_code",
        f if f == Consent::FORM_FIELD => "consent.form_received",
        f if f == Consent::CHECKED_BY_FIELD => "consent.checked_by",
        f if f == IdDocument::FIELD => "consent.id_document",
        f if f == InquiryPurpose::FIELD => "purpose",
        _ => "",
    }
}

/// Flow 4 for municipal systems: one person's transfer inquiry, under the
/// window's rules — inquiry permission, the municipality's LG-WAN networks,
/// consent recorded, rate limits — and answered no sooner than the same
/// floor. A miss is one uniform answer whatever its cause.
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
        input,
        session,
        move |conn, auth, (), input| {
            use crate::domain::{Permission, Role};
            use crate::flows::networks::NumberRefusal;
            let refuse = |conn: &mut DbConn, code: &'static str, reason: &str| {
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
                return refuse(conn, "forbidden", NumberRefusal::Role.code());
            };
            let has_second_factor = auth.account.totp_secret_wrapped.is_some();
            match crate::flows::networks::terminal_check(
                conn,
                code,
                auth.client_ip,
                has_second_factor,
            )? {
                Ok(()) => {}
                Err(r @ NumberRefusal::Network) => return refuse(conn, "outside_lgwan", r.code()),
                Err(r) => return refuse(conn, "second_factor_required", r.code()),
            }
            let r = match input {
                Ok(r) => r,
                Err(refused) => return Ok(Err(refused)),
            };
            let consent = r.consent.unwrap_or_default();
            let parsed = super::transfers::parse_inquiry(
                code,
                &super::transfers::InquiryFields {
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
                        None => Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
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
    match super::transfers::run_inquiry(&state, actor, inquiry, started).await {
        Ok(Ok(Answer::NoMatch)) => HttpResponse::Ok().json(json!({ "outcome": "no_match" })),
        Ok(Ok(Answer::Matched {
            inquiry_id,
            resident_id,
            doses,
            newly_copied,
        })) => HttpResponse::Ok().json(json!({
            "outcome": "matched",
            "inquiry_id": inquiry_id,
            "resident_id": resident_id,
            "newly_copied": newly_copied,
            "doses": doses.iter().map(|d| json!({
                "dose_number": d.dose_number,
                "administered_on": d.administered_on.to_string(),
                "product_code": d.product_code,
                "lot_number": d.lot_number,
                "site_name": d.site_name,
                "site_municipality_code": d.site_municipality_code,
            })).collect::<Vec<_>>(),
        })),
        Ok(Err(TransferError::NotResident)) => {
            Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, "not_a_resident")
                .field("individual_number")
                .response()
        }
        Ok(Err(_)) => Refusal::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited").response(),
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
