//! The machine API (JSON, versioned under /api/v1) for site systems and
//! municipal systems, described by the OpenAPI document it serves. It takes
//! the same checks, idempotency and account rules as the tablet pages, with
//! a bearer token from `POST /api/v1/sessions` instead of a cookie (so no
//! browser can be made to call it cross-site).

// The edge helpers return a ready error response as their `Err`: it is
// answered at once, never carried, so its size does not matter.
#![allow(clippy::result_large_err)]

use super::recording::{self, NotRecorder, RecordInput, RecorderCtx};
use super::{AppError, Authed, with_db};
use crate::domain::{FieldError, IdempotencyKey, LotNumber, Reason, TicketRef};
use crate::flows::accounts::{self, LoginError};
use crate::flows::doses::{DoseError, Recorded};
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
        .service(record_dose);
}

const OPENAPI: &str = include_str!("../../reference/openapi.json");

#[get("/api/v1/openapi.json")]
async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

/// A JSON error: a stable code, the field when one is at fault, and a
/// message in Japanese and English.
fn error(
    status: StatusCode,
    code: &str,
    field: Option<&str>,
    reason: Option<Reason>,
) -> HttpResponse {
    let mut body = json!({ "error": code });
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    if let Some(r) = reason {
        body["message_ja"] = json!(r.message_ja());
        body["message_en"] = json!(r.message_en());
    }
    HttpResponse::build(status).json(body)
}

fn field_error(api_field: &str, e: FieldError) -> HttpResponse {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some(api_field),
        Some(e.reason),
    )
}

/// The body as `T`; a field of the wrong type is named in the answer.
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, HttpResponse> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let named = (field != ".").then_some(field.as_str());
        error(StatusCode::BAD_REQUEST, "bad_json", named, None)
    })
}

/// The bearer token's live session, or 401.
async fn bearer(req: &HttpRequest, state: &AppState) -> Result<Authed, HttpResponse> {
    let unauthorized = || error(StatusCode::UNAUTHORIZED, "unauthorized", None, None);
    let token = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthorized)?;
    let t = token.clone();
    let found = with_db(state, move |conn| Ok(accounts::resolve(conn, &t)?))
        .await
        .map_err(|_| error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", None, None))?;
    let (session, account) = found.ok_or_else(unauthorized)?;
    Ok(Authed {
        account,
        session,
        token,
        addr: super::auth::client_addr(req),
        client_ip: super::auth::client_ip(req),
    })
}

async fn recorder(state: &AppState, auth: &Authed) -> Result<RecorderCtx, HttpResponse> {
    let forbidden = |code| error(StatusCode::FORBIDDEN, code, None, None);
    match recording::recorder_of(state, auth).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(NotRecorder::NoSite)) => Err(forbidden("no_site")),
        Ok(Err(NotRecorder::Role)) | Err(AppError::Forbidden) => Err(forbidden("forbidden")),
        Err(AppError::PasswordChangeRequired) => Err(forbidden("password_change_required")),
        Err(e) => Err(internal(e)),
    }
}

fn internal(e: AppError) -> HttpResponse {
    tracing::error!(error = %crate::domain::mask_number_like(&e.to_string()), "api request failed");
    match e {
        AppError::Forbidden => error(StatusCode::FORBIDDEN, "forbidden", None, None),
        AppError::Unavailable(_) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", None, None)
        }
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", None, None),
    }
}

fn refusal(e: DoseError) -> HttpResponse {
    match e {
        DoseError::NotIssued => error(
            StatusCode::NOT_FOUND,
            "ticket_not_issued",
            Some("ticket"),
            None,
        ),
        DoseError::Invalidated => error(
            StatusCode::CONFLICT,
            "ticket_invalidated",
            Some("ticket"),
            None,
        ),
        DoseError::DoseChanged { current, .. } => HttpResponse::Conflict().json(
            json!({ "error": "dose_changed", "field": "dose_number", "dose_number_due": current }),
        ),
        DoseError::Paused => error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_unknown_tickets",
            None,
            None,
        ),
        DoseError::KeyReused => error(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            Some("Idempotency-Key"),
            None,
        ),
        DoseError::UnknownProduct => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("product_code"),
            Some(Reason::UnknownProduct),
        ),
        other => internal(AppError::Internal(other.to_string())),
    }
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
        Err(resp) => return resp,
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
            error(StatusCode::UNAUTHORIZED, "login_refused", None, None)
        }
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", None, None),
    }
}

#[delete("/api/v1/sessions")]
async fn logout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let auth = match bearer(&req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let st = state.clone();
    let done = with_db(&state, move |conn| {
        Ok(accounts::logout(
            conn,
            &st.audit,
            &auth.token,
            &auth.account,
            &auth.addr,
        )?)
    })
    .await;
    match done {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => internal(e),
    }
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
    let auth = match bearer(&req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let r: CheckRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let ticket = match TicketRef::parse(r.ticket.as_deref().unwrap_or_default()) {
        Ok(t) => t,
        Err(e) => return field_error("ticket", e),
    };
    let rec = match recorder(&state, &auth).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    match recording::preview(&state, &rec, ticket, r.product_code).await {
        Ok(Ok(p)) => HttpResponse::Ok().json(json!({
            "municipality_code": p.municipality.as_str(),
            "ticket_number": p.ticket.as_str(),
            "hint": p.hint,
            "dose_number_due": p.dose_number,
            "blocks": p.blocks.iter().map(|b| b.code()).collect::<Vec<_>>(),
            "earliest_date": p.earliest.map(|d| d.to_string()),
        })),
        Ok(Err(e)) => refusal(e),
        Err(e) => internal(e),
    }
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

/// Records a dose by ticket. The `Idempotency-Key` header makes a retry
/// (same key) answer with the dose the first request recorded.
#[post("/api/v1/doses")]
async fn record_dose(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let auth = match bearer(&req, &state).await {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let key = match IdempotencyKey::parse(
        req.headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    ) {
        Ok(k) => k,
        Err(e) => return field_error("Idempotency-Key", e),
    };
    let r: DoseRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let ticket = match TicketRef::parse(r.ticket.as_deref().unwrap_or_default()) {
        Ok(t) => t,
        Err(e) => return field_error("ticket", e),
    };
    let date = match crate::domain::parse_date_field(
        "administered_on",
        r.administered_on.as_deref().unwrap_or_default(),
    ) {
        Ok(d) => d,
        Err(e) => return field_error("administered_on", e),
    };
    let product_code = r.product_code.unwrap_or_default().trim().to_string();
    if product_code.is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("product_code"),
            Some(Reason::Empty),
        );
    }
    let lot = match LotNumber::parse(r.lot_number.as_deref().unwrap_or_default()) {
        Ok(l) => l,
        Err(e) => return field_error("lot_number", e),
    };
    if let Some(n) = r.dose_number
        && !(1..=9).contains(&n)
    {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("dose_number"),
            Some(Reason::OutOfRange(1, 9)),
        );
    }
    let rec = match recorder(&state, &auth).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let input = RecordInput {
        ticket,
        administered_on: date,
        product_code,
        lot,
        expected_dose: r.dose_number,
        key,
    };
    match recording::record(&state, &rec, input).await {
        Ok(Ok(d)) => {
            let status = if d.replayed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            HttpResponse::build(status).json(recorded_body(&d))
        }
        Ok(Err(e)) => refusal(e),
        Err(e) => internal(e),
    }
}
