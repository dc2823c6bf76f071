//! Login, sessions, CSRF, lockout, expiry and the tamper-evident log, over HTTP.

use crate::helpers::*;
use diesel::prelude::*;
use vrs::db::schema::{accounts, audit_log, sessions};
use vrs::demo::DEMO_PASSWORD;

impl TestApp {
    pub async fn login_form_csrf(&self) -> String {
        hidden(&self.get("/login").await.text().await.unwrap(), "csrf")
    }

    pub async fn post_login(&self, login: &str, password: &str) -> reqwest::Response {
        let csrf = self.login_form_csrf().await;
        self.client
            .post(self.url("/login"))
            .form(&[("login_id", login), ("password", password), ("csrf", &csrf)])
            .send()
            .await
            .unwrap()
    }

    /// Logs in a demo account.
    pub async fn login_as_plain(&self, login: &str) -> String {
        self.login_as(login, DEMO_PASSWORD).await
    }

    /// Logs in and returns the session's CSRF token (from the dashboard).
    pub async fn login_as(&self, login: &str, password: &str) -> String {
        let res = self.post_login(login, password).await;
        assert_eq!(res.status(), 303, "login as {login}");
        hidden(&self.get("/dashboard").await.text().await.unwrap(), "csrf")
    }
}

#[tokio::test]
async fn operator_first_login_must_change_the_one_time_password() {
    let app = spawn_app().await;
    let (login, one_time) = app.operator.clone();
    let res = app.post_login(&login, &one_time).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/password");
    let set_cookie: Vec<_> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = set_cookie
        .iter()
        .find(|c| c.starts_with("vrs_session="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    // The dashboard sends back to the password page until it is changed.
    assert_eq!(
        app.get("/dashboard").await.headers()["location"],
        "/password"
    );

    let page = app.get("/password").await.text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    let weak = app
        .client
        .post(app.url("/password"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("current", one_time.as_str()),
            ("new", "short1"),
            ("confirm", "short1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 422);
    let doc = html(&weak.text().await.unwrap());
    assert_eq!(
        select_text(&doc, ".field__error"),
        vec!["新しいパスワード: 12文字以上で入力してください"]
    );

    let new = "operator password 2026";
    let ok = app
        .client
        .post(app.url("/password"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("current", one_time.as_str()),
            ("new", new),
            ("confirm", new),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    let doc = html(&app.get("/dashboard").await.text().await.unwrap());
    assert_eq!(
        select_text(&doc, "#previous-login p")[0],
        "今回が初めてのログインです。"
    );
    // The one-time password no longer works; the new one does, and the
    // dashboard then shows the previous login.
    let other = TestApp::handle(&app);
    assert_eq!(other.post_login(&login, &one_time).await.status(), 401);
    other.login_as(&login, new).await;
    let doc = html(&other.get("/dashboard").await.text().await.unwrap());
    assert!(select_text(&doc, "#previous-login p")[0].contains("127.0.0.1"));
}

#[tokio::test]
async fn a_session_id_planted_before_login_is_never_used() {
    let app = spawn_app().await;
    app.seed_demo();
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let url: reqwest::Url = app.base.parse().unwrap();
    jar.add_cookie_str("vrs_session=planted-by-attacker; Path=/", &url);
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    let res = client
        .post(app.url("/login"))
        .form(&[
            ("login_id", "082040-staff"),
            ("password", DEMO_PASSWORD),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let set: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let new = set
        .iter()
        .find(|c| c.starts_with("vrs_session="))
        .expect("a new session cookie");
    assert!(!new.contains("planted-by-attacker"));
    let planted = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = planted
        .get(app.url("/dashboard"))
        .header("cookie", "vrs_session=planted-by-attacker")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "the planted id opens nothing");
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    app.seed_demo();
    let unknown = app.post_login("nobody-here", "whatever password 1").await;
    let wrong = app.post_login("082040-staff", "whatever password 1").await;
    assert_eq!(unknown.status(), 401);
    assert_eq!(wrong.status(), 401);
    let strip = |body: String| select_text(&html(&body), "#login-error");
    assert_eq!(
        strip(unknown.text().await.unwrap()),
        strip(wrong.text().await.unwrap())
    );
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_or_from_another_origin_are_refused() {
    let app = spawn_app().await;
    app.seed_demo();
    // Login without the pre-login token.
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("login_id", "082040-staff"),
            ("password", DEMO_PASSWORD),
            ("csrf", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    // Logout with a wrong token, then from another origin with the right one.
    let res = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .client
        .post(app.url("/logout"))
        .header("origin", "https://attacker.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(app.get("/dashboard").await.status(), 200, "still logged in");
    let res = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    // Logged out: the login page, with no notice of an ended session.
    assert_eq!(app.get("/dashboard").await.headers()["location"], "/login");
}

#[tokio::test]
async fn lockout_engages_after_five_failures_and_releases() {
    let app = spawn_app().await;
    app.seed_demo();
    for _ in 0..5 {
        assert_eq!(
            app.post_login("131016-staff", "not the password 1")
                .await
                .status(),
            401
        );
    }
    // Locked: even the right password is refused, with the same answer.
    assert_eq!(
        app.post_login("131016-staff", DEMO_PASSWORD).await.status(),
        401
    );
    let mut conn = app.conn();
    let locked: Option<chrono::NaiveDateTime> = accounts::table
        .filter(accounts::login_id.eq("131016-staff"))
        .select(accounts::locked_until)
        .first(&mut *conn)
        .unwrap();
    assert!(locked.is_some());
    let logged: i64 = audit_log::table
        .filter(audit_log::chain.eq("131016"))
        .filter(audit_log::action.eq("account.locked"))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(
        logged, 1,
        "the lock is in the municipality's log for its administrator"
    );
    // Fifteen minutes pass.
    diesel::update(accounts::table.filter(accounts::login_id.eq("131016-staff")))
        .set(accounts::locked_until.eq(Some(vrs::clock::now() - chrono::Duration::seconds(1))))
        .execute(&mut *conn)
        .unwrap();
    assert_eq!(
        app.post_login("131016-staff", DEMO_PASSWORD).await.status(),
        303
    );
}

#[tokio::test]
async fn an_expired_account_cannot_log_in() {
    let app = spawn_app().await;
    app.seed_demo();
    let mut conn = app.conn();
    diesel::update(accounts::table.filter(accounts::login_id.eq("012025-staff")))
        .set(accounts::expires_on.eq(Some(vrs::clock::now().date() - chrono::Duration::days(1))))
        .execute(&mut *conn)
        .unwrap();
    assert_eq!(
        app.post_login("012025-staff", DEMO_PASSWORD).await.status(),
        401
    );
}

#[tokio::test]
async fn an_idle_session_logs_out() {
    let app = spawn_app().await;
    app.seed_demo();
    app.login_as("082040-admin", DEMO_PASSWORD).await;
    assert_eq!(app.get("/dashboard").await.status(), 200);
    let mut conn = app.conn();
    diesel::update(sessions::table)
        .set(sessions::last_seen_at.eq(vrs::clock::now() - chrono::Duration::minutes(16)))
        .execute(&mut *conn)
        .unwrap();
    let res = app.get("/dashboard").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login?notice=idle");
    let left: i64 = sessions::table.count().get_result(&mut *conn).unwrap();
    assert_eq!(left, 0, "the idle session is deleted");
    let page = app.get("/login?notice=idle").await.text().await.unwrap();
    assert!(page.contains("一定時間操作がなかったため"));

    // A session past the absolute limit, however busy, says so.
    app.login_as("082040-admin", DEMO_PASSWORD).await;
    diesel::update(sessions::table)
        .set(sessions::created_at.eq(vrs::clock::now() - chrono::Duration::hours(13)))
        .execute(&mut *conn)
        .unwrap();
    let res = app.get("/dashboard").await;
    assert_eq!(res.headers()["location"], "/login?notice=aged");
    let page = app.get("/login?notice=aged").await.text().await.unwrap();
    assert!(page.contains("ログインから一定時間が経ったため"));
}

#[tokio::test]
async fn a_changed_or_deleted_log_line_is_detected() {
    let app = spawn_app().await;
    app.seed_demo();
    app.login_as("082040-staff", DEMO_PASSWORD).await;
    app.post_login("082040-staff", "wrong password 1").await;
    let mut conn = app.db.owner_conn();
    let intact = vrs::audit::verify(&mut conn, &app.state.audit, Some("082040"), None).unwrap();
    assert_eq!(intact[0].broken_at, None);
    assert!(intact[0].lines >= 4, "{intact:?}");

    // Rewrite one line's outcome: detected at that line.
    diesel::update(
        audit_log::table
            .filter(audit_log::chain.eq("082040"))
            .filter(audit_log::seq.eq(3)),
    )
    .set(audit_log::outcome.eq("refused"))
    .execute(&mut conn)
    .unwrap();
    let r = vrs::audit::verify(&mut conn, &app.state.audit, Some("082040"), None).unwrap();
    assert_eq!(r[0].broken_at, Some(3));
    // The administrator's screen says so.
    let admin = TestApp::handle(&app);
    admin.login_as("082040-admin", DEMO_PASSWORD).await;
    let doc = html(&admin.get("/admin/log").await.text().await.unwrap());
    let notice = select_text(&doc, "#log-integrity.notice--error");
    assert_eq!(
        notice,
        vec!["操作ログの改ざんまたは削除を検出しました。検出位置： 3"]
    );
    // The export holds the filtered lines, with their MACs, as CSV.
    let csv = admin
        .get("/admin/log.csv?action=login&outcome=refused")
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines.len() >= 2, "{csv}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains(",login,") && l.contains(",refused,")),
        "{csv}"
    );

    // Through the command line too, with a non-zero exit.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_vrs"))
        .env_remove("VRS_MASTER_KEY")
        .env("VRS_DATABASE_URL", app.db.url_string())
        .env("VRS_MASTER_KEY_FILE", app.data_dir().join("master.key"))
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("082040: BROKEN at line 3"));

    // Deleting a line in another chain is detected as well.
    let app2 = spawn_app().await;
    app2.seed_demo();
    let mut conn2 = app2.db.owner_conn();
    diesel::delete(
        audit_log::table
            .filter(audit_log::chain.eq("131016"))
            .filter(audit_log::seq.eq(1)),
    )
    .execute(&mut conn2)
    .unwrap();
    let r = vrs::audit::verify(&mut conn2, &app2.state.audit, Some("131016"), None).unwrap();
    assert_eq!(r[0].broken_at, Some(1));
}

#[tokio::test]
async fn a_chain_cut_short_or_deleted_does_not_verify_against_the_witness() {
    let app = spawn_app().await;
    app.seed_demo();
    app.login_as("082040-staff", DEMO_PASSWORD).await;
    app.post_login("082040-staff", "wrong password 1").await;
    let mut conn = app.db.owner_conn();
    vrs::audit::flush(&mut conn, &app.state.audit).unwrap();
    assert!(
        app.state
            .witness
            .record(&mut conn, &app.state.audit)
            .unwrap()
            >= 3
    );
    // Nothing grew: nothing more to witness.
    assert_eq!(
        app.state
            .witness
            .record(&mut conn, &app.state.audit)
            .unwrap(),
        0
    );
    let heads = app.state.witness.heads();
    let all = vrs::audit::verify(&mut conn, &app.state.audit, None, Some(&heads)).unwrap();
    assert!(all.iter().all(|r| r.intact()), "{all:?}");
    let held = all.iter().find(|r| r.chain == "082040").unwrap().lines;
    assert!(held >= 4);

    // The newest two lines of 古河市's chain deleted: what is left still
    // links, but the witness saw more.
    diesel::delete(
        audit_log::table
            .filter(audit_log::chain.eq("082040"))
            .filter(audit_log::seq.gt(held - 2)),
    )
    .execute(&mut conn)
    .unwrap();
    let r = vrs::audit::verify(&mut conn, &app.state.audit, Some("082040"), Some(&heads))
        .unwrap()
        .remove(0);
    assert_eq!(r.broken_at, None);
    assert!(r.truncated && !r.intact(), "{r:?}");
    assert_eq!(
        (r.witnessed, r.lines, r.vouched()),
        (Some(held), held - 2, held - 2)
    );

    // The chain grows again past its old length (three refused sign-ins):
    // every link holds, but line `held` is not the one the witness saw, and
    // the witness does not move on to a head of what grew after the cut.
    for n in 2..5 {
        app.post_login("082040-staff", &format!("wrong password {n}"))
            .await;
    }
    vrs::audit::flush(&mut conn, &app.state.audit).unwrap();
    app.state
        .witness
        .record(&mut conn, &app.state.audit)
        .unwrap();
    assert_eq!(app.state.witness.heads()["082040"], heads["082040"]);
    let r = vrs::audit::verify(&mut conn, &app.state.audit, Some("082040"), Some(&heads))
        .unwrap()
        .remove(0);
    assert!(r.lines > held, "{r:?}");
    assert!(r.truncated && r.broken_at.is_none(), "{r:?}");
    assert_eq!(r.confirmed, None, "{r:?}");

    // 千代田区's whole chain deleted.
    diesel::delete(audit_log::table.filter(audit_log::chain.eq("131016")))
        .execute(&mut conn)
        .unwrap();
    // A municipality enabled since, its chain deleted before the witness
    // saw it: still found, as an active municipality without a chain.
    vrs::flows::municipalities::enable(&mut conn, app.master(), code("011002")).unwrap();
    vrs::audit::flush(&mut conn, &app.state.audit).unwrap();
    diesel::delete(audit_log::table.filter(audit_log::chain.eq("011002")))
        .execute(&mut conn)
        .unwrap();
    let all = vrs::audit::verify(&mut conn, &app.state.audit, None, Some(&heads)).unwrap();
    let of = |c: &str| all.iter().find(|r| r.chain == c).unwrap().clone();
    assert!(of("131016").truncated && of("131016").missing);
    assert!(!of("011002").truncated && of("011002").missing);
    assert!(of("012025").intact());

    // The command line, against the witness file, names each finding and
    // the last line each chain vouches for.
    let witness = app.state.witness.path().to_path_buf();
    let verify = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vrs"))
            .env_remove("VRS_MASTER_KEY")
            .env("VRS_DATABASE_URL", app.db.url_string())
            .env("VRS_MASTER_KEY_FILE", app.data_dir().join("master.key"))
            .args(["audit", "verify", "--witness"])
            .arg(file)
            .output()
            .unwrap()
    };
    let o = verify(&witness);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success());
    assert!(
        out.contains(&format!(
            "082040: TRUNCATED: the witness saw line {held}, which the log no longer holds as it was"
        )),
        "{out}"
    );
    assert!(out.contains("131016: MISSING"), "{out}");
    assert!(out.contains("011002: MISSING"), "{out}");

    // A witness line changed by hand is named, never believed.
    let text = std::fs::read_to_string(&witness).unwrap();
    let forged = text.replacen("\t082040\t", "\t082040\t9", 1);
    assert_ne!(forged, text);
    let copy = app.data_dir().join("witness-copy.log");
    std::fs::write(&copy, forged).unwrap();
    let o = verify(&copy);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("does not verify"), "{out}");

    // The administrator's screen says so (signing in adds lines after
    // the cut: they link, yet the chain stays short of what was seen).
    let admin = TestApp::handle(&app);
    admin.login_as("082040-admin", DEMO_PASSWORD).await;
    let doc = html(&admin.get("/admin/log").await.text().await.unwrap());
    let notice = select_text(&doc, "#log-integrity.notice--error");
    assert_eq!(notice.len(), 1, "{notice:?}");
    assert!(notice[0].contains("削除"), "{notice:?}");
}

#[tokio::test]
async fn the_operation_log_holds_no_individual_number() {
    let app = spawn_app().await;
    app.seed_demo();
    app.login_as("082040-staff", DEMO_PASSWORD).await;
    // A login name shaped like an individual number is masked, not stored.
    app.post_login("123456789018", "whatever password 1").await;
    let mut conn = app.conn();
    let rows: Vec<vrs::db::models::audit_log::AuditRow> = audit_log::table
        .select(vrs::db::models::audit_log::AuditRow::as_select())
        .load(&mut *conn)
        .unwrap();
    assert!(rows.len() >= 8, "{}", rows.len());
    let throttle: Vec<String> = vrs::db::schema::login_throttle::table
        .select(vrs::db::schema::login_throttle::throttle_key)
        .load(&mut *conn)
        .unwrap();
    let text = format!("{rows:?} {throttle:?}");
    assert!(!text.contains("123456789018"));
    for code in vrs::demo::DEMO_MUNICIPALITIES {
        for i in 0..vrs::demo::RESIDENTS_PER_MUNICIPALITY {
            let n = vrs::demo::demo_resident(crate::helpers::code(code), i)
                .my_number
                .unwrap();
            let digits = String::from_utf8(n.expose_digits().to_vec()).unwrap();
            assert!(!text.contains(&digits));
        }
    }
}

/// Changes the signed-in account's password; the answer's status and body.
async fn change_password(s: &TestApp, current: &str, new: &str) -> (u16, String) {
    let page = s.get("/password").await.text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    let res = s
        .client
        .post(s.url("/password"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("current", current),
            ("new", new),
            ("confirm", new),
        ])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn a_municipalitys_password_rules_refuse_earlier_passwords_and_age_them_out() {
    let app = spawn_app().await;
    app.seed_demo();
    let admin = TestApp::handle(&app);
    admin.login_as("082040-admin", DEMO_PASSWORD).await;
    let page = admin.get("/admin/networks").await.text().await.unwrap();
    let acsrf = hidden(&page, "csrf");
    let set = |max: &'static str, reuse: &'static str| {
        let (admin, acsrf) = (&admin, acsrf.clone());
        async move {
            let res = admin
                .client
                .post(admin.url("/admin/password-rules"))
                .form(&[
                    ("csrf", acsrf.as_str()),
                    ("max_days", max),
                    ("reuse", reuse),
                ])
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let (status, page) = set("abc", "2").await;
    assert_eq!(status, 422);
    assert!(select_text(&html(&page), "#password-rules-error")[0].contains("有効期間"));
    assert_eq!(set("30", "2").await.0, 303);

    let first = app.create_account(
        "082040-pw",
        vrs::domain::Role::MunicipalStaff,
        Some("082040"),
        &["residents"],
    );
    let staff = TestApp::handle(&app);
    staff.login_as("082040-pw", &first).await;
    let (p1, p2) = ("second password 2026", "third password 2026");
    assert_eq!(change_password(&staff, &first, p1).await.0, 303);
    assert_eq!(change_password(&staff, p1, p2).await.0, 303);
    // The two before the current one may not come back.
    for earlier in [first.as_str(), p1] {
        let (status, page) = change_password(&staff, p2, earlier).await;
        assert_eq!(status, 422, "{earlier}");
        assert!(page.contains("以前に使ったパスワードは使えません"));
    }

    // A password older than 30 days is changed at the next login.
    {
        diesel::update(accounts::table.filter(accounts::login_id.eq("082040-pw")))
            .set(accounts::password_changed_at.eq(vrs::clock::now() - chrono::Duration::days(31)))
            .execute(&mut *app.conn())
            .unwrap();
    }
    let again = TestApp::handle(&app);
    again.login_form_csrf().await;
    let res = again.post_login("082040-pw", p2).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/password");
    assert_eq!(
        again.get("/dashboard").await.headers()["location"],
        "/password"
    );
    // Without a limit, the same age is no reason.
    assert_eq!(set("0", "2").await.0, 303);
    let fresh = TestApp::handle(&app);
    let other = app.create_account(
        "082040-pw2",
        vrs::domain::Role::MunicipalStaff,
        Some("082040"),
        &["residents"],
    );
    {
        diesel::update(accounts::table.filter(accounts::login_id.eq("082040-pw2")))
            .set(accounts::password_changed_at.eq(vrs::clock::now() - chrono::Duration::days(400)))
            .execute(&mut *app.conn())
            .unwrap();
    }
    fresh.login_form_csrf().await;
    let res = fresh.post_login("082040-pw2", &other).await;
    assert_eq!(res.headers()["location"], "/dashboard");
}
