//! A transfer inquiry through the API, under the window's rules.

use super::*;

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
        (status = 202, description = "`held`: the person is this municipality's own resident under a support measure; the inquiry waits for an administrator's approval.", body = TransferAnswer),
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
pub(super) async fn transfer_inquiry(
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
    match crate::web::outcome(transfer::inquire_held(&state, actor, inquiry, started).await) {
        Ok(Ok(Answer::NoMatch)) => HttpResponse::Ok().json(TransferAnswer::NoMatch),
        Ok(Ok(Answer::Held)) => HttpResponse::Accepted().json(TransferAnswer::Held),
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
