use crate::db::DbCause;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// How long a person (or a machine client) is asked to wait before sending
/// again what met a busy database (the `Retry-After` of its answer).
pub const BUSY_RETRY_AFTER_SECS: u32 = 5;

/// What a busy database is called, in both languages, for machine clients.
pub(super) fn busy_messages() -> (&'static str, &'static str) {
    use crate::i18n::{Lang, T};
    (
        T::new(Lang::Ja, "/").s("error.busy.message"),
        T::new(Lang::En, "/").s("error.busy.message"),
    )
}

/// Closed set of error kinds. The person sees a calm page with a request id
/// (rendered by the frame); the cause goes to the log only.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("forbidden")]
    Forbidden,
    #[error("login required")]
    LoginRequired,
    #[error("password change required")]
    PasswordChangeRequired,
    #[error("outside the municipality's LG-WAN networks")]
    OutsideLgwan,
    #[error("second factor required")]
    TotpRequired,
    #[error("not found")]
    NotFound,
    /// A body larger than the route accepts.
    #[error("request body too large")]
    TooLarge,
    /// A request line longer than any route accepts.
    #[error("request address too long")]
    UriTooLong,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The database was too busy to answer in time: another write held it
    /// past our wait, or no connection came free. Nothing was changed, and
    /// the same request a moment later succeeds.
    #[error("busy: {0}")]
    Busy(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// A stable code for machine clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Forbidden => "forbidden",
            AppError::LoginRequired => "login_required",
            AppError::PasswordChangeRequired => "password_change_required",
            AppError::OutsideLgwan => "outside_lgwan",
            AppError::TotpRequired => "second_factor_required",
            AppError::NotFound => "not_found",
            AppError::TooLarge => "too_large",
            AppError::UriTooLong => "uri_too_long",
            AppError::Unavailable(_) => "unavailable",
            AppError::Busy(_) => "busy",
            AppError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::LoginRequired => StatusCode::UNAUTHORIZED,
            AppError::PasswordChangeRequired | AppError::OutsideLgwan | AppError::TotpRequired => {
                StatusCode::FORBIDDEN
            }
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UriTooLong => StatusCode::URI_TOO_LONG,
            AppError::Unavailable(_) | AppError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body is filled in by the frame, which knows the language and
    /// the request id.
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).finish()
    }
}

impl AppError {
    /// What a request that a flow could not complete is answered: busy when
    /// the database was (see `DbError::is_busy`), otherwise a fault.
    pub fn failed(e: impl DbCause + std::fmt::Display) -> AppError {
        if e.is_busy() {
            AppError::Busy(e.to_string())
        } else {
            AppError::Internal(e.to_string())
        }
    }
}

impl From<crate::db::DbError> for AppError {
    fn from(e: crate::db::DbError) -> Self {
        AppError::failed(e)
    }
}

crate::db::from_diesel_via_db_error!(AppError);

impl From<crate::tenancy::TenancyError> for AppError {
    fn from(e: crate::tenancy::TenancyError) -> Self {
        AppError::failed(e)
    }
}

impl From<crate::flows::residents::ResidentError> for AppError {
    fn from(e: crate::flows::residents::ResidentError) -> Self {
        use crate::flows::residents::ResidentError;
        match e {
            ResidentError::NotFound => AppError::NotFound,
            other => AppError::failed(other),
        }
    }
}
