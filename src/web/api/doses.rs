//! Recording through the API: a ticket checked, a dose recorded, under the
//! same rules, idempotency and 要確認 queue as the tablet pages.

use super::*;

pub(super) fn recorder(auth: &Authed) -> Result<Result<RecorderCtx, Refusal>, AppError> {
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

pub(super) fn refusal(e: DoseError) -> Refusal {
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
pub(super) async fn as_recorder<I, X, T, R, F>(
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
            Ok(crate::web::outcome(work(conn, &st, &rec, input, read))?.map_err(refusal))
        },
    )
    .await
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
pub(super) async fn check_ticket(
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

pub(super) fn recorded_body(d: &Recorded) -> Dose {
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
pub(super) fn record_input(req: &HttpRequest, body: &[u8]) -> Result<RecordInput, Refusal> {
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
        && crate::domain::DoseNumber::new(n).is_none()
    {
        return Err(
            Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField)
                .field("dose_number")
                .reason(Reason::OutOfRange(1, crate::domain::DoseNumber::MAX)),
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
pub(super) async fn record_dose(
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
