//! Finding a resident: by 宛名番号, name (kanji or kana) and birth date,
//! within the staff member's own municipality.

use super::{field_error, staff};
use crate::domain::{AddresseeNumber, BirthDate, PersonName, TicketNumber};
use crate::flows::AppState;
use crate::flows::residents::{self, Resident, Search};
use crate::i18n::T;
use crate::web::{AppError, Authed, Ctx, Nav, in_partition, log_in_scope, render, render_form};
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub struct Row {
    pub id: String,
    pub addressee: String,
    pub name: String,
    pub kana: String,
    pub birth_date: String,
    pub flagged: bool,
    pub protected: bool,
}

impl From<&Resident> for Row {
    fn from(r: &Resident) -> Row {
        Row {
            id: r.id.clone(),
            addressee: r.addressee_number.as_str().into(),
            name: r.name_kanji.as_str().into(),
            kana: r.name_kana.as_str().into(),
            birth_date: r.birth_date.date().to_string(),
            flagged: r.moved_out_on.is_some() || r.deceased_on.is_some(),
            protected: r.address_protected,
        }
    }
}

#[derive(Template)]
#[template(path = "records/search.html")]
struct SearchPage {
    t: T,
    nav: Nav,
    csrf: String,
    addressee: String,
    ticket: String,
    name: String,
    birth: String,
    error: Option<String>,
    searched: bool,
    results: Vec<Row>,
}

#[get("/residents")]
pub(super) async fn search_form(ctx: Ctx, auth: Authed) -> Result<HttpResponse, AppError> {
    staff(&auth)?;
    render(&SearchPage {
        nav: Nav::for_account(&auth, "/residents"),
        csrf: auth.session.csrf_token.clone(),
        addressee: String::new(),
        ticket: String::new(),
        name: String::new(),
        birth: String::new(),
        error: None,
        searched: false,
        results: Vec::new(),
        t: ctx.t,
    })
}

#[derive(Deserialize)]
struct SearchForm {
    csrf: String,
    #[serde(default)]
    addressee: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    birth: String,
}

/// Searches are posted: a name and a birth date do not belong in a URL.
#[post("/residents/search")]
pub(super) async fn search(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    form: web::Form<SearchForm>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    auth.check_csrf(&form.csrf)?;
    let f = form.into_inner();
    let t = &ctx.t;
    let today = crate::clock::now().date();
    // The search is by whichever field was filled in, in this order.
    let by = if !f.addressee.trim().is_empty() {
        "addressee"
    } else if !f.ticket.trim().is_empty() {
        "ticket"
    } else if !f.name.trim().is_empty() || !f.birth.trim().is_empty() {
        "name"
    } else {
        ""
    };
    let query = match by {
        "addressee" => AddresseeNumber::parse(&f.addressee)
            .map(Search::Addressee)
            .map_err(|e| field_error(t, "resident.addressee", e)),
        "ticket" => TicketNumber::parse(&f.ticket)
            .map(Search::Ticket)
            .map_err(|e| field_error(t, "ticket.number", e)),
        "" => Err(t.s("records.search_empty").to_string()),
        _ => match (
            PersonName::parse(&f.name),
            BirthDate::parse(&f.birth, today),
        ) {
            (Ok(n), Ok(birth)) => Ok(Search::NameAndBirth {
                name: n.as_str().to_string(),
                birth,
            }),
            (Err(e), _) => Err(field_error(t, "records.name", e)),
            (_, Err(e)) => Err(field_error(t, "resident.birth_date", e)),
        },
    };
    let (results, error) = match query {
        Ok(q) => {
            let (st, actor) = (state.clone(), auth.actor());
            let found = in_partition(&state, code, move |scope, conn| {
                let found = residents::search(scope, conn, &q)?;
                let ids: Vec<String> = found.iter().map(|r| r.id.clone()).collect();
                log_in_scope(
                    scope,
                    conn,
                    &st.audit,
                    &actor,
                    "resident.search",
                    (!ids.is_empty()).then(|| format!("resident:{}", ids.join(","))),
                    Some(format!("by={by} results={}", ids.len())),
                )?;
                Ok(found)
            })
            .await?;
            (found.iter().map(Row::from).collect(), None)
        }
        Err(msg) => (Vec::new(), Some(msg)),
    };
    let bad = error.is_some();
    let resp = render_form(
        &SearchPage {
            nav: Nav::for_account(&auth, "/residents"),
            csrf: auth.session.csrf_token.clone(),
            addressee: f.addressee,
            ticket: f.ticket,
            name: f.name,
            birth: f.birth,
            searched: !bad,
            error,
            results,
            t: ctx.t,
        },
        bad,
    )?;
    Ok(resp)
}
