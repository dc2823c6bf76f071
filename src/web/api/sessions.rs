//! Signing in and out through the API: a session token for a site's
//! tablet or a municipal system.

use super::*;

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
pub(super) async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
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
    let addr = crate::web::auth::client_addr(&req);
    let st = state.clone();
    let outcome = web::block(move || {
        let typed = accounts::Credentials {
            login: r.login_id.as_deref().unwrap_or_default(),
            password: r.password.as_deref().unwrap_or_default(),
            code: r.totp_code.as_deref().unwrap_or_default(),
            device: r.device_key.as_deref(),
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
pub(super) async fn logout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
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
