//! The operator's national vaccine master: the product lines with their
//! intervals and CVX codes, the lots known per product, and withdrawing a
//! product from the sites' choice.

use super::{AppError, Authed, Ctx, Nav, field_message, render_form, with_db};
use crate::domain::{LotNumber, Role};
use crate::flows::AppState;
use crate::flows::vaccines::{self, ProductForm, ProductLine, VaccineError};
use crate::i18n::T;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(add_lot)
        .service(add_product)
        .service(in_use);
}

#[derive(Template)]
#[template(path = "operator/vaccines.html")]
struct VaccinesPage {
    t: T,
    nav: Nav,
    csrf: String,
    products: Vec<(ProductLine, i64)>,
    product: String,
    lot: String,
    expires: String,
    error: Option<String>,
    added: bool,
    pform: ProductForm,
    perrors: Vec<String>,
}

impl VaccinesPage {
    fn intervals(&self, p: &ProductLine) -> String {
        let (d, m) = (self.t.s("vaccines.days"), self.t.s("vaccines.months"));
        let mut parts = Vec::new();
        if let Some(n) = p.dose2_min_days {
            parts.push(format!("1→2: {n}{d}"));
        }
        if let Some(n) = p.dose3_min_days {
            parts.push(format!("2→3: {n}{d}"));
        }
        parts.push(format!("+: {}{m}", p.booster_min_months));
        parts.join(" / ")
    }
}

#[derive(Deserialize)]
struct ListQuery {
    added: Option<u8>,
}

/// What the page shows besides the list: the lot form as typed with its
/// error, and the product form as typed with its errors.
#[derive(Default)]
struct Forms {
    lot: (String, String, String, Option<String>),
    product: ProductForm,
    product_errors: Vec<String>,
}

async fn page(
    ctx: &Ctx,
    auth: &Authed,
    state: &AppState,
    forms: Forms,
    added: bool,
) -> Result<HttpResponse, AppError> {
    auth.require(&[Role::Operator])?;
    let products = with_db(state, |conn| Ok(vaccines::with_lot_counts(conn)?)).await?;
    let (product, lot, expires, error) = forms.lot;
    let bad = error.is_some() || !forms.product_errors.is_empty();
    let resp = render_form(
        &VaccinesPage {
            nav: Nav::for_account(auth, "/operator/vaccines"),
            csrf: auth.session.csrf_token.clone(),
            products,
            product,
            lot,
            expires,
            error,
            added,
            pform: forms.product,
            perrors: forms.product_errors,
            t: ctx.t.clone(),
        },
        bad,
    )?;
    Ok(resp)
}

/// Runs one change to the master; a refusal (duplicate, unknown product)
/// comes back to be shown beside the form, a database failure is an error.
async fn master_change<F>(state: &AppState, work: F) -> Result<Result<(), VaccineError>, AppError>
where
    F: FnOnce(&mut crate::db::DbConn) -> Result<(), VaccineError> + Send + 'static,
{
    with_db(state, move |conn| match work(conn) {
        Ok(()) => Ok(Ok(())),
        Err(VaccineError::Db(e)) => Err(e.into()),
        Err(e) => Ok(Err(e)),
    })
    .await
}

#[get("/operator/vaccines")]
async fn list(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    page(&ctx, &auth, &state, Forms::default(), q.added == Some(1)).await
}

#[derive(Deserialize)]
struct LotForm {
    csrf: String,
    #[serde(default)]
    product: String,
    #[serde(default)]
    lot: String,
    #[serde(default)]
    expires_on: String,
}

