//! Flow 5's pages: issuing a certificate at the window (staff with the
//! certificate permission, on the municipality's LG-WAN terminals), the
//! printable bilingual certificate with its SMART Health Card, the card as
//! a file, revocation, and the public verify page.

mod verify;
use super::{
    AppError, Authed, Ctx, Nav, field_message, in_partition, render, render_form, require_lgwan_for,
};
use crate::audit::Actor;
use crate::domain::{CertificateKind, FieldError, IdDocument, Passport, Permission};
use crate::flows::AppState;
use crate::flows::certificates::{self as flow, Application, CertError, Channel, Issuer, Verdict};
use crate::flows::resident_doses;
use crate::flows::residents::{self, Resident};
use crate::i18n::T;
use crate::shc;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(new_form)
        .service(issue)
        .service(show)
        .service(card_file)
        .service(revoke)
        .service(verify::verify_form)
        .service(verify::verify);
}

impl From<CertError> for AppError {
    fn from(e: CertError) -> Self {
        match e {
            CertError::NotFound => AppError::NotFound,
            other => AppError::failed(other),
        }
    }
}

async fn issuer_staff(
    state: &AppState,
    auth: &Authed,
) -> Result<crate::domain::MunicipalityCode, AppError> {
    require_lgwan_for(state, auth, &[Permission::Certificates]).await
}

/// A 証明書ID from a path: four groups of four hexadecimal digits.
/// Anything else is simply not found.
fn certificate_id(raw: &str) -> Result<String, AppError> {
    let ok = raw.len() == 19
        && raw.split('-').count() == 4
        && raw
            .split('-')
            .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(raw.to_ascii_uppercase())
    } else {
        Err(AppError::NotFound)
    }
}

fn no_store(r: &mut HttpResponse) {
    r.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
}

/// A dose as the form and the certificate list it.
pub struct DoseLine {
    pub number: i32,
    pub date: String,
    pub product_ja: String,
    pub product_en: String,
    pub lot: String,
    pub performer: String,
}

fn dose_lines(doses: &[resident_doses::Dose], performers: &[String]) -> Vec<DoseLine> {
    let catalog = crate::domain::VaccineCatalog::global();
    doses
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let p = catalog.get(&d.product_code);
            DoseLine {
                number: d.dose_number,
                date: d.administered_on.to_string(),
                product_ja: p
                    .map(|p| format!("{} {}", p.manufacturer_ja, p.product_ja))
                    .unwrap_or_else(|| d.product_code.clone()),
                product_en: p
                    .map(|p| format!("{} {}", p.manufacturer_en, p.product_en))
                    .unwrap_or_else(|| d.product_code.clone()),
                lot: d.lot_number.clone().unwrap_or_default(),
                performer: performers.get(i).cloned().unwrap_or_default(),
            }
        })
        .collect()
}

/// What the form shows again after an error.
#[derive(Default)]
struct Typed {
    kind: String,
    applied: bool,
    id_document: String,
    checked_by: String,
    family: String,
    given: String,
    nationality: String,
    number: String,
    other_name: String,
}

#[derive(Template)]
#[template(path = "certificates/new.html")]
struct NewPage {
    t: T,
    nav: Nav,
    csrf: String,
    resident_id: String,
    name: String,
    kana: String,
    birth_date: String,
    doses: Vec<DoseLine>,
    typed: Typed,
    errors: Vec<String>,
    documents: Vec<(&'static str, &'static str)>,
    /// The resident is under a support measure: hand the card over with care.
    protected: bool,
}

struct Person {
    resident: Resident,
    doses: Vec<DoseLine>,
}

