//! Inquiries held for residents under a support measure: the
//! administrators' list, and their decision — approve (the inquiry is
//! answered or sent now) or refuse — with a reason kept in the resident's
//! sealed history.

use crate::domain::ChangeReason;
use crate::flows::AppState;
use crate::flows::transfer::{self, Decided, Held};
use crate::i18n::T;
use crate::web::{
    AppError, Authed, Ctx, Nav, field_message, in_partition, outcome, path_id, render_form,
    see_other, with_db,
};
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

pub struct HeldLine {
    id: String,
    direction: String,
    other: String,
    addressee: String,
    channel: String,
    purpose: String,
    requested: String,
    requester: String,
    waiting: bool,
    status: String,
    decided: String,
}

fn line(t: &T, h: Held) -> HeldLine {
    HeldLine {
        waiting: h.status == "held",
        decided: match (h.decided_by, h.decided_at) {
            (Some(by), Some(at)) => format!("{by} {}", crate::clock::jst(at)),
            _ => String::new(),
        },
        // Who asked about our protected resident is where the person lives
        // now: withheld here as in the disclosure and the log.
        other: if h.direction == "asked" {
            crate::flows::provisions::WITHHELD.to_string()
        } else {
            format!(
                "{} {}",
                h.other,
                crate::flows::provisions::name_of(&h.other)
            )
        },
        addressee: h.addressee.unwrap_or_default(),
        direction: t.code_label("held.direction.", &h.direction),
        channel: t.code_label("provisions.channel.", &h.channel),
        purpose: t.code_label("inquiry_purpose.", &h.purpose),
        requested: crate::clock::jst(h.requested_at),
        requester: h.requester.unwrap_or_default(),
        status: t.code_label("held.status.", &h.status),
        id: h.id,
    }
}

#[derive(Template)]
#[template(path = "transfers/held.html")]
struct HeldPage {
    t: T,
    nav: Nav,
    csrf: String,
    lines: Vec<HeldLine>,
    error: Option<String>,
    done: Option<String>,
}

async fn held_view(
    t: T,
    auth: &Authed,
    state: &AppState,
    error: Option<String>,
    done: Option<String>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    let held = in_partition(state, code, |scope, conn| {
        outcome(transfer::held_list(scope, conn))?.map_err(|_| AppError::NotFound)
    })
    .await?;
    let bad = error.is_some();
    let page = HeldPage {
        nav: Nav::for_account(auth, "/admin/held"),
        csrf: auth.session.csrf_token.clone(),
        lines: held.into_iter().map(|h| line(&t, h)).collect(),
        error,
        done,
        t,
    };
    render_form(&page, bad)
}

#[get("/admin/held")]
pub(super) async fn held_page(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    q: web::Query<crate::web::DoneQuery>,
) -> Result<HttpResponse, AppError> {
    let done = q.into_inner().one_of(&["approved", "refused"]);
    held_view(ctx.t, &auth, &state, None, done).await
}

#[derive(Deserialize)]
pub(super) struct DecisionForm {
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
}

#[post("/admin/held/{id}")]
pub(super) async fn decide(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, AppError> {
    let code = auth.require_admin()?;
    auth.check_csrf(&form.csrf)?;
    let id = path_id(&path)?;
    let t = ctx.t;
    let approve = match form.decision.as_str() {
        "approve" => true,
        "refuse" => false,
        _ => {
            let m = format!(
                "{}: {}",
                t.s("held.decision"),
                field_message(&t, crate::domain::Reason::UnknownChoice)
            );
            return held_view(t, &auth, &state, Some(m), None).await;
        }
    };
    let reason = match ChangeReason::parse(&form.reason) {
        Ok(r) => r,
        Err(e) => {
            let m = format!("{}: {}", t.s("records.reason"), field_message(&t, e.reason));
            return held_view(t, &auth, &state, Some(m), None).await;
        }
    };
    let (st, admin) = (state.clone(), auth.actor());
    let decided = with_db(&state, move |conn| {
        outcome(transfer::decide(
            conn,
            &st.master,
            &st.audit,
            st.transfer.rates,
            &admin,
            code,
            &id,
            approve,
            &reason,
        ))
    })
    .await?;
    match decided {
        Ok(Decided::NotFound) => Err(AppError::NotFound),
        Err(_) => {
            // Sending failed (the asker's hourly limit, a resident no longer
            // held): nothing was decided.
            let m = t.s("held.failed").to_string();
            held_view(t, &auth, &state, Some(m), None).await
        }
        Ok(Decided::AlreadyDecided) => {
            let m = t.s("held.already").to_string();
            held_view(t, &auth, &state, Some(m), None).await
        }
        Ok(Decided::SamePerson) => {
            let m = t.s("held.same_person").to_string();
            held_view(t, &auth, &state, Some(m), None).await
        }
        Ok(Decided::Refused) => Ok(see_other("/admin/held?done=refused")),
        Ok(Decided::Approved { .. }) => Ok(see_other("/admin/held?done=approved")),
    }
}
