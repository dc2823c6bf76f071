//! Each role reaches exactly what PRODUCT.md gives it; individual-number pages
//! answer only staff with that permission on a declared LG-WAN network.

use crate::helpers::*;
use diesel::prelude::*;
use vrs::db::schema::{accounts, audit_log};
use vrs::demo::DEMO_PASSWORD;
use vrs::domain::Role;

const PROTECTED_GETS: [&str; 19] = [
    "/admin/accounts",
    "/admin/sites",
    "/admin/accounts.csv",
    "/admin/networks",
    "/admin/log",
    "/admin/log.csv",
    "/operator",
    "/operator/vaccines",
    "/operator/channels",
    "/residents/by-number",
    "/residents",
    "/residents/imports",
    "/exports",
    "/exports/doses.csv",
    "/doses/queue",
    "/site",
    "/transfers",
    "/transfers/bulk",
    "/statistics",
];

const PROTECTED_POSTS: [&str; 15] = [
    "/admin/accounts",
    "/admin/sites",
    "/admin/networks",
    "/admin/networks/delete",
    "/admin/security",
    "/admin/certificate-channels",
    "/operator/municipalities",
    "/operator/viewers",
    "/operator/vaccines/lots",
    "/operator/channels",
    "/residents/by-number",
    "/residents/search",
    "/site/scan",
    "/site/doses",
    "/transfers",
];

/// Which state-changing routes answer something other than 403 (a valid
/// CSRF token is sent, so only the role decides).
async fn allowed_posts(app: &TestApp, login: &str, password: &str) -> Vec<&'static str> {
    let s = TestApp::handle(app);
    let csrf = s.login_as(login, password).await;
    let mut ok = Vec::new();
    for path in PROTECTED_POSTS {
        // One body with every field any of these forms takes, all well-formed.
        let body = [
            ("csrf", csrf.as_str()),
            ("cidr", "10.99.0.0/16"),
            ("label", "x"),
            ("my_number", "123456789018"),
            ("purpose", "certificate_lookup"),
            ("login_id", "probe-account"),
            ("display_name", "プローブ"),
            ("role", "municipal_staff"),
            ("expires_on", "2099-03-31"),
            ("code", "131016"),
            ("admin_login", "probe-admin"),
            ("admin_name", "プローブ"),
            ("login", "probe-viewer"),
            ("name", "プローブ"),
            ("kind", "national_viewer"),
            ("by", "addressee"),
            ("addressee", "D0000001"),
        ];
        let res = s.client.post(s.url(path)).form(&body).send().await.unwrap();
        assert!(
            matches!(res.status().as_u16(), 200 | 303 | 403 | 422),
            "{login} {path}: {}",
            res.status()
        );
        if res.status() != 403 {
            ok.push(path);
        }
    }
    ok
}

async fn allowed_gets(app: &TestApp, login: &str, password: &str) -> Vec<&'static str> {
    let s = TestApp::handle(app);
    s.login_as(login, password).await;
    let mut ok = Vec::new();
    for path in PROTECTED_GETS {
        let status = s.get(path).await.status().as_u16();
        assert!(matches!(status, 200 | 403), "{login} {path}: {status}");
        if status == 200 {
            ok.push(path);
        }
    }
    ok
}

