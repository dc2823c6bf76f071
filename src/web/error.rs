use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

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
    #[error("service unavailable: {0}")]
    Unavailable(String),
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
            AppError::Unavailable(_) => "unavailable",
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
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body is filled in by the frame, which knows the language and
    /// the request id.
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).finish()
    }
}

impl From<crate::db::DbError> for AppError {
    fn from(e: crate::db::DbError) -> Self {
        AppError::Internal(e.to_string())
    }
}

crate::db::from_diesel_via_db_error!(AppError);

impl From<crate::tenancy::TenancyError> for AppError {
    fn from(e: crate::tenancy::TenancyError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<crate::flows::residents::ResidentError> for AppError {
    fn from(e: crate::flows::residents::ResidentError) -> Self {
        use crate::flows::residents::ResidentError;
        match e {
            ResidentError::NotFound => AppError::NotFound,
            other => AppError::Internal(other.to_string()),
        }
    }
}
