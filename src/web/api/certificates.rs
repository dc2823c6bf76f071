//! Flow 5 for machine clients: the citizen app's backend and the kiosk
//! issuance centre ask for a certificate for a person identified by the
//! individual number and birth date read from their card (F18, F19). Each
//! client is registered by the operator and authenticates with its own
//! secret; only municipalities that enabled the client's channel answer.
//! Nothing of the request is kept but the issued certificate's record and
//! the operation-log lines.

use super::wire::{BadJson, Busy, CertificateRequest, IssuedCertificate, NoMatch, TooLarge};
use super::{ApiError, ErrorCode, Refusal, api_field, field_error, internal, parse_json};
use crate::audit::{self, Actor, Entry};
use crate::domain::{CertificateKind, MunicipalityCode, MyNumber, Passport};
use crate::flows::AppState;
use crate::flows::certificates::{self as flow, CertError, ChannelRequest, Issuer};
use crate::shc;
use crate::tenancy::Partition;
use crate::web::{AppError, with_db};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};

fn parse(r: CertificateRequest) -> Result<(MunicipalityCode, ChannelRequest), Refusal> {
    use crate::domain::certificate_fields as f;
    let bad = |e: crate::domain::FieldError| field_error(api_field(e.field), e);
    let code = MunicipalityCode::parse(r.municipality_code.as_deref().unwrap_or_default())
        .map_err(|e| {
            bad(crate::domain::FieldError {
                field: f::MUNICIPALITY,
                reason: e.reason,
            })
        })?;
    let number =
        MyNumber::parse(r.individual_number.as_deref().unwrap_or_default()).map_err(bad)?;
    let birth_date =
        crate::domain::parse_date_field(f::BIRTH_DATE, r.birth_date.as_deref().unwrap_or_default())
            .map_err(bad)?;
    let kind = CertificateKind::parse(r.kind.as_deref().unwrap_or("domestic")).map_err(bad)?;
    let passport = match kind {
        CertificateKind::Domestic => None,
        CertificateKind::Overseas => {
            let p = r.passport.unwrap_or_default();
            let v = |o: &Option<String>| o.clone().unwrap_or_default();
            Some(
                Passport::parse(
                    &v(&p.family),
                    &v(&p.given),
                    &v(&p.nationality),
                    &v(&p.number),
                    &v(&p.other_name),
                )
                .map_err(|errors| match errors.into_iter().next() {
                    Some(e) => bad(e),
                    None => Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField),
                })?,
            )
        }
    };
    Ok((
        code,
        ChannelRequest {
            number,
            birth_date,
            kind,
            passport,
        },
    ))
}

