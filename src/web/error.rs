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
    /// Not signed in; with why a session ended, for the login page.
    LoginRequired(Option<&'static str>),
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
    Busy(Cause),
    #[error("internal error: {0}")]
    Internal(Cause),
}

/// The error underneath a failed request, kept whole (its own sources
/// too) until the request's log line is written.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

impl AppError {
    /// A stable code for machine clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Forbidden => "forbidden",
            AppError::LoginRequired(_) => "login_required",
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
            AppError::LoginRequired(_) => StatusCode::UNAUTHORIZED,
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
    pub fn failed<E>(e: E) -> AppError
    where
        E: DbCause + std::error::Error + Send + Sync + 'static,
    {
        if e.is_busy() {
            AppError::Busy(Box::new(e))
        } else {
            AppError::Internal(Box::new(e))
        }
    }

    /// The error and each of its sources, for the log: a source whose
    /// text the line already holds (a transparent wrapper) is not repeated.
    pub fn cause_chain(&self) -> String {
        let mut line = self.to_string();
        let mut next = match self {
            AppError::Busy(c) | AppError::Internal(c) => c.source(),
            _ => None,
        };
        while let Some(e) = next {
            let text = e.to_string();
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            next = e.source();
        }
        line
    }
}

impl From<crate::db::DbError> for AppError {
    fn from(e: crate::db::DbError) -> Self {
        AppError::failed(e)
    }
}

crate::db::from_diesel_via_db_error!(AppError);

/// A flow's error is either a refusal the page or the API explains (an
/// unknown ticket, a rate limit) or a fault underneath (the database, a
/// stopped worker), which becomes the request's error.
pub trait FlowError: Sized {
    /// The refusal, or the fault as the request's error.
    fn refusal(self) -> Result<Self, AppError>;
}

impl FlowError for crate::flows::transfer::TransferError {
    fn refusal(self) -> Result<Self, AppError> {
        use crate::flows::transfer::TransferError;
        match self {
            TransferError::Tenancy(e) => Err(e.into()),
            TransferError::Stopped(e) => Err(e.into()),
            refusal => Ok(refusal),
        }
    }
}

impl FlowError for crate::flows::doses::DoseError {
    fn refusal(self) -> Result<Self, AppError> {
        use crate::flows::doses::DoseError;
        match self {
            DoseError::NotOurs => Err(AppError::Forbidden),
            fault if fault.is_fault() => Err(AppError::failed(fault)),
            refusal => Ok(refusal),
        }
    }
}

/// A flow's outcome as a handler takes it: what it did, or its refusal;
/// a fault is the request's error.
pub fn outcome<T, E: FlowError>(r: Result<T, E>) -> Result<Result<T, E>, AppError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e) => e.refusal().map(Err),
    }
}

impl From<crate::flows::Stopped> for AppError {
    fn from(e: crate::flows::Stopped) -> Self {
        AppError::Internal(Box::new(e))
    }
}

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
            ResidentError::AddressProtected => AppError::Forbidden,
            other => AppError::failed(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed query reaches the log with the database's own words, under
    /// the flow's error that carried it.
    #[test]
    fn a_fault_keeps_its_cause_for_the_log() {
        let db = crate::db::DbError::Query(diesel::result::Error::QueryBuilderError(
            "the column set was empty".into(),
        ));
        let e = AppError::from(crate::tenancy::TenancyError::Db(db));
        let AppError::Internal(cause) = &e else {
            panic!("a query error is a fault, not {e:?}");
        };
        assert!(
            cause
                .downcast_ref::<crate::tenancy::TenancyError>()
                .is_some(),
            "the cause is the flow's error itself, not a string"
        );
        assert!(
            e.cause_chain().contains("the column set was empty"),
            "{}",
            e.cause_chain()
        );
    }
}
