//! The municipal administrator's screens: accounts (issue with least
//! privilege and an expiry, end, unlock, review, CSV), LG-WAN networks, and
//! the operation log (search, verify, CSV). Every query names the
//! administrator's own municipality; another municipality's ids are not found.

mod accounts;
mod devices;
mod export_requests;
mod log;
mod retention;
mod settings;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(accounts::accounts_page)
        .service(accounts::accounts_csv)
        .service(accounts::new_account_form)
        .service(accounts::create_account)
        .service(accounts::disable_account)
        .service(accounts::unlock_account)
        .service(devices::device_code)
        .service(devices::device_revoke)
        .service(devices::shared_review)
        .service(export_requests::requests_page)
        .service(export_requests::set_required)
        .service(export_requests::decide)
        .service(settings::networks_page)
        .service(settings::add_network)
        .service(settings::remove_network)
        .service(settings::set_security)
        .service(settings::set_channels)
        .service(settings::set_password_rules)
        .service(log::log_page)
        .service(log::log_csv)
        .service(log::record_review)
        .service(log::report_page)
        .service(log::save_settings)
        .service(retention::retention_page)
        .service(retention::save_years)
        .service(retention::retention_csv)
        .service(retention::erase);
}