fn secret_of(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

enum Outcome {
    Issued(Box<flow::Issued>),
    NoMatch,
    Refused(Refusal),
}

/// A refused request's line in the platform's log (no municipality has
/// answered it yet).
fn refused(
    conn: &mut crate::db::DbConn,
    key: &audit::AuditKey,
    actor: &Actor,
    detail: String,
) -> Result<(), crate::db::DbError> {
    audit::record(
        conn,
        key,
        actor,
        Entry {
            chain: audit::PLATFORM_CHAIN,
            action: "certificate.channel",
            target: None,
            outcome: "refused",
            detail: Some(detail),
        },
    )
}

/// Issue a vaccination certificate to a person through an app or kiosk channel (電子交付・コンビニ交付)
///
/// For registered channel clients only (a citizen app's backend, the kiosk
/// issuance centre). The person is found by individual number and birth
/// date in the named municipality, which must have enabled the client's
/// channel. Nothing of the request is stored beyond the issued
/// certificate's record; every request, refusal and issue is in the
/// operation log, never with the individual number.
#[utoipa::path(
    tag = "certificate channels",
    security(("channelClient" = [])),
    request_body = CertificateRequest,
    responses(
        (status = 201, description = "The certificate was issued.", body = IssuedCertificate),
        (status = 400, response = BadJson),
        (status = 401, description = "`unknown_client`: no, an unknown or a revoked secret", body = ApiError),
        (status = 403, description = "`outside_network` (the client calls from outside the networks registered for it; a kiosk centre must call over LG-WAN), `channel_not_enabled` (the municipality does not answer this channel, or is not on the platform)", body = ApiError),
        (status = 404, description = "No resident with this number and birth date: one answer whatever the cause.", body = NoMatch),
        (status = 413, response = TooLarge),
        (status = 422, description = "`invalid_field` naming the field (`passport.*` for an overseas certificate), or `no_valid_doses`", body = ApiError),
        (status = 503, response = Busy),
    ),
)]
#[post("/api/v1/certificates")]
pub async fn request_certificate(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let unauthorized = || Refusal::new(StatusCode::UNAUTHORIZED, ErrorCode::UnknownClient);
    let Some(secret) = secret_of(&req) else {
        return unauthorized().response();
    };
    let (addr, ip) = (
        crate::web::auth::client_addr(&req),
        crate::web::auth::client_ip(&req),
    );
    let input = parse_json::<CertificateRequest>(&body).and_then(parse);
    let st = state.clone();
    let outcome = with_db(&state, move |conn| {
        let Some((client, channel)) = flow::authenticate_client(conn, &secret)? else {
            let actor = Actor {
                account_id: None,
                login_id: None,
                client_addr: Some(addr),
            };
            refused(conn, &st.audit, &actor, "reason=unknown_client".to_string())?;
            return Ok(Outcome::Refused(unauthorized()));
        };
        let actor = Actor {
            account_id: None,
            login_id: Some(format!("channel_client:{}", client.id)),
            client_addr: Some(addr),
        };
        if !client.may_call_from(ip) {
            refused(
                conn,
                &st.audit,
                &actor,
                format!("client={} reason=network", client.id),
            )?;
            return Ok(Outcome::Refused(Refusal::new(
                StatusCode::FORBIDDEN,
                ErrorCode::OutsideNetwork,
            )));
        }
        let (code, request) = match input {
            Ok(v) => v,
            Err(r) => return Ok(Outcome::Refused(r)),
        };
        let closed = || Refusal::new(StatusCode::FORBIDDEN, ErrorCode::ChannelNotEnabled);
        let Some(settings) = crate::flows::municipalities::served(conn, code)? else {
            refused(
                conn,
                &st.audit,
                &actor,
                format!(
                    "channel={} client={} municipality={code} reason=not_a_tenant",
                    channel.code(),
                    client.id
                ),
            )?;
            return Ok(Outcome::Refused(closed()));
        };
        let enabled = settings.channels;
        let signer = crate::flows::issuer::signer(conn, &st.master).map_err(AppError::failed)?;
        let partition = Partition::open(conn, &st.master, code)?;
        let issuer = Issuer {
            url: &st.issuer_url,
            signer: &signer,
        };
        let issued = partition.run(conn, |scope, conn| {
            let caller = flow::ChannelCaller {
                channel,
                client_id: &client.id,
                enabled: &enabled,
            };
            let r = flow::issue_by_channel(scope, conn, &issuer, &caller, &request, &actor);
            match r {
                // The refusal is logged; it must commit, so it is no error here.
                Err(CertError::ChannelClosed) => Ok(Err(closed())),
                Err(CertError::NoDoses) => Ok(Err(Refusal::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::NoValidDoses,
                ))),
                Err(e) => Err(e),
                Ok(v) => Ok(Ok(v)),
            }
        });
        Ok(match issued.map_err(AppError::from)? {
            Ok(Some(i)) => Outcome::Issued(Box::new(i)),
            Ok(None) => Outcome::NoMatch,
            Err(r) => Outcome::Refused(r),
        })
    })
    .await;
    match outcome {
        Ok(Outcome::Issued(i)) => HttpResponse::Created()
            .insert_header(("cache-control", "no-store"))
            .json(IssuedCertificate {
                certificate_id: i.certificate.id.clone(),
                issued_on: i.certificate.issued_on.to_string(),
                kind: i.certificate.kind.clone(),
                qr_text: shc::numeric(&i.jws),
                verifiable_credential: vec![i.jws],
            }),
        Ok(Outcome::NoMatch) => HttpResponse::NotFound().json(NoMatch::NoMatch),
        Ok(Outcome::Refused(r)) => r.response(),
        Err(e) => internal(e).response(),
    }
}
