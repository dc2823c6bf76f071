//! The machine API (JSON, versioned under /api/v1) for site systems and
//! municipal systems, described by the OpenAPI document it serves. It takes
//! the same checks, idempotency and account rules as the tablet pages, with
//! a bearer token from `POST /api/v1/sessions` instead of a cookie (so no
//! browser can be made to call it cross-site).

mod certificates;
mod document;
mod doses;
mod sessions;
mod transfers;
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
        .service(sessions::login)
        .service(sessions::logout)
        .service(doses::check_ticket)
        .service(doses::record_dose)
        .service(transfers::transfer_inquiry)
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

/// The session alone.
fn session<I>(conn: &mut DbConn, token: &str, _: &I) -> Result<Option<(Live, ())>, DbError> {
    Ok(accounts::resolve(conn, token)?.map(|l| (l, ())))
}

/// The API's name for a field the domain names in Japanese, for every
/// endpoint (the names are the JSON paths of the requests).
pub(super) fn api_field(domain: &str) -> &'static str {
    use crate::domain::certificate_fields as cert;
    use crate::domain::{CertificateKind, Consent, IdDocument, InquiryPurpose, MyNumber, Passport};
    match domain {
        f if f == MyNumber::FIELD => "individual_number",
        f if f == CertificateKind::FIELD => "kind",
        f if f == cert::BIRTH_DATE => "birth_date",
        f if f == cert::MUNICIPALITY => "municipality_code",
        f if f == Passport::FAMILY_FIELD => "passport.family",
        f if f == Passport::GIVEN_FIELD => "passport.given",
        f if f == Passport::OTHER_NAME_FIELD => "passport.other_name",
        f if f == cert::NATIONALITY => "passport.nationality",
        f if f == cert::PASSPORT_NUMBER => "passport.number",
        f if f == crate::domain::SOURCE_FIELD => "source_municipality_code",
        f if f == Consent::FORM_FIELD => "consent.form_received",
        f if f == Consent::CHECKED_BY_FIELD => "consent.checked_by",
        f if f == IdDocument::FIELD => "consent.id_document",
        f if f == InquiryPurpose::FIELD => "purpose",
        _ => "",
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
