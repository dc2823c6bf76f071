//! Flow 4's pages: the window inquiry (one person), the bulk inquiry (a file
//! of movers, as a background job), and the provision records about a
//! resident. The inquiry pages take individual numbers: staff with the
//! inquiry permission, on the municipality's LG-WAN terminals only.

mod bulk;
mod held;
pub(crate) mod provision_records;
mod window;

use super::{AppError, Authed, require_lgwan_for};
use crate::domain::{MunicipalityCode, Permission};
use crate::flows::AppState;
use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(window::form_get)
        .service(window::inquire)
        .service(bulk::bulk_index)
        .service(bulk::bulk_upload)
        .service(bulk::bulk_show)
        .service(bulk::bulk_status)
        .service(bulk::bulk_result)
        .service(provision_records::provisions_page)
        .service(provision_records::provisions_csv)
        .service(provision_records::close_notice)
        .service(held::held_page)
        .service(held::decide);
}

/// An inquiry sends an individual number to another municipality: staff
/// holding both the inquiry and the individual-number permission.
async fn inquirer(state: &AppState, auth: &Authed) -> Result<MunicipalityCode, AppError> {
    require_lgwan_for(state, auth, &[Permission::Inquiry, Permission::MyNumber]).await
}
