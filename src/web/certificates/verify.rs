//! The public verify page: a card's text pasted or read by the camera,
//! checked against the issuer's keys and revocation lists.

use super::*;

/// The public verify page's result.
pub struct Checked {
    pub status: &'static str,
    pub reason_key: &'static str,
    pub name: String,
    pub birth_date: String,
    pub issued: String,
    pub doses: Vec<shc::Immunization>,
}

#[derive(Template)]
#[template(path = "certificates/verify.html")]
struct VerifyPage {
    t: T,
    issuer: String,
    checked: Option<Checked>,
}

pub(super) fn verify_page(
    t: T,
    state: &AppState,
    checked: Option<Checked>,
) -> Result<HttpResponse, AppError> {
    let mut r = render(&VerifyPage {
        issuer: state.issuer_url.clone(),
        checked,
        t,
    })?;
    no_store(&mut r);
    Ok(r)
}

#[get("/verify")]
pub(super) async fn verify_form(
    ctx: Ctx,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    verify_page(ctx.t, &state, None)
}

#[derive(Deserialize)]
struct VerifyForm {
    #[serde(default)]
    card: String,
}

/// Anyone may check a card: no login, nothing stored, nothing logged (the
/// card names a person; the page only shows it back to whoever holds it).
#[post("/verify")]
pub(super) async fn verify(
    ctx: Ctx,
    state: web::Data<AppState>,
    form: web::Form<VerifyForm>,
) -> Result<HttpResponse, AppError> {
    // A card is at most a few thousand characters.
    let text: String = form.card.chars().take(16 * 1024).collect();
    let url = state.issuer_url.clone();
    let verdict =
        crate::web::with_db(&state, move |conn| Ok(flow::verify(conn, &url, &text)?)).await?;
    let shown = |status: &'static str, reason_key: &'static str, c: Option<shc::Contents>| {
        let c = c.as_ref();
        Checked {
            status,
            reason_key,
            name: c
                .map(|c| {
                    std::iter::once(c.patient.family.as_str())
                        .chain(c.patient.given.iter().map(String::as_str))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default(),
            birth_date: c
                .map(|c| c.patient.birth_date.to_string())
                .unwrap_or_default(),
            issued: c
                .and_then(|c| chrono::DateTime::from_timestamp(c.nbf, 0))
                .map(|d| crate::clock::jst(d.naive_utc()))
                .unwrap_or_default(),
            doses: c.map(|c| c.doses.clone()).unwrap_or_default(),
        }
    };
    let checked = match verdict {
        Verdict::Valid(c) => shown("valid", "verify.valid", Some(c)),
        Verdict::Revoked(c) => shown("revoked", "verify.revoked", Some(c)),
        Verdict::Invalid(e) => shown(
            "invalid",
            match e {
                shc::Invalid::NotACard => "verify.not_a_card",
                shc::Invalid::UnknownKey => "verify.unknown_key",
                shc::Invalid::BadSignature => "verify.bad_signature",
                shc::Invalid::BadContents => "verify.bad_contents",
                shc::Invalid::OtherIssuer => "verify.other_issuer",
            },
            None,
        ),
    };
    verify_page(ctx.t, &state, Some(checked))
}