/// The resident and the doses a certificate would carry, read for the
/// certificate purpose and logged.
async fn person(
    state: &AppState,
    auth: &Authed,
    code: crate::domain::MunicipalityCode,
    id: String,
) -> Result<Person, AppError> {
    let (st, actor) = (state.clone(), auth.actor());
    in_partition(state, code, move |scope, conn| {
        let resident = residents::get(scope, conn, &id)?.ok_or(AppError::NotFound)?;
        let doses: Vec<_> = resident_doses::of_resident(scope, conn, &id)?
            .into_iter()
            .filter(|d| d.standing == resident_doses::Standing::Valid)
            .collect();
        super::log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "certificate.prepare",
            Some(format!("resident:{id}")),
            Some("purpose=certificate_lookup".into()),
        )?;
        Ok(Person {
            resident,
            doses: dose_lines(&doses, &[]),
        })
    })
    .await
}

fn new_page(
    t: T,
    auth: &Authed,
    p: Person,
    typed: Typed,
    errors: Vec<String>,
) -> Result<HttpResponse, AppError> {
    let bad = !errors.is_empty();
    let mut r = render_form(
        &NewPage {
            nav: Nav::for_account(auth, "/residents/by-number"),
            csrf: auth.session.csrf_token.clone(),
            resident_id: p.resident.id.clone(),
            name: p.resident.name_kanji.as_str().to_string(),
            kana: p.resident.name_kana.as_str().to_string(),
            birth_date: p.resident.birth_date.date().to_string(),
            protected: p.resident.address_protected,
            doses: p.doses,
            typed,
            errors,
            documents: IdDocument::ALL
                .iter()
                .map(|d| (d.code(), d.label_key()))
                .collect(),
            t,
        },
        bad,
    )?;
    no_store(&mut r);
    Ok(r)
}

#[derive(Deserialize)]
struct FromQuery {
    /// A revoked certificate to reissue: its type and passport details
    /// fill the form.
    from: Option<String>,
}

#[get("/residents/{id}/certificates/new")]
async fn new_form(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<FromQuery>,
) -> Result<HttpResponse, AppError> {
    let code = issuer_staff(&state, &auth).await?;
    let id = super::path_id(&path)?;
    let mut typed = Typed {
        kind: CertificateKind::Domestic.code().into(),
        checked_by: auth.account.display_name.clone(),
        ..Typed::default()
    };
    if let Some(from) = q.from.as_deref().map(certificate_id).transpose()? {
        let rid = id.clone();
        let old = in_partition(&state, code, move |scope, conn| {
            let o = flow::open(scope, conn, &from)?;
            Ok((o.certificate.resident_id == rid).then_some(o))
        })
        .await?
        .ok_or(AppError::NotFound)?;
        typed.kind = old.certificate.kind.clone();
        if let Some(p) = old.passport {
            typed.family = p.family.as_str().into();
            typed.given = p.given.as_str().into();
            typed.nationality = p.nationality.as_str().into();
            typed.number = p.number.as_str().into();
            typed.other_name = p
                .other_name
                .map(|n| n.as_str().to_string())
                .unwrap_or_default();
        }
    }
    let p = person(&state, &auth, code, id).await?;
    new_page(ctx.t, &auth, p, typed, Vec::new())
}

#[derive(Deserialize)]
struct IssueForm {
    csrf: String,
    #[serde(default)]
    kind: String,
    applied: Option<String>,
    #[serde(default)]
    id_document: String,
    #[serde(default)]
    checked_by: String,
    #[serde(default)]
    family: String,
    #[serde(default)]
    given: String,
    #[serde(default)]
    nationality: String,
    #[serde(default)]
    passport_number: String,
    #[serde(default)]
    other_name: String,
}

fn message(t: &T, e: &FieldError) -> String {
    format!("{}: {}", t.field(e.field), field_message(t, e.reason))
}