#[tokio::test]
async fn every_role_reaches_only_its_own_pages() {
    let app = spawn_app().await;
    app.seed_demo();
    // Every municipality here declares its loopback as LG-WAN, so that only
    // the role decides below.
    for code in ["082040", "131016"] {
        let mut conn = app.conn();
        vrs::flows::networks::add(
            &mut conn,
            &app.state.audit,
            &vrs::audit::Actor::default(),
            crate::helpers::code(code),
            vrs::domain::Network::parse("127.0.0.0/8").unwrap(),
            "test",
        )
        .unwrap();
    }
    let national = app.create_account("nat-viewer", Role::NationalViewer, None, &[]);
    // The demo's tablet, bound to the demo site; a tablet account without
    // a site reaches nothing.
    let tablet = DEMO_PASSWORD.to_string();
    let unbound = app.create_account("082040-unbound", Role::SiteTablet, Some("082040"), &[]);
    let numbers = app.create_account(
        "082040-numbers",
        Role::MunicipalStaff,
        Some("082040"),
        &["my_number"],
    );
    let operator = app.create_account("operator2", Role::Operator, None, &[]);
    let plain = app.create_account("082040-plain", Role::MunicipalStaff, Some("082040"), &[]);
    let clerk = app.create_account(
        "082040-clerk",
        Role::MunicipalStaff,
        Some("082040"),
        &["residents", "export"],
    );

    let admin_pages = vec![
        "/admin/accounts",
        "/admin/sites",
        "/admin/accounts.csv",
        "/admin/networks",
        "/admin/log",
        "/admin/log.csv",
    ];
    assert_eq!(
        allowed_gets(&app, "082040-admin", DEMO_PASSWORD).await,
        admin_pages
    );
    assert_eq!(
        allowed_gets(&app, "082040-plain", &plain).await,
        Vec::<&str>::new()
    );
    assert_eq!(
        allowed_gets(&app, "082040-clerk", &clerk).await,
        vec![
            "/residents",
            "/residents/imports",
            "/exports",
            "/exports/doses.csv",
            "/doses/queue"
        ]
    );
    assert_eq!(
        allowed_gets(&app, "082040-numbers", &numbers).await,
        vec!["/residents/by-number"]
    );
    assert_eq!(
        allowed_gets(&app, "082040-tablet", &tablet).await,
        vec!["/site"]
    );
    assert_eq!(
        allowed_gets(&app, "082040-unbound", &unbound).await,
        Vec::<&str>::new()
    );
    assert_eq!(
        allowed_gets(&app, "nat-viewer", &national).await,
        vec!["/statistics"]
    );
    assert_eq!(
        allowed_gets(&app, "operator2", &operator).await,
        vec!["/operator", "/operator/vaccines", "/operator/channels"]
    );
    // The same for every state-changing route.
    let none: Vec<&str> = Vec::new();
    assert_eq!(allowed_posts(&app, "082040-plain", &plain).await, none);
    assert_eq!(
        allowed_posts(&app, "082040-clerk", &clerk).await,
        vec!["/residents/search"]
    );
    assert_eq!(
        allowed_posts(&app, "082040-tablet", &tablet).await,
        vec!["/site/scan", "/site/doses"]
    );
    assert_eq!(allowed_posts(&app, "082040-unbound", &unbound).await, none);
    assert_eq!(allowed_posts(&app, "nat-viewer", &national).await, none);
    assert_eq!(
        allowed_posts(&app, "082040-numbers", &numbers).await,
        vec!["/residents/by-number"]
    );
    assert_eq!(
        allowed_posts(&app, "operator2", &operator).await,
        vec![
            "/operator/municipalities",
            "/operator/viewers",
            "/operator/vaccines/lots",
            "/operator/channels"
        ]
    );
    assert_eq!(
        allowed_posts(&app, "082040-admin", DEMO_PASSWORD).await,
        vec![
            "/admin/accounts",
            "/admin/sites",
            "/admin/networks",
            "/admin/networks/delete",
            "/admin/security",
            "/admin/certificate-channels"
        ]
    );
    // The verify page is for anyone.
    assert_eq!(app.get("/verify").await.status(), 200);
    // Without logging in, every one of them sends to the login page.
    for path in PROTECTED_GETS {
        assert_eq!(
            app.get(path).await.headers()["location"],
            "/login",
            "{path}"
        );
    }
}

