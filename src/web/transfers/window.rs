//! The window inquiry: one person at the counter, their number typed twice,
//! asked of their former municipality and answered no sooner than the floor.

use super::inquirer;
use crate::domain::{
    IdDocument, InquiryFields, InquiryPurpose, Permission, Registry, parse_inquiry,
};
use crate::flows::AppState;
use crate::flows::provisions;
use crate::flows::transfer::{self, Answer, Channel, Inquiry, TransferError};
use crate::i18n::T;
use crate::web::{AppError, Authed, Ctx, Nav, field_message, outcome, render, with_db};
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;
use std::sync::OnceLock;

/// A municipality that can be asked, for the source field's suggestions.
pub struct SourceOption {
    pub code: String,
    pub name: String,
}

fn source_options() -> &'static [SourceOption] {
    static OPTIONS: OnceLock<Vec<SourceOption>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        Registry::global()
            .all()
            .filter(|m| m.can_be_tenant())
            .map(|m| SourceOption {
                code: m.code.to_string(),
                name: m.full_name(),
            })
            .collect()
    })
}

/// What the form shows again after an error — never the number.
#[derive(Default)]
struct Typed {
    source: String,
    consent: bool,
    id_document: String,
    checked_by: String,
    purpose: String,
}

#[derive(Template)]
#[template(path = "transfers/form.html")]
struct FormPage {
    t: T,
    nav: Nav,
    csrf: String,
    typed: Typed,
    errors: Vec<String>,
    options: &'static [SourceOption],
    documents: Vec<(&'static str, &'static str)>,
    purposes: Vec<(&'static str, &'static str)>,
}

fn form_page(
    t: T,
    auth: &Authed,
    typed: Typed,
    errors: Vec<String>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, AppError> {
    let mut r = render(&FormPage {
        nav: Nav::for_account(auth, "/transfers"),
        csrf: auth.session.csrf_token.clone(),
        typed,
        errors,
        options: source_options(),
        documents: IdDocument::ALL
            .iter()
            .map(|d| (d.code(), d.label_key()))
            .collect(),
        purposes: InquiryPurpose::ALL
            .iter()
            .map(|p| (p.code(), p.label_key()))
            .collect(),
        t,
    })?;
    *r.status_mut() = status;
    r.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

#[get("/transfers")]
pub(super) async fn form_get(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    inquirer(&state, &auth).await?;
    let typed = Typed {
        checked_by: auth.account.display_name.clone(),
        purpose: InquiryPurpose::TicketIssuance.code().into(),
        ..Typed::default()
    };
    form_page(
        ctx.t,
        &auth,
        typed,
        Vec::new(),
        actix_web::http::StatusCode::OK,
    )
}

#[derive(Deserialize)]
struct InquiryForm {
    csrf: String,
    #[serde(default)]
    my_number: String,
    #[serde(default)]
    my_number_again: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    consent: String,
    #[serde(default)]
    id_document: String,
    #[serde(default)]
    checked_by: String,
    #[serde(default)]
    purpose: String,
}

pub struct DoseLine {
    pub dose_number: i32,
    pub date: String,
    pub product: String,
    pub lot: String,
    pub site: String,
    pub site_municipality: String,
}

#[derive(Template)]
#[template(path = "transfers/result.html")]
struct ResultPage {
    t: T,
    nav: Nav,
    matched: bool,
    /// Our own resident is under a support measure: the inquiry waits for
    /// an administrator.
    held: bool,
    resident_id: String,
    source_name: String,
    doses: Vec<DoseLine>,
    newly_copied: usize,
    can_open: bool,
}

#[post("/transfers")]
pub(super) async fn inquire(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<InquiryForm>,
) -> Result<HttpResponse, AppError> {
    let started = std::time::Instant::now();
    let code = inquirer(&state, &auth).await?;
    auth.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let typed = Typed {
        source: f.source.clone(),
        consent: f.consent == "1",
        id_document: f.id_document.clone(),
        checked_by: f.checked_by.clone(),
        purpose: f.purpose.clone(),
    };
    let parsed = parse_inquiry(
        code,
        &InquiryFields {
            number: &f.my_number,
            again: Some(&f.my_number_again),
            source: &f.source,
            consent: f.consent == "1",
            id_document: &f.id_document,
            checked_by: &f.checked_by,
            purpose: &f.purpose,
        },
    );
    let t = ctx.t;
    let p = match parsed {
        Ok(p) => p,
        Err(errors) => {
            let errors = errors
                .into_iter()
                .map(|e| format!("{}: {}", t.field(e.field), field_message(&t, e.reason)))
                .collect();
            return form_page(
                t,
                &auth,
                typed,
                errors,
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let source = p.source;
    let inquiry = Inquiry {
        asking: code,
        source,
        number: p.number,
        consent: p.consent,
        purpose: p.purpose,
        channel: Channel::Window,
    };
    let answer = outcome(transfer::inquire_held(&state, auth.actor(), inquiry, started).await)?;
    let refused = |key: &str, status| {
        let msg = t.s(key).to_string();
        form_page(
            t.clone(),
            &auth,
            Typed {
                source: String::new(),
                ..typed
            },
            vec![msg],
            status,
        )
    };
    match answer {
        Err(TransferError::NotResident) => refused(
            "transfer.not_resident",
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(_) => refused(
            "transfer.rate_limited",
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        ),
        Ok(answer) => {
            let lines = match &answer {
                Answer::Matched { doses, .. } => dose_lines(&state, doses.clone()).await?,
                Answer::NoMatch | Answer::Held => Vec::new(),
            };
            let held = answer == Answer::Held;
            let (matched, resident_id, newly_copied) = match answer {
                Answer::Matched {
                    resident_id,
                    newly_copied,
                    ..
                } => (true, resident_id, newly_copied),
                Answer::NoMatch | Answer::Held => (false, String::new(), 0),
            };
            let mut r = render(&ResultPage {
                nav: Nav::for_account(&auth, "/transfers"),
                matched,
                held,
                source_name: if matched {
                    provisions::name_of(source.as_str())
                } else {
                    String::new()
                },
                resident_id,
                doses: lines,
                newly_copied,
                can_open: auth.permissions().contains(&Permission::Residents),
                t,
            })?;
            r.headers_mut().insert(
                actix_web::http::header::CACHE_CONTROL,
                actix_web::http::header::HeaderValue::from_static("no-store"),
            );
            Ok(r)
        }
    }
}

/// Doses as the result page lists them, with product names.
async fn dose_lines(
    state: &AppState,
    doses: Vec<crate::flows::resident_doses::Dose>,
) -> Result<Vec<DoseLine>, AppError> {
    with_db(state, move |conn| {
        let master = crate::flows::vaccines::Master::load(conn)?;
        Ok(doses
            .into_iter()
            .map(|d| DoseLine {
                dose_number: d.dose_number,
                date: d.administered_on.to_string(),
                product: master
                    .get(&d.product_code)
                    .map(|p| p.product_ja.clone())
                    .unwrap_or(d.product_code),
                lot: d.lot_number.unwrap_or_default(),
                site: d.site_name.unwrap_or_default(),
                site_municipality: d
                    .site_municipality_code
                    .map(|c| provisions::name_of(&c))
                    .unwrap_or_default(),
            })
            .collect())
    })
    .await
}