#[post("/residents/{id}/certificates")]
async fn issue(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<IssueForm>,
) -> Result<HttpResponse, AppError> {
    let code = issuer_staff(&state, &auth).await?;
    auth.check_csrf(&form.csrf)?;
    let id = super::path_id(&path)?;
    let f = form.into_inner();
    let applied = f.applied.as_deref().is_some_and(|v| !v.is_empty());
    let typed = Typed {
        kind: f.kind.clone(),
        applied,
        id_document: f.id_document.clone(),
        checked_by: f.checked_by.clone(),
        family: f.family.clone(),
        given: f.given.clone(),
        nationality: f.nationality.clone(),
        number: f.passport_number.clone(),
        other_name: f.other_name.clone(),
    };
    let mut errors: Vec<FieldError> = Vec::new();
    let identity = crate::domain::certificate_identity(applied, &f.id_document, &f.checked_by)
        .map_err(|e| errors.extend(e))
        .ok();
    let kind = CertificateKind::parse(&f.kind)
        .map_err(|e| errors.push(e))
        .ok();
    let passport = match kind {
        Some(CertificateKind::Overseas) => Passport::parse(
            &f.family,
            &f.given,
            &f.nationality,
            &f.passport_number,
            &f.other_name,
        )
        .map_err(|e| errors.extend(e))
        .ok(),
        _ => None,
    };
    let t = ctx.t;
    let (Some(identity), Some(kind), true) = (identity, kind, errors.is_empty()) else {
        let msgs = errors.iter().map(|e| message(&t, e)).collect();
        let p = person(&state, &auth, code, id).await?;
        return new_page(t, &auth, p, typed, msgs);
    };
    let (st, actor, account) = (state.clone(), auth.actor(), auth.account.id.clone());
    let rid = id.clone();
    let issued = in_partition(&state, code, move |scope, conn| {
        let signer = crate::flows::issuer::signer(conn, &st.master).map_err(AppError::failed)?;
        let resident = residents::get(scope, conn, &rid)?.ok_or(AppError::NotFound)?;
        let app = Application {
            kind,
            passport,
            channel: Channel::Window,
            identity: Some(identity),
            issued_by: account,
        };
        let issuer = Issuer {
            url: &st.issuer_url,
            signer: &signer,
        };
        match flow::issue(scope, conn, &issuer, &resident, &app, &actor) {
            Ok(i) => Ok(Ok(i.certificate.id)),
            Err(CertError::NoDoses) => Ok(Err("cert.error.no_doses")),
            Err(CertError::TooLarge(_)) => Ok(Err("cert.error.too_large")),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match issued {
        Ok(cert) => Ok(HttpResponse::SeeOther()
            .insert_header(("location", format!("/certificates/{cert}")))
            .finish()),
        Err(key) => {
            let msg = t.s(key).to_string();
            let p = person(&state, &auth, code, id).await?;
            new_page(t, &auth, p, typed, vec![msg])
        }
    }
}

#[derive(Template)]
#[template(path = "certificates/show.html")]
struct ShowPage {
    t: T,
    nav: Nav,
    csrf: String,
    id: String,
    resident_id: String,
    valid: bool,
    kind_ja: &'static str,
    kind_en: &'static str,
    issued_on: String,
    municipality_ja: String,
    municipality_en: String,
    name: String,
    kana: String,
    card_name: String,
    birth_date: String,
    passport: Option<Passport>,
    doses: Vec<DoseLine>,
    qr_svg: String,
    revoked_at: String,
    revoked_reason: String,
    /// Whether this account may open the resident's record page.
    can_open_record: bool,
}

#[get("/certificates/{id}")]
async fn show(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = issuer_staff(&state, &auth).await?;
    let id = certificate_id(&path)?;
    let (st, actor) = (state.clone(), auth.actor());
    let (opened, resident) = in_partition(&state, code, move |scope, conn| {
        let o = flow::open(scope, conn, &id)?;
        let r =
            residents::get(scope, conn, &o.certificate.resident_id)?.ok_or(AppError::NotFound)?;
        super::log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "certificate.view",
            Some(format!("resident:{}", o.certificate.resident_id)),
            Some(format!("certificate={}", o.certificate.id)),
        )?;
        Ok((o, r))
    })
    .await?;
    let qr = shc::qr(&opened.jws).map_err(|e| AppError::Internal(e.into()))?;
    let municipality = crate::domain::Registry::global().get(&code);
    let performers: Vec<String> = opened
        .contents
        .doses
        .iter()
        .map(|d| d.performer.clone())
        .collect();
    let c = &opened.contents;
    let card_name = std::iter::once(c.patient.family.as_str())
        .chain(c.patient.given.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let overseas = opened.certificate.kind == CertificateKind::Overseas.code();
    let mut r = render(&ShowPage {
        nav: Nav::for_account(&auth, "/residents/by-number"),
        csrf: auth.session.csrf_token.clone(),
        id: opened.certificate.id.clone(),
        resident_id: opened.certificate.resident_id.clone(),
        valid: opened.certificate.valid,
        kind_ja: if overseas {
            "新型コロナウイルス感染症予防接種証明書（海外用）"
        } else {
            "新型コロナウイルス感染症予防接種証明書（日本国内用）"
        },
        kind_en: if overseas {
            "Vaccination Certificate for COVID-19 (for overseas use)"
        } else {
            "Vaccination Certificate for COVID-19 (for use in Japan)"
        },
        issued_on: opened.certificate.issued_on.to_string(),
        municipality_ja: municipality
            .map(|m| m.full_name())
            .unwrap_or_else(|| code.to_string()),
        municipality_en: code.to_string(),
        name: resident.name_kanji.as_str().to_string(),
        kana: resident.name_kana.as_str().to_string(),
        card_name,
        birth_date: resident.birth_date.date().to_string(),
        passport: opened.passport.clone(),
        doses: dose_lines(&opened.doses, &performers),
        qr_svg: shc::qr_svg(&qr),
        revoked_at: opened
            .certificate
            .revoked_at
            .map(crate::clock::jst)
            .unwrap_or_default(),
        revoked_reason: opened
            .certificate
            .revoked_reason
            .clone()
            .unwrap_or_default(),
        can_open_record: auth.permissions().contains(&Permission::Residents),
        t: ctx.t,
    })?;
    no_store(&mut r);
    Ok(r)
}

/// The card as a `.smart-health-card` file, for a wallet app.
#[get("/certificates/{id}/card")]
async fn card_file(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = issuer_staff(&state, &auth).await?;
    let id = certificate_id(&path)?;
    let (st, actor) = (state.clone(), auth.actor());
    let opened = in_partition(&state, code, move |scope, conn| {
        let o = flow::open(scope, conn, &id)?;
        super::log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            "certificate.download",
            Some(format!("resident:{}", o.certificate.resident_id)),
            Some(format!("certificate={}", o.certificate.id)),
        )?;
        Ok(o)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(shc::FILE_MEDIA_TYPE)
        .insert_header((
            "content-disposition",
            format!(
                "attachment; filename=\"certificate-{}.smart-health-card\"",
                opened.certificate.id
            ),
        ))
        .insert_header(("cache-control", "no-store"))
        .body(shc::file(&opened.jws)))
}

#[derive(Deserialize)]
struct RevokeForm {
    csrf: String,
    /// The ticked confirmation: a revocation cannot be undone.
    #[serde(default)]
    confirm: String,
}

/// Staff withdraw a certificate issued in error; its card stops verifying.
#[post("/certificates/{id}/revoke")]
async fn revoke(
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, AppError> {
    let code = issuer_staff(&state, &auth).await?;
    auth.check_csrf(&form.csrf)?;
    let id = certificate_id(&path)?;
    if form.confirm.is_empty() {
        return Err(AppError::BadRequest("confirm".into()));
    }
    let actor: Actor = auth.actor();
    let cert = id.clone();
    in_partition(&state, code, move |scope, conn| {
        flow::withdraw(scope, conn, &cert, &actor)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", format!("/certificates/{id}")))
        .finish())
}