#[tokio::test]
async fn an_administrator_cannot_touch_another_municipalitys_accounts() {
    let app = spawn_app().await;
    app.seed_demo();
    let mut conn = app.conn();
    let koga_staff: String = accounts::table
        .filter(accounts::login_id.eq("082040-staff"))
        .select(accounts::id)
        .first(&mut *conn)
        .unwrap();
    let csrf = app.login_as("131016-admin", DEMO_PASSWORD).await;
    // The list shows only Chiyoda's accounts.
    let doc = html(&app.get("/admin/accounts").await.text().await.unwrap());
    let logins = select_text(&doc, "#accounts tbody td:first-child code");
    assert_eq!(
        logins,
        vec!["131016-admin", "131016-staff", "131016-tablet"]
    );
    // Koga's id in the URL is simply not found, and nothing changes.
    for action in ["disable", "unlock"] {
        let res = app
            .client
            .post(app.url(&format!("/admin/accounts/{koga_staff}/{action}")))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{action}");
    }
    let disabled: Option<chrono::NaiveDateTime> = accounts::table
        .filter(accounts::id.eq(&koga_staff))
        .select(accounts::disabled_at)
        .first(&mut *conn)
        .unwrap();
    assert!(disabled.is_none());
    assert_eq!(
        TestApp::handle(&app)
            .post_login("082040-staff", DEMO_PASSWORD)
            .await
            .status(),
        303
    );
    // An administrator cannot issue a platform account by editing the form.
    let res = app
        .client
        .post(app.url("/admin/accounts"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("login_id", "sneaky-op"),
            ("display_name", "X"),
            ("role", "operator"),
            ("expires_on", "2099-03-31"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let n: i64 = accounts::table
        .filter(accounts::login_id.eq("sneaky-op"))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn administrators_issue_end_and_review_accounts() {
    let app = spawn_app().await;
    app.seed_demo();
    let csrf = app.login_as("082040-admin", DEMO_PASSWORD).await;
    let post = |form: Vec<(&'static str, String)>| {
        let c = app.client.post(app.url("/admin/accounts")).form(&form);
        async move { c.send().await.unwrap() }
    };
    // A tablet without its device, responsible person and site is refused,
    // beside the fields.
    let res = post(vec![
        ("csrf", csrf.clone()),
        ("login_id", "koga-tab1".into()),
        ("display_name", "会場A".into()),
        ("role", "site_tablet".into()),
        ("expires_on", "2099-03-31".into()),
    ])
    .await;
    assert_eq!(res.status(), 422);
    let doc = html(&res.text().await.unwrap());
    assert_eq!(
        select_text(&doc, ".field__error"),
        vec![
            "タブレットのアカウントには端末名と責任者の両方が必要です",
            "タブレットのアカウントには接種会場の指定が必要です"
        ]
    );
    // A bad login id and a past expiry are named.
    let res = post(vec![
        ("csrf", csrf.clone()),
        ("login_id", "a b".into()),
        ("display_name", "X".into()),
        ("role", "municipal_staff".into()),
        ("expires_on", "2000-01-01".into()),
    ])
    .await;
    let doc = html(&res.text().await.unwrap());
    let errors = select_text(&doc, ".field__error");
    assert!(errors[0].starts_with("ログインID:"), "{errors:?}");
    assert_eq!(errors[1], "有効期限に過去の日付は指定できません");

    let res = post(vec![
        ("csrf", csrf.clone()),
        ("login_id", "koga-clerk".into()),
        ("display_name", "古河 花子".into()),
        ("role", "municipal_staff".into()),
        ("perm_residents", "1".into()),
        ("expires_on", "2099-03-31".into()),
    ])
    .await;
    assert_eq!(res.status(), 200);
    let doc = html(&res.text().await.unwrap());
    let one_time = select_text(&doc, "#one-time-password").remove(0);
    let clerk = TestApp::handle(&app);
    assert_eq!(
        clerk.post_login("koga-clerk", &one_time).await.headers()["location"],
        "/password"
    );
    // Least privilege: residents only, no individual numbers.
    let perms: String = accounts::table
        .filter(accounts::login_id.eq("koga-clerk"))
        .select(accounts::permissions)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(perms, "residents");

    // The CSV list, with a BOM, every account of the municipality and nothing else.
    let res = app.get("/admin/accounts.csv").await;
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("accounts-082040.csv")
    );
    let body = res.bytes().await.unwrap();
    assert_eq!(&body[..3], &[0xEF, 0xBB, 0xBF]);
    let text = String::from_utf8(body[3..].to_vec()).unwrap();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.contains("koga-clerk") && !text.contains("131016"));

    // Ending the account: the clerk's session ends and login is refused.
    let id: String = accounts::table
        .filter(accounts::login_id.eq("koga-clerk"))
        .select(accounts::id)
        .first(&mut *app.conn())
        .unwrap();
    let res = app
        .client
        .post(app.url(&format!("/admin/accounts/{id}/disable")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    // Their next request ends the session and says why.
    assert_eq!(
        clerk.get("/password").await.headers()["location"],
        "/login?notice=account_ended"
    );
    let page = clerk
        .get("/login?notice=account_ended")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("このアカウントは無効にされたか有効期限が切れたため"));
    assert_eq!(
        TestApp::handle(&app)
            .post_login("koga-clerk", &one_time)
            .await
            .status(),
        401
    );
    let doc = html(&app.get("/admin/accounts").await.text().await.unwrap());
    let row = select_text(&doc, "tr[data-login=koga-clerk] .badge");
    assert!(row.contains(&"失効".to_string()), "{row:?}");
}

#[tokio::test]
async fn a_lock_shows_on_the_administrators_screen_and_can_be_lifted() {
    let app = spawn_app().await;
    app.seed_demo();
    for _ in 0..5 {
        TestApp::handle(&app)
            .post_login("082040-staff", "wrong password 1")
            .await;
    }
    app.login_as("082040-admin", DEMO_PASSWORD).await;
    let page = app.get("/admin/accounts").await.text().await.unwrap();
    let doc = html(&page);
    assert_eq!(select_text(&doc, "#lock-notice").len(), 1);
    let csrf = hidden_csrf(&page);
    let id: String = accounts::table
        .filter(accounts::login_id.eq("082040-staff"))
        .select(accounts::id)
        .first(&mut *app.conn())
        .unwrap();
    let res = app
        .client
        .post(app.url(&format!("/admin/accounts/{id}/unlock")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        TestApp::handle(&app)
            .post_login("082040-staff", DEMO_PASSWORD)
            .await
            .status(),
        303
    );
}

fn hidden_csrf(page: &str) -> String {
    let doc = html(page);
    let sel = scraper::Selector::parse("input[name=csrf]").unwrap();
    doc.select(&sel)
        .next()
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_string()
}

fn koga_number(i: usize) -> String {
    let n = vrs::demo::demo_resident(code("082040"), i)
        .my_number
        .unwrap();
    String::from_utf8(n.expose_digits().to_vec()).unwrap()
}

#[tokio::test]
async fn individual_number_pages_answer_only_inside_declared_lgwan_networks() {
    let app = spawn_app().await;
    app.seed_demo();
    let pw = app.create_account(
        "082040-numbers",
        Role::MunicipalStaff,
        Some("082040"),
        &["my_number"],
    );
    let staff = TestApp::handle(&app);
    let staff_csrf = staff.login_as("082040-numbers", &pw).await;

    // No network declared: refused, with the zone page, and logged.
    let res = staff.get("/residents/by-number").await;
    assert_eq!(res.status(), 403);
    let doc = html(&res.text().await.unwrap());
    assert_eq!(
        select_text(&doc, "h1"),
        vec!["この端末からは利用できません"]
    );

    // The administrator declares a network that is not ours: still refused.
    let admin_csrf = app.login_as("082040-admin", DEMO_PASSWORD).await;
    let add = |cidr: &'static str| {
        app.client
            .post(app.url("/admin/networks"))
            .form(&[
                ("csrf", admin_csrf.as_str()),
                ("cidr", cidr),
                ("label", "本庁舎"),
            ])
            .send()
    };
    let bad = add("10.0.0.0/3").await.unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(
        select_text(&html(&bad.text().await.unwrap()), ".field__error"),
        vec!["ネットワーク（CIDR）: 範囲が広すぎます（IPv4は/8、IPv6は/32より狭くしてください）"]
    );
    // A label hiding a right-to-left override is refused, naming it.
    let hidden = app
        .client
        .post(app.url("/admin/networks"))
        .form(&[
            ("csrf", admin_csrf.as_str()),
            ("cidr", "10.1.0.0/16"),
            ("label", "本庁\u{202E}舎"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(hidden.status(), 422);
    assert_eq!(
        select_text(&html(&hidden.text().await.unwrap()), ".field__error"),
        vec!["名称: 制御文字や見えない書式文字は使えません"]
    );
    assert_eq!(add("10.0.0.0/8").await.unwrap().status(), 303);
    assert_eq!(staff.get("/residents/by-number").await.status(), 403);
    // A number posted from outside is refused before it is even read.
    let res = staff
        .client
        .post(staff.url("/residents/by-number"))
        .form(&[
            ("csrf", staff_csrf.as_str()),
            ("purpose", "certificate_lookup"),
            ("my_number", koga_number(1).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Our terminal's network: the page answers.
    assert_eq!(add("127.0.0.0/8").await.unwrap().status(), 303);
    assert_eq!(staff.get("/residents/by-number").await.status(), 200);
    let number = koga_number(3);
    let res = staff
        .client
        .post(staff.url("/residents/by-number"))
        .form(&[
            ("csrf", staff_csrf.as_str()),
            ("purpose", "certificate_lookup"),
            ("my_number", number.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(
        !body.contains(&number),
        "the full number is never shown back"
    );
    let doc = html(&body);
    let shown = select_text(&doc, "#resident dd");
    let expected = vrs::demo::demo_resident(code("082040"), 3);
    assert!(
        shown.contains(&expected.name_kanji.as_str().to_string()),
        "{shown:?}"
    );
    assert!(shown.contains(&format!("********{}", &number[8..])));
    // This account may not open records: no link to one.
    assert!(select_text(&doc, "#open-record").is_empty());
    // The demo staff account may: the found person's record opens.
    let both = TestApp::handle(&app);
    let both_csrf = both.login_as("082040-staff", DEMO_PASSWORD).await;
    let body = both
        .client
        .post(both.url("/residents/by-number"))
        .form(&[
            ("csrf", both_csrf.as_str()),
            ("purpose", "certificate_lookup"),
            ("my_number", number.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let link = html(&body)
        .select(&scraper::Selector::parse("#open-record").unwrap())
        .next()
        .and_then(|a| a.value().attr("href").map(str::to_string))
        .expect("a link to the record");
    let record = both.get(&link).await.text().await.unwrap();
    assert!(record.contains(expected.name_kanji.as_str()));

    // A wrong check digit is named, and the typed digits are not echoed.
    let mut wrong = number.clone().into_bytes();
    wrong[11] = if wrong[11] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    let res = staff
        .client
        .post(staff.url("/residents/by-number"))
        .form(&[
            ("csrf", staff_csrf.as_str()),
            ("purpose", "certificate_lookup"),
            ("my_number", wrong.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(!body.contains(&wrong));
    assert_eq!(
        select_text(&html(&body), "#lookup-error"),
        vec!["個人番号: チェックデジットが一致しません"]
    );

    // Tablets, administrators, viewers and operators are refused even inside.
    let tablet = app.create_account("082040-tab", Role::SiteTablet, Some("082040"), &[]);
    let viewer = app.create_account("pref-08", Role::PrefecturalViewer, None, &[]);
    let plain = app.create_account(
        "082040-plain",
        Role::MunicipalStaff,
        Some("082040"),
        &["residents"],
    );
    for (login, pw) in [
        ("082040-tab", tablet.as_str()),
        ("pref-08", viewer.as_str()),
        ("082040-admin", DEMO_PASSWORD),
        ("082040-plain", plain.as_str()),
    ] {
        let s = TestApp::handle(&app);
        s.login_as(login, pw).await;
        assert_eq!(s.get("/residents/by-number").await.status(), 403, "{login}");
    }

    // Each refusal and the lookup itself are in Koga's log, with the purpose.
    let mut conn = app.conn();
    let lines: Vec<(String, String, Option<String>)> = audit_log::table
        .filter(audit_log::chain.eq("082040"))
        .filter(audit_log::action.like("%number%"))
        .select((audit_log::action, audit_log::outcome, audit_log::detail))
        .load(&mut *conn)
        .unwrap();
    assert!(
        lines
            .iter()
            .any(|(a, o, d)| a == "resident.lookup_by_number"
                && o == "ok"
                && d.as_deref() == Some("purpose=certificate_lookup"))
    );
    assert!(
        lines
            .iter()
            .filter(|(a, o, _)| a == "my_number.access" && o == "refused")
            .count()
            >= 6,
        "{lines:?}"
    );
    assert!(!format!("{lines:?}").contains(&number));
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_decides() {
    let app = spawn_app_with(|a| a.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    app.seed_demo();
    app.declare_network("082040", "10.20.0.0/16");
    let pw = app.create_account(
        "082040-numbers",
        Role::MunicipalStaff,
        Some("082040"),
        &["my_number"],
    );
    app.login_as("082040-numbers", &pw).await;
    let via = |ip: &'static str| {
        app.client
            .get(app.url("/residents/by-number"))
            .header("x-forwarded-for", ip)
            .send()
    };
    assert_eq!(via("10.20.3.4").await.unwrap().status(), 200);
    assert_eq!(via("203.0.113.9").await.unwrap().status(), 403);
    // A client cannot smuggle an LG-WAN address in front of its own.
    assert_eq!(via("10.20.3.4, 203.0.113.9").await.unwrap().status(), 403);
}

#[tokio::test]
async fn the_operator_enables_a_municipality_with_its_first_administrator() {
    let app = spawn_app().await;
    let (login, one_time) = app.operator.clone();
    app.post_login(&login, &one_time).await;
    let page = app.get("/password").await.text().await.unwrap();
    let csrf = hidden_csrf(&page);
    app.client
        .post(app.url("/password"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("current", one_time.as_str()),
            ("new", "operator pass 2026"),
            ("confirm", "operator pass 2026"),
        ])
        .send()
        .await
        .unwrap();

    let form = |code: &'static str| {
        app.client
            .post(app.url("/operator/municipalities"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("code", code),
                ("admin_login", "sapporo-admin"),
                ("admin_name", "札幌 管理者"),
            ])
            .send()
    };
    let bad = form("011003").await.unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(
        select_text(&html(&bad.text().await.unwrap()), ".field__error"),
        vec!["地方公共団体コード: チェックデジットが一致しません"]
    );
    let ok = form("011002").await.unwrap();
    assert_eq!(ok.status(), 200);
    let doc = html(&ok.text().await.unwrap());
    let pw = select_text(&doc, "#one-time-password").remove(0);
    assert!(select_text(&doc, "#tenants td").contains(&"北海道札幌市".to_string()));
    let admin = TestApp::handle(&app);
    assert_eq!(
        admin.post_login("sapporo-admin", &pw).await.headers()["location"],
        "/password"
    );
    // Viewer accounts: a prefectural one needs a real prefecture.
    let viewer = |kind: &'static str, pref: &'static str| {
        app.client
            .post(app.url("/operator/viewers"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("login", "ibaraki-view"),
                ("name", "茨城県 閲覧"),
                ("kind", kind),
                ("prefecture", pref),
            ])
            .send()
    };
    let bad = viewer("prefectural_viewer", "48").await.unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(
        select_text(&html(&bad.text().await.unwrap()), "#viewer-error"),
        vec!["都道府県コードは01〜47の2桁で入力してください"]
    );
    let ok = viewer("prefectural_viewer", "08").await.unwrap();
    assert_eq!(ok.status(), 200);
    let (role, pref): (String, Option<String>) = accounts::table
        .filter(accounts::login_id.eq("ibaraki-view"))
        .select((accounts::role, accounts::prefecture_code))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(
        (role.as_str(), pref.as_deref()),
        ("prefectural_viewer", Some("08"))
    );
    // The operator's log holds the platform's events only.
    let doc = html(&app.get("/operator").await.text().await.unwrap());
    let actions = select_text(&doc, "#platform-log td[data-action='municipality.enable']");
    assert!(
        actions.contains(&"市区町村の利用開始".to_string()),
        "{actions:?}"
    );
    // The new administrator's creation is in Sapporo's own log, not the platform's.
    let sapporo: i64 = audit_log::table
        .filter(audit_log::chain.eq("011002"))
        .filter(audit_log::action.eq("account.create"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(sapporo, 1);
    let created = select_text(&doc, "#platform-log td[data-action='account.create']");
    assert_eq!(
        created,
        ["アカウントの作成", "アカウントの作成"],
        "the bootstrap operator's and the viewer's"
    );
}

#[tokio::test]
async fn the_operators_channel_form_names_the_field_it_refuses() {
    let app = spawn_app().await;
    let pw = app.create_account("operator2", Role::Operator, None, &[]);
    let op = TestApp::handle(&app);
    let csrf = op.login_as("operator2", &pw).await;
    let post = |name: &'static str, kind: &'static str| {
        let (op, csrf) = (&op, &csrf);
        async move {
            let res = op
                .client
                .post(op.url("/operator/channels"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("name", name),
                    ("kind", kind),
                    ("networks", "10.2.0.0/16"),
                ])
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.text().await.unwrap())
        }
    };
    let (status, page) = post("コンビニ\u{200B}交付", "kiosk").await;
    assert_ne!(status, 303);
    assert!(
        page.contains("名称: 制御文字や見えない書式文字は使えません"),
        "{page}"
    );
    let (status, page) = post("コンビニ交付", "window").await;
    assert_ne!(status, 303);
    assert!(page.contains("経路: 選択肢にない値です"), "{page}");
}

/// The id of an account by its login.
fn account_id(app: &TestApp, login: &str) -> String {
    accounts::table
        .filter(accounts::login_id.eq(login))
        .select(accounts::id)
        .first(&mut *app.conn())
        .unwrap()
}

#[tokio::test]
async fn disabling_yourself_asks_first_and_the_last_administrator_is_never_disabled() {
    let app = spawn_app().await;
    app.seed_demo();
    let csrf = app.login_as("082040-admin", DEMO_PASSWORD).await;
    let disable = |id: String, confirm: bool| {
        let (app, csrf) = (&app, csrf.clone());
        async move {
            let mut form = vec![("csrf", csrf)];
            if confirm {
                form.push(("confirm", "1".into()));
            }
            app.client
                .post(app.url(&format!("/admin/accounts/{id}/disable")))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let disabled = |login: &str| -> bool {
        accounts::table
            .filter(accounts::login_id.eq(login))
            .select(accounts::disabled_at)
            .first::<Option<chrono::NaiveDateTime>>(&mut *app.conn())
            .unwrap()
            .is_some()
    };

    // Another account: at once, no question.
    let res = disable(account_id(&app, "082040-staff"), false).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/accounts");
    assert!(disabled("082040-staff"));

    // Yourself, the only administrator: refused, even when confirmed.
    let me = account_id(&app, "082040-admin");
    for confirm in [false, true] {
        let res = disable(me.clone(), confirm).await;
        assert_eq!(res.status(), 422);
        let doc = html(&res.text().await.unwrap());
        assert!(select_text(&doc, "#consequence-last")[0].contains("無効にできません"));
        assert!(select_text(&doc, "#confirm-disable-button").is_empty());
        assert!(!disabled("082040-admin"));
    }

    // With a second administrator: a page says what will happen first.
    app.create_account("koga-admin2", Role::MunicipalAdmin, Some("082040"), &[]);
    let res = disable(me.clone(), false).await;
    assert_eq!(res.status(), 200);
    let doc = html(&res.text().await.unwrap());
    assert!(select_text(&doc, "#consequence-yourself")[0].contains("すぐにログアウト"));
    assert!(!disabled("082040-admin"));
    assert_eq!(app.get("/admin/accounts").await.status(), 200);

    // Confirmed: done, and the login page says why the session ended.
    let res = disable(me, true).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login?notice=self_disabled");
    assert!(disabled("082040-admin"));
    let login = app
        .get("/login?notice=self_disabled")
        .await
        .text()
        .await
        .unwrap();
    assert!(login.contains("ご自身のアカウントを無効にしたため、ログアウトしました。"));
    assert_eq!(app.get("/admin/accounts").await.status(), 303);
    let mut conn = app.conn();
    vrs::audit::flush(&mut conn, &app.state.audit).unwrap();
    let details: Vec<Option<String>> = audit_log::table
        .filter(audit_log::chain.eq("082040"))
        .filter(audit_log::action.eq("account.disable"))
        .order(audit_log::seq)
        .select(audit_log::detail)
        .load(&mut conn)
        .unwrap();
    assert_eq!(details, [None, Some("yourself=1".to_string())]);
}

#[tokio::test]
async fn another_administrator_is_disabled_without_question_while_one_remains() {
    let app = spawn_app().await;
    app.seed_demo();
    let pw = app.create_account("koga-admin2", Role::MunicipalAdmin, Some("082040"), &[]);
    let csrf = app.login_as("koga-admin2", &pw).await;
    let disable = |login: &str| {
        let req = app
            .client
            .post(app.url(&format!(
                "/admin/accounts/{}/disable",
                account_id(&app, login)
            )))
            .form(&[("csrf", csrf.as_str())]);
        async move { req.send().await.unwrap() }
    };
    let res = disable("082040-admin").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/accounts");
    // Now koga-admin2 is the last one: it stays.
    assert_eq!(disable("koga-admin2").await.status(), 422);
}

/// Two administrators disabling each other at the same moment: the second
/// waits for the first and then finds itself the last one, on both
/// databases (PostgreSQL through a row lock, SQLite's writers in turn).
#[tokio::test]
async fn two_administrators_disabling_each_other_at_once_leave_one() {
    use vrs::db::models::accounts::AccountRow;
    let app = spawn_app().await;
    app.seed_demo();
    app.create_account("koga-admin2", Role::MunicipalAdmin, Some("082040"), &[]);
    let (first, second) = (
        account_id(&app, "082040-admin"),
        account_id(&app, "koga-admin2"),
    );
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let pool = app.state.pool.clone();
    let a = {
        let (pool, second) = (pool.clone(), second.clone());
        std::thread::spawn(move || {
            let mut conn = pool.get().unwrap();
            vrs::db::write_transaction(&mut conn, |conn| {
                // As `accounts::disable` does, holding the rows a while.
                AccountRow::lock_administrators(conn, "082040")?;
                locked_tx.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(300));
                AccountRow::disable(conn, &second, vrs::clock::now())
            })
            .unwrap();
        })
    };
    locked_rx.recv().unwrap();
    let mut conn = pool.get().unwrap();
    let actor = vrs::audit::Actor {
        account_id: Some(second.clone()),
        login_id: Some("koga-admin2".into()),
        client_addr: None,
    };
    let done = vrs::flows::accounts::disable(
        &mut conn,
        &app.state.audit,
        &actor,
        code("082040"),
        &first,
        true,
    )
    .unwrap();
    a.join().unwrap();
    assert_eq!(done, vrs::flows::accounts::Disabled::LastAdministrator);
    let active: i64 = accounts::table
        .filter(accounts::municipality_code.eq("082040"))
        .filter(accounts::role.eq("municipal_admin"))
        .filter(accounts::disabled_at.is_null())
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(active, 1);
}

/// What `/device` answers to a login and an enrolment code, with the
/// device key the browser was given, if any.
async fn enrol_device(s: &TestApp, login: &str, code: &str) -> (u16, Option<String>) {
    let page = s.get("/device").await.text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    let res = s
        .client
        .post(s.url("/device"))
        .form(&[("csrf", csrf.as_str()), ("login_id", login), ("code", code)])
        .send()
        .await
        .unwrap();
    let key = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("vrs_device="))
        .map(|c| c.split(';').next().unwrap_or_default().to_string());
    (res.status().as_u16(), key)
}

/// The enrolment code the administrator's page shows for a tablet.
async fn enrolment_code(admin: &TestApp, csrf: &str, id: &str) -> String {
    let res = admin
        .client
        .post(admin.url(&format!("/admin/accounts/{id}/device-code")))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    select_text(&html(&res.text().await.unwrap()), "#enrol-code code")[0].clone()
}

#[tokio::test]
async fn a_tablet_logs_in_only_from_the_device_it_was_enrolled_on_until_it_is_revoked() {
    let app = spawn_app().await;
    app.seed_demo();
    let admin = TestApp::handle(&app);
    let csrf = admin.login_as("082040-admin", DEMO_PASSWORD).await;
    let tablet_id: String = accounts::table
        .filter(accounts::login_id.eq("082040-tablet"))
        .select(accounts::id)
        .first(&mut *app.conn())
        .unwrap();
    let code = enrolment_code(&admin, &csrf, &tablet_id).await;
    assert_eq!(code.len(), 10);

    // A wrong code enrols nothing; the right one enrols the browser once.
    let device = TestApp::handle(&app);
    let (status, key) = enrol_device(&device, "082040-tablet", "WRONGCODE2").await;
    assert_eq!((status, key.is_none()), (422, true));
    let (status, key) = enrol_device(&device, "082040-tablet", &code.to_lowercase()).await;
    assert_eq!(status, 200);
    let key = key.expect("the device key cookie");
    let other = TestApp::handle(&app);
    assert_eq!(
        enrol_device(&other, "082040-tablet", &code).await.1,
        None,
        "used once"
    );

    // The enrolled browser logs in; another browser, with the password, not.
    device.login_as("082040-tablet", DEMO_PASSWORD).await;
    assert_eq!(device.get("/site").await.status(), 200);
    other.login_form_csrf().await;
    let refused = other.post_login("082040-tablet", DEMO_PASSWORD).await;
    assert_ne!(
        refused
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap()),
        Some("/dashboard")
    );
    assert!(other.get("/site").await.status() != 200);
    // The API takes the device key in the login request.
    let api = |key: Option<&str>| {
        let body = match key {
            Some(k) => {
                serde_json::json!({"login_id": "082040-tablet", "password": DEMO_PASSWORD, "device_key": k})
            }
            None => serde_json::json!({"login_id": "082040-tablet", "password": DEMO_PASSWORD}),
        };
        let c = other.client.post(other.url("/api/v1/sessions")).json(&body);
        async move { c.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(api(None).await, 401);
    assert_eq!(api(Some("not the key")).await, 401);
    assert_eq!(api(Some(&key)).await, 201);
    // The admin sees it enrolled; the log says so.
    let page = admin.get("/admin/accounts").await.text().await.unwrap();
    let state = select_text(&html(&page), "tr[data-login='082040-tablet'] .device-state");
    assert!(state[0].contains("端末登録"), "{state:?}");

    // Revoked: the enrolled browser's session ends and it logs in no more.
    let res = admin
        .client
        .post(admin.url(&format!("/admin/accounts/{tablet_id}/device-revoke")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(device.get("/site").await.status() != 200);
    device.login_form_csrf().await;
    let res = device.post_login("082040-tablet", DEMO_PASSWORD).await;
    // Unbound and not required: the password alone works again, as it did
    // before enrolment — until the municipality requires enrolment.
    assert_eq!(res.headers()["location"], "/site");
    let page = admin.get("/admin/networks").await.text().await.unwrap();
    let ncsrf = hidden(&page, "csrf");
    let res = admin
        .client
        .post(admin.url("/admin/security"))
        .form(&[("csrf", ncsrf.as_str()), ("require_devices", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let fresh = TestApp::handle(&app);
    fresh.login_form_csrf().await;
    let res = fresh.post_login("082040-tablet", DEMO_PASSWORD).await;
    assert_ne!(
        res.headers().get("location").map(|l| l.to_str().unwrap()),
        Some("/site")
    );
    // Other roles are not affected.
    fresh.login_as("082040-staff", DEMO_PASSWORD).await;
    let lines: Vec<String> = {
        vrs::audit::flush(&mut app.conn(), &app.state.audit).unwrap();
        audit_log::table
            .filter(audit_log::chain.eq("082040"))
            .filter(audit_log::action.like("account.device_%"))
            .order(audit_log::seq)
            .select(audit_log::action)
            .load(&mut *app.conn())
            .unwrap()
    };
    assert_eq!(
        lines,
        [
            "account.device_code",
            "account.device_enrol",
            "account.device_revoke"
        ]
    );
}

#[tokio::test]
async fn a_shared_tablet_account_is_flagged_until_reviewed_and_its_review_is_logged() {
    let app = spawn_app().await;
    app.seed_demo();
    let admin = TestApp::handle(&app);
    let csrf = admin.login_as("082040-admin", DEMO_PASSWORD).await;
    let row = |page: &str, login: &str, css: &str| {
        select_text(&html(page), &format!("tr[data-login='{login}'] {css}"))
    };
    let page = admin.get("/admin/accounts").await.text().await.unwrap();
    // Never reviewed: due now. Staff accounts are not shared.
    assert_eq!(row(&page, "082040-tablet", ".shared-review-due").len(), 1);
    assert!(row(&page, "082040-staff", ".shared-review").is_empty());
    let tablet_id: String = accounts::table
        .filter(accounts::login_id.eq("082040-tablet"))
        .select(accounts::id)
        .first(&mut *app.conn())
        .unwrap();
    let res = admin
        .client
        .post(admin.url(&format!("/admin/accounts/{tablet_id}/shared-review")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let page = admin.get("/admin/accounts").await.text().await.unwrap();
    assert!(row(&page, "082040-tablet", ".shared-review-due").is_empty());
    let next = vrs::flows::accounts::next_shared_review(vrs::clock::today_in_japan());
    assert!(row(&page, "082040-tablet", ".shared-review")[0].contains(&next.to_string()));
    // A staff account is not a shared one to review.
    let staff_id: String = accounts::table
        .filter(accounts::login_id.eq("082040-staff"))
        .select(accounts::id)
        .first(&mut *app.conn())
        .unwrap();
    let res = admin
        .client
        .post(admin.url(&format!("/admin/accounts/{staff_id}/shared-review")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    vrs::audit::flush(&mut app.conn(), &app.state.audit).unwrap();
    let n: i64 = audit_log::table
        .filter(audit_log::chain.eq("082040"))
        .filter(audit_log::action.eq("account.shared_review"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(n, 1);
}
