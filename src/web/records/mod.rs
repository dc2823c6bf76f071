//! Staff pages over their own residents: search, the record with its
//! tickets, doses and history, corrections with a reason, the moved-out /
//! deceased flags, address protection, ticket reissue and printing. Every
//! read and change leaves a line in the operation log.

mod access;
mod changes;
mod detail;
mod search;
mod ticket;

use super::{AppError, Authed, field_message, in_partition, log_in_scope};
use crate::domain::{FieldError, MunicipalityCode, Permission};
use crate::flows::AppState;
use crate::i18n::T;
use crate::tenancy::Scope;
use actix_web::{HttpResponse, web};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(search::search_form)
        .service(changes::dose_action)
        .service(search::search)
        .service(detail::detail)
        .service(changes::correct)
        .service(changes::flag)
        .service(changes::protection)
        .service(detail::reveal_address)
        .service(ticket::reissue)
        .service(ticket::ticket_sheet)
        .service(access::access_record_page);
}

fn staff(auth: &Authed) -> Result<MunicipalityCode, AppError> {
    auth.require_staff(Permission::Residents)
}

/// A form posted to one resident's record: the staff's municipality and the
/// record's id, once the form's CSRF token is this session's.
fn posted(auth: &Authed, path: &str, csrf: &str) -> Result<(MunicipalityCode, String), AppError> {
    let code = staff(auth)?;
    let id = super::path_id(path)?;
    auth.check_csrf(csrf)?;
    Ok((code, id))
}

/// Whether the account may see a protected resident's address (each view
/// still asks for a reason).
fn sees_protected(auth: &Authed) -> bool {
    auth.permissions().contains(&Permission::ProtectedAddress)
}

fn back(id: &str, done: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", format!("/residents/{id}?done={done}")))
        .finish()
}

/// Runs one change to a record inside the municipality's partition and logs
/// it there, in the same transaction. `work` gets the record's id and the
/// account's id, and returns its result with the log line's detail (to
/// which a protected resident's `protected=1` is added).
async fn change<T, F>(
    state: &AppState,
    auth: &Authed,
    code: MunicipalityCode,
    id: &str,
    action: &'static str,
    work: F,
) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(
            &Scope<'_>,
            &mut crate::db::TenantConn<'_>,
            &str,
            &str,
        ) -> Result<(T, String), AppError>
        + Send
        + 'static,
{
    let (st, actor, account, rid) = (
        state.clone(),
        auth.actor(),
        auth.account.id.clone(),
        id.to_string(),
    );
    in_partition(state, code, move |scope, conn| {
        let protected = |scope: &Scope<'_>, conn: &mut crate::db::TenantConn<'_>| {
            crate::flows::residents::protected_now(scope, conn, &rid)
        };
        let before = protected(scope, conn)?;
        let (out, mut note) = work(scope, conn, &rid, &account)?;
        // A change to a protected resident's record says so in its line,
        // for whoever reviews the log: protected before it (a lifted
        // measure) or after it.
        if before || protected(scope, conn)? {
            note.push_str(" protected=1");
        }
        log_in_scope(
            scope,
            conn,
            &st.audit,
            &actor,
            action,
            Some(format!("resident:{rid}")),
            Some(note),
        )?;
        Ok(out)
    })
    .await
}

/// A field error as the page shows it: the field's label and the reason.
fn field_error(t: &T, label_key: &str, e: FieldError) -> String {
    format!("{}: {}", t.s(label_key), field_message(t, e.reason))
}
