//! Staff pages over residents. For now: finding a resident by individual
//! number, from LG-WAN terminals only, for a stated purpose.

use super::{
    AppError, Authed, Ctx, Nav, field_message, render, render_form, require_lgwan, with_db,
};
use crate::audit::{self, Entry};
use crate::domain::{MyNumber, Permission};
use crate::flows::AppState;
use crate::flows::residents::{self, MyNumberPurpose};
use crate::i18n::T;
use crate::tenancy::Partition;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(lookup_form).service(lookup);
}

pub struct ResidentView {
    pub id: String,
    pub addressee: String,
    pub name: String,
    pub kana: String,
    pub birth_date: String,
    pub number_tail: String,
    pub moved_out: String,
    pub deceased: String,
    pub protected: bool,
}

#[derive(Template)]
#[template(path = "residents/lookup.html")]
struct LookupPage {
    t: T,
    nav: Nav,
    csrf: String,
    purpose: String,
    error: Option<String>,
    searched: bool,
    found: Option<ResidentView>,
    /// Whether this account may open the resident's record page.
    can_open: bool,
    /// Whether this account issues certificates.
    can_certify: bool,
}

#[get("/residents/by-number")]
async fn lookup_form(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    require_lgwan(&state, &auth).await?;
    render(&LookupPage {
        nav: Nav::for_account(&auth, "/residents/by-number"),
        csrf: auth.session.csrf_token.clone(),
        purpose: String::new(),
        error: None,
        searched: false,
        found: None,
        can_open: auth.permissions().contains(&Permission::Residents),
        can_certify: auth.permissions().contains(&Permission::Certificates),
        t: ctx.t,
    })
}

#[derive(Deserialize)]
struct LookupForm {
    csrf: String,
    my_number: String,
    purpose: String,
}

fn parse_purpose(s: &str) -> Option<MyNumberPurpose> {
    [
        MyNumberPurpose::CertificateLookup,
        MyNumberPurpose::TransferInquiry,
        MyNumberPurpose::AnsweringInquiry,
    ]
    .into_iter()
    .find(|p| p.code() == s)
}

/// The number is posted, never put in a URL; on an error the field comes
/// back empty so the page never echoes it.
#[post("/residents/by-number")]
async fn lookup(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<LookupForm>,
) -> Result<HttpResponse, AppError> {
    let code = require_lgwan(&state, &auth).await?;
    auth.check_csrf(&form.csrf)?;
    let form = form.into_inner();
    let page = |t: T, error: Option<String>, searched: bool, found: Option<ResidentView>| {
        let bad = error.is_some();
        let r = render_form(
            &LookupPage {
                nav: Nav::for_account(&auth, "/residents/by-number"),
                csrf: auth.session.csrf_token.clone(),
                purpose: form.purpose.clone(),
                error,
                searched,
                found,
                can_open: auth.permissions().contains(&Permission::Residents),
                can_certify: auth.permissions().contains(&Permission::Certificates),
                t,
            },
            bad,
        )?;
        Ok::<_, AppError>(r)
    };
    let Some(purpose) = parse_purpose(&form.purpose) else {
        let msg = ctx.t.s("lookup.purpose_required").to_string();
        return page(ctx.t, Some(msg), false, None);
    };
    let number = match MyNumber::parse(&form.my_number) {
        Ok(n) => n,
        Err(e) => {
            let msg = format!(
                "{}: {}",
                ctx.t.s("lookup.number"),
                field_message(&ctx.t, e.reason)
            );
            return page(ctx.t, Some(msg), false, None);
        }
    };
    let (st, actor) = (state.clone(), auth.actor());
    let found = with_db(&state, move |conn| {
        let partition = Partition::open(conn, &st.master, code).map_err(AppError::failed)?;
        let found = partition
            .run(conn, |s, c| {
                residents::find_by_my_number(s, c, &number, purpose)
            })
            .map_err(AppError::failed)?;
        audit::record(
            conn,
            &st.audit,
            &actor,
            Entry {
                chain: code.as_str(),
                action: "resident.lookup_by_number",
                target: found.as_ref().map(|r| format!("resident:{}", r.id)),
                outcome: if found.is_some() { "ok" } else { "no_match" },
                detail: Some(format!("purpose={}", purpose.code())),
            },
        )?;
        Ok(found.map(|r| {
            let digits = r
                .my_number
                .as_ref()
                .map(|n| n.expose_digits())
                .unwrap_or([b'*'; 12]);
            ResidentView {
                id: r.id.clone(),
                addressee: r.addressee_number.as_str().to_string(),
                name: r.name_kanji.as_str().to_string(),
                kana: r.name_kana.as_str().to_string(),
                birth_date: r.birth_date.date().to_string(),
                number_tail: format!("********{}", String::from_utf8_lossy(&digits[8..])),
                moved_out: r.moved_out_on.map(|d| d.to_string()).unwrap_or_default(),
                deceased: r.deceased_on.map(|d| d.to_string()).unwrap_or_default(),
                protected: r.address_protected,
            }
        }))
    })
    .await?;
    page(ctx.t, None, true, found)
}
