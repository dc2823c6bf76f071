//! The optional TOTP second factor: enrolment, login with a code, no replay,
//! and a municipality requiring it of individual-number staff.

use crate::helpers::*;
use vrs::crypto::totp;
use vrs::demo::DEMO_PASSWORD;
use vrs::domain::Role;

async fn login_with_code(app: &TestApp, login: &str, password: &str, code: &str) -> u16 {
    let s = TestApp::handle(app);
    let csrf = hidden(&s.get("/login").await.text().await.unwrap(), "csrf");
    s.client
        .post(s.url("/login"))
        .form(&[
            ("login_id", login),
            ("password", password),
            ("csrf", &csrf),
            ("code", code),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Enrols the logged-in session's account; returns the secret.
async fn enrol(s: &TestApp) -> Vec<u8> {
    let page = s.get("/totp").await.text().await.unwrap();
    assert!(page.contains("<svg"), "the QR code is drawn");
    let (csrf, secret_text) = (hidden(&page, "csrf"), hidden(&page, "secret"));
    let secret = totp::decode(&secret_text).unwrap();
    let wrong = s
        .client
        .post(s.url("/totp"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("secret", secret_text.as_str()),
            ("code", "000000"),
        ])
        .send()
        .await
        .unwrap();
    // (A random secret gives 000000 one time in a million.)
    assert_eq!(wrong.status(), 422);
    let code = totp::code_at(&secret, totp::now_unix());
    let ok = s
        .client
        .post(s.url("/totp"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("secret", secret_text.as_str()),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    secret
}

#[tokio::test]
async fn an_enrolled_account_needs_a_fresh_code_to_log_in() {
    let app = spawn_app().await;
    app.seed_demo();
    let s = TestApp::handle(&app);
    s.login_as("131016-staff", DEMO_PASSWORD).await;
    let secret = enrol(&s).await;

    assert_eq!(
        login_with_code(&app, "131016-staff", DEMO_PASSWORD, "").await,
        401,
        "password alone is no longer enough"
    );
    // The code used at enrolment was consumed; the next step's code works once.
    let later = totp::now_unix() + totp::STEP_SECONDS;
    let next = totp::code_at(&secret, later);
    assert_eq!(
        login_with_code(&app, "131016-staff", DEMO_PASSWORD, &next).await,
        303
    );
    assert_eq!(
        login_with_code(&app, "131016-staff", DEMO_PASSWORD, &next).await,
        401,
        "a code is never accepted twice"
    );
    assert_eq!(
        login_with_code(&app, "131016-staff", "wrong password 1", &next).await,
        401
    );
}

#[tokio::test]
async fn a_municipality_can_require_the_second_factor_of_individual_number_staff() {
    let app = spawn_app().await;
    app.seed_demo();
    let mut conn = app.conn();
    vrs::flows::networks::add(
        &mut conn,
        &app.state.audit,
        &vrs::audit::Actor::default(),
        code("082040"),
        vrs::domain::Network::parse("127.0.0.0/8").unwrap(),
        "test",
    )
    .unwrap();
    drop(conn);
    let pw = app.create_account(
        "082040-numbers",
        Role::MunicipalStaff,
        Some("082040"),
        &["my_number"],
    );
    let staff = TestApp::handle(&app);
    staff.login_as("082040-numbers", &pw).await;
    assert_eq!(
        staff.get("/residents/by-number").await.status(),
        200,
        "optional by default"
    );

    let admin_csrf = app.login_as("082040-admin", DEMO_PASSWORD).await;
    let res = app
        .client
        .post(app.url("/admin/security"))
        .form(&[("csrf", admin_csrf.as_str()), ("require_totp", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let t = vrs::db::models::tenants::TenantRow::find(&mut app.conn(), "082040")
        .unwrap()
        .unwrap();
    assert!(t.require_totp, "the setting was saved");
    let res = staff.get("/residents/by-number").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/totp?required=1");
    enrol(&staff).await;
    assert_eq!(staff.get("/residents/by-number").await.status(), 200);
}
