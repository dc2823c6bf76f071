//! A resident's access record, printable as the answer to their
//! disclosure request (開示請求): who looked at, printed, exported,
//! corrected, provided or received the record, when and why.

use super::*;
use crate::flows::access_record::{self, Who, Why};
use crate::web::transfers::provision_records::ProvisionLine;
use crate::web::{Ctx, Nav, path_id, render, with_db};
use actix_web::get;
use askama::Template;

pub(super) struct AccessLine {
    at: String,
    who: String,
    what: String,
    why: String,
    outcome: String,
}

#[derive(Template)]
#[template(path = "records/access_record.html")]
struct AccessPage {
    t: T,
    nav: Nav,
    resident_id: String,
    addressee: String,
    municipality: String,
    produced: String,
    names: bool,
    lines: Vec<AccessLine>,
    provisions: Vec<ProvisionLine>,
}

#[get("/residents/{id}/access-record")]
pub(super) async fn access_record_page(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_staff(Permission::Disclosure)?;
    let id = path_id(&path)?;
    let st = state.clone();
    let settings = with_db(&state, move |conn| {
        // Lines still waiting to be chained belong on the record too.
        crate::audit::flush_chain(conn, &st.audit, code.as_str())?;
        Ok((
            crate::flows::log_review::settings(conn, code)?,
            crate::flows::accounts::of_municipality(conn, code)?,
        ))
    })
    .await?;
    let (settings, accounts) = settings;
    let names = settings.access_record_names;
    let (st, actor, rid) = (state.clone(), auth.actor(), id.clone());
    let record = in_partition(&state, code, move |scope, conn| {
        Ok(access_record::produce(
            scope, conn, &st.audit, &actor, &rid, names,
        )?)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    let t = ctx.t;
    let office = format!(
        "{} {}",
        crate::flows::provisions::name_of(code.as_str()),
        t.s("access.office")
    );
    // Staff of the asking municipality are not named: the provision
    // record says which municipality asked (or that it is withheld).
    let elsewhere = t.s("access.elsewhere").to_string();
    let name_of = |login: &str| {
        accounts.iter().find(|a| a.login_id == login).map_or_else(
            || elsewhere.clone(),
            |a| format!("{}（{}）", a.display_name, a.login_id),
        )
    };
    let lines = record
        .accesses
        .iter()
        .map(|a| AccessLine {
            at: crate::clock::jst(a.at),
            who: match &a.who {
                Who::Login(l) => name_of(l),
                Who::Office => office.clone(),
            },
            what: t.code_label("log.action.", &a.action),
            why: match &a.why {
                Why::Purpose(p) => {
                    let label = t.code_label("purpose.", p);
                    if label == *p {
                        t.code_label("inquiry_purpose.", p)
                    } else {
                        label
                    }
                }
                Why::Reissue(w) => format!(
                    "{}: {}",
                    t.s("ticket.reissue_why"),
                    t.code_label("ticket.why.", w)
                ),
                Why::Stated(r) => r.clone(),
                Why::NotRecorded => t.s("access.why_none").to_string(),
            },
            outcome: t.code_label("log.outcome.", &a.outcome),
        })
        .collect();
    render(&AccessPage {
        nav: Nav::for_account(&auth, "/residents"),
        resident_id: id,
        addressee: record.addressee,
        municipality: format!(
            "{code} {}",
            crate::flows::provisions::name_of(code.as_str())
        ),
        produced: crate::clock::jst(crate::clock::now()),
        names,
        lines,
        provisions: record
            .provisions
            .iter()
            .map(|p| ProvisionLine::of(p, &t))
            .collect(),
        t,
    })
}