#[post("/operator/vaccines/lots")]
async fn add_lot(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<LotForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf)?;
    auth.require(&[Role::Operator])?;
    let form = form.into_inner();
    let t = &ctx.t;
    let again = |msg: String| {
        let f = Forms {
            lot: (
                form.product.clone(),
                form.lot.clone(),
                form.expires_on.clone(),
                Some(msg),
            ),
            ..Forms::default()
        };
        page(&ctx, &auth, &state, f, false)
    };
    let lot = match LotNumber::parse(&form.lot) {
        Ok(l) => l,
        Err(e) => {
            return again(format!(
                "{}: {}",
                t.s("site.lot"),
                field_message(t, e.reason)
            ))
            .await;
        }
    };
    let expires = match form.expires_on.trim() {
        "" => None,
        s => match crate::domain::parse_date_field("有効期限", s) {
            Ok(d) => Some(d),
            Err(e) => {
                return again(format!(
                    "{}: {}",
                    t.s("vaccines.expires"),
                    field_message(t, e.reason)
                ))
                .await;
            }
        },
    };
    let (st, actor, product) = (state.clone(), auth.actor(), form.product.trim().to_string());
    let done = master_change(&state, move |conn| {
        vaccines::add_lot(conn, &st.audit, &actor, &product, &lot, expires)
    })
    .await?;
    match done {
        Ok(()) => Ok(HttpResponse::SeeOther()
            .insert_header(("location", "/operator/vaccines?added=1"))
            .finish()),
        Err(VaccineError::DuplicateLot) => again(t.s("vaccines.lot_exists").to_string()).await,
        Err(VaccineError::Field(e)) => {
            again(format!(
                "{}: {}",
                t.s("site.product"),
                field_message(t, e.reason)
            ))
            .await
        }
        Err(e) => Err(AppError::failed(e)),
    }
}

#[derive(Deserialize)]
struct InUseForm {
    csrf: String,
    product: String,
    in_use: String,
}

#[post("/operator/vaccines/in-use")]
async fn in_use(
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<InUseForm>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf)?;
    auth.require(&[Role::Operator])?;
    let (st, actor) = (state.clone(), auth.actor());
    let flag = match form.in_use.as_str() {
        "1" => true,
        "0" => false,
        _ => return Err(AppError::BadRequest("in_use".into())),
    };
    let product = form.product.clone();
    let changed = with_db(&state, move |conn| {
        vaccines::set_in_use(conn, &st.audit, &actor, &product, flag).map_err(AppError::failed)
    })
    .await?;
    if !changed {
        return Err(AppError::NotFound);
    }
    Ok(HttpResponse::SeeOther()
        .insert_header(("location", "/operator/vaccines"))
        .finish())
}

#[derive(Deserialize)]
struct NewProduct {
    csrf: String,
    #[serde(flatten)]
    fields: std::collections::HashMap<String, String>,
}

#[post("/operator/vaccines/products")]
async fn add_product(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<NewProduct>,
) -> Result<HttpResponse, AppError> {
    auth.check_csrf(&form.csrf)?;
    auth.require(&[Role::Operator])?;
    let f = |k: &str| form.fields.get(k).cloned().unwrap_or_default();
    let typed = ProductForm {
        product_code: f("product_code"),
        manufacturer_ja: f("manufacturer_ja"),
        manufacturer_en: f("manufacturer_en"),
        product_ja: f("product_ja"),
        product_en: f("product_en"),
        vaccine_type: f("vaccine_type"),
        target: f("target"),
        age_group: f("age_group"),
        cvx: f("cvx"),
        primary_doses: f("primary_doses"),
        dose2_min_days: f("dose2_min_days"),
        dose3_min_days: f("dose3_min_days"),
        booster_min_months: f("booster_min_months"),
    };
    let t = &ctx.t;
    let row = match typed.parse() {
        Ok(row) => row,
        Err(errors) => {
            let msgs = errors
                .into_iter()
                .map(|e| format!("{}: {}", e.field, field_message(t, e.reason)))
                .collect();
            let forms = Forms {
                product: typed,
                product_errors: msgs,
                ..Forms::default()
            };
            return page(&ctx, &auth, &state, forms, false).await;
        }
    };
    let (st, actor) = (state.clone(), auth.actor());
    let done = master_change(&state, move |conn| {
        vaccines::add_product(conn, &st.audit, &actor, &row)
    })
    .await?;
    match done {
        Ok(()) => Ok(HttpResponse::SeeOther()
            .insert_header(("location", "/operator/vaccines"))
            .finish()),
        Err(_) => {
            let forms = Forms {
                product: typed,
                product_errors: vec![t.s("vaccines.product_exists").to_string()],
                ..Forms::default()
            };
            page(&ctx, &auth, &state, forms, false).await
        }
    }
}
