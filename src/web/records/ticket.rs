//! A resident's ticket: reissue (the old one stops working) and the
//! printable sheet.

use super::detail::detail_page;
use super::{back, change, field_error, posted, staff};
use crate::domain::ChangeReason;
use crate::flows::AppState;
use crate::flows::residents;
use crate::flows::tickets::{self, ReissueReason};
use crate::web::sheets::{SheetPage, into_sheets};
use crate::web::{AppError, Authed, Ctx, in_partition, log_in_scope, path_id, render};
use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;

#[derive(Deserialize)]
struct ReissueForm {
    csrf: String,
    why: String,
    reason: String,
}

#[post("/residents/{id}/reissue")]
pub(super) async fn reissue(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
    form: web::Form<ReissueForm>,
) -> Result<HttpResponse, AppError> {
    let (code, id) = posted(&auth, &path, &form.csrf)?;
    let why = ReissueReason::parse(&form.why).ok_or_else(|| AppError::BadRequest("why".into()))?;
    let note = match ChangeReason::parse(&form.reason) {
        Ok(r) => r,
        Err(e) => {
            let m = field_error(&ctx.t, "records.reason", e);
            return detail_page(ctx, &auth, &state, code, id, Some(m), None).await;
        }
    };
    let issued = change(
        &state,
        &auth,
        code,
        &id,
        "ticket.reissue",
        move |s, c, rid, account| match tickets::reissue(s, c, rid, why, &note, account) {
            Ok(n) => Ok((None, format!("why={} ticket={}", why.code(), n.as_str()))),
            Err(residents::ResidentError::Flagged) => Ok((
                Some("records.flagged_no_ticket"),
                format!("why={} refused=flagged", why.code()),
            )),
            Err(residents::ResidentError::TicketFromRunningImport) => Ok((
                Some("records.ticket_from_running_import"),
                format!("why={} refused=import_running", why.code()),
            )),
            Err(e) => Err(e.into()),
        },
    )
    .await?;
    if let Some(refusal) = issued {
        let m = ctx.t.s(refusal).to_string();
        return detail_page(ctx, &auth, &state, code, id, Some(m), None).await;
    }
    Ok(back(&id, "reissued"))
}

#[get("/residents/{id}/ticket")]
pub(super) async fn ticket_sheet(
    ctx: Ctx,
    auth: Authed,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = staff(&auth)?;
    let id = path_id(&path)?;
    let (st, actor, rid) = (state.clone(), auth.actor(), id.clone());
    let label = in_partition(&state, code, move |scope, conn| {
        let label = tickets::label_of_resident(scope, conn, &rid)?;
        if let Some(l) = &label {
            log_in_scope(
                scope,
                conn,
                &st.audit,
                &actor,
                "ticket.print",
                Some(format!("resident:{rid}")),
                Some(format!("ticket={}", l.ticket)),
            )?;
        }
        Ok(label)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    render(&SheetPage {
        t: ctx.t,
        sheets: into_sheets(vec![label]),
        back_href: format!("/residents/{id}"),
        prev_href: None,
        next_href: None,
        position: String::new(),
    })
}
