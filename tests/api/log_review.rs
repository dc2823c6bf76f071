//! The administrator's review of the operation log: a search over the
//! whole chain by each filter, with paging; lines in words; the
//! per-account report and its notice; reviews recorded and flagged when
//! overdue; and a resident's access record for a disclosure request.

use crate::helpers::*;
use vrs::demo::{DEMO_PASSWORD, MOVER_NUMBER};
use vrs::domain::Role;
use vrs::flows::residents::Resident;

const MUNI: &str = "082040";

fn mover(app: &TestApp) -> Resident {
    app.holder_of(MUNI, MOVER_NUMBER).expect("the demo mover")
}

/// `n` lines of another account's searches, written straight to the chain
/// in one transaction (the log as months of work leave it).
fn filler(app: &TestApp, n: usize) {
    let mut conn = app.conn();
    let actor = vrs::audit::Actor::account("filler-id", "082040-filler", "192.0.2.9");
    vrs::db::write_transaction(&mut conn, |c| {
        for i in 0..n {
            vrs::audit::append(
                c,
                &app.state.audit,
                &actor,
                vrs::audit::Entry::done(MUNI, "resident.search", None, Some(format!("n={i}"))),
            )?;
        }
        Ok::<_, vrs::db::DbError>(())
    })
    .unwrap();
}

async fn admin(app: &TestApp) -> (TestApp, String) {
    let a = TestApp::handle(app);
    let csrf = a.login_as("082040-admin", DEMO_PASSWORD).await;
    (a, csrf)
}

async fn get(s: &TestApp, path: &str) -> (u16, String) {
    let res = s.get(path).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn post(s: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = s.client.post(s.url(path)).form(form).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The municipality's review settings, working hours 8–19, a review every
/// 30 days.
async fn save_settings(admin: &TestApp, csrf: &str, threshold: &str, names: bool) -> (u16, String) {
    let mut form = vec![
        ("csrf", csrf),
        ("working_from", "8"),
        ("working_until", "19"),
        ("volume_threshold", threshold),
        ("review_every_days", "30"),
    ];
    if names {
        form.push(("access_record_names", "1"));
    }
    post(admin, "/admin/log/settings", &form).await
}

/// The rows of the log page: (seq, account, action, target, outcome).
fn rows(page: &str) -> Vec<(i64, String, String, String, String)> {
    let doc = html(page);
    let tr = scraper::Selector::parse("#log tbody tr").unwrap();
    let td = scraper::Selector::parse("td").unwrap();
    doc.select(&tr)
        .map(|r| {
            let c: Vec<String> = r
                .select(&td)
                .map(|d| d.text().collect::<String>().trim().to_string())
                .collect();
            (
                c[0].parse().unwrap(),
                c[2].clone(),
                c[4].clone(),
                c[5].clone(),
                c[6].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_log_search_finds_a_line_thousands_back_by_each_filter_and_pages_through_all() {
    let app = spawn_app().await;
    app.seed_demo();
    let person = mover(&app);
    // An early clerk: one refused login, then one look at the mover.
    let pw = app.create_account(
        "082040-early",
        Role::MunicipalStaff,
        Some(MUNI),
        &["residents"],
    );
    let early = TestApp::handle(&app);
    early.login_form_csrf().await;
    let refused = early.post_login("082040-early", "not the password 1").await;
    assert_ne!(refused.status().as_u16(), 303);
    early.login_as("082040-early", &pw).await;
    let (status, _) = get(&early, &format!("/residents/{}", person.id)).await;
    assert_eq!(status, 200);
    filler(&app, 3_000);
    let (admin, _) = admin(&app).await;

    // By account: the early clerk's lines, though 3,000 came after.
    let (status, page) = get(&admin, "/admin/log?login=082040-early").await;
    assert_eq!(status, 200, "{page}");
    let found = rows(&page);
    let view = found
        .iter()
        .find(|r| r.2 == "記録の閲覧")
        .expect("the record view is found by its account");
    assert_eq!(view.1, "082040-early");
    let addressee = person.addressee_number.as_str().to_string();
    assert_eq!(
        view.3,
        format!("宛名番号 {addressee}"),
        "the target as what it is"
    );
    assert_eq!(view.4, "成功");
    assert!(found.iter().any(|r| r.2 == "ログイン" && r.4 == "拒否"));
    // No raw codes, no internal ids, no individual number.
    let table = select_text(&html(&page), "#log").join(" ");
    assert!(!table.contains("resident.view"));
    assert!(!table.contains(&person.id));
    assert!(!page.contains(MOVER_NUMBER));

    // By action, chosen from the list.
    let (_, page) = get(&admin, "/admin/log?action=resident.view").await;
    assert!(rows(&page).iter().any(|r| r.0 == view.0));
    let doc = html(&page);
    assert!(!select_text(&doc, "select#action option[value='resident.view']").is_empty());
    // By outcome.
    let (_, page) = get(&admin, "/admin/log?outcome=refused").await;
    let r = rows(&page);
    assert!(r.iter().any(|r| r.1 == "082040-early" && r.2 == "ログイン"));
    assert!(r.iter().all(|r| r.4 == "拒否"));
    // By resident, named by 宛名番号.
    let (_, page) = get(&admin, &format!("/admin/log?addressee={addressee}")).await;
    let r = rows(&page);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].0, view.0);
    // By period: today holds it, yesterday does not.
    let today = vrs::clock::today_in_japan();
    let yesterday = today.pred_opt().unwrap();
    let (_, page) = get(
        &admin,
        &format!("/admin/log?login=082040-early&from={today}&until={today}"),
    )
    .await;
    assert!(rows(&page).iter().any(|r| r.0 == view.0));
    let (_, page) = get(
        &admin,
        &format!("/admin/log?login=082040-early&from={yesterday}&until={yesterday}"),
    )
    .await;
    assert!(rows(&page).is_empty());
    assert!(page.contains("id=\"log-empty\""));

    // Unfiltered, the pages lead back to it, 50 lines each, none twice.
    let (_, mut page) = get(&admin, "/admin/log").await;
    let mut seen = std::collections::HashSet::new();
    let mut pages = 0;
    loop {
        let r = rows(&page);
        assert!(r.len() <= 50);
        for row in &r {
            assert!(seen.insert(row.0), "line {} shown twice", row.0);
        }
        pages += 1;
        if r.iter().any(|row| row.0 == view.0) {
            break;
        }
        let older = select_attr(&page, "#log-older", "href").expect("a link to older lines");
        page = get(&admin, &older).await.1;
    }
    assert!(pages > 50, "{pages}");

    // The CSV of a search holds it too, in words.
    let (status, csv) = get(&admin, "/admin/log.csv?login=082040-early").await;
    assert_eq!(status, 200);
    assert!(csv.contains("記録の閲覧"));
    assert!(!csv.contains("082040-filler"));

    // An action that is not on the list is refused with the field named.
    let (status, page) = get(&admin, "/admin/log?action=doses.queue.view%27").await;
    assert_eq!(status, 422);
    assert!(select_text(&html(&page), "#log-errors")[0].contains("操作"));
    let (status, page) = get(&admin, "/admin/log?from=2026-13-01").await;
    assert_eq!(status, 422);
    assert!(select_text(&html(&page), "#log-errors")[0].contains("開始日"));
    let (status, page) = get(&admin, "/admin/log?addressee=999999").await;
    assert_eq!(status, 422);
    assert!(select_text(&html(&page), "#log-errors")[0].contains("宛名番号"));
}

/// The value of an attribute of the first element matching `css`.
fn select_attr(page: &str, css: &str, attr: &str) -> Option<String> {
    let doc = html(page);
    let sel = scraper::Selector::parse(css).unwrap();
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr(attr))
        .map(str::to_string)
}

#[tokio::test]
async fn the_report_counts_each_accounts_lookups_views_exports_and_prints_and_raises_a_notice() {
    let app = spawn_app().await;
    app.seed_demo();
    let person = mover(&app);
    let (clerk, csrf) = app.staff_of_named(MUNI, "082040-busy").await;
    let (quiet, _) = app.staff_with(MUNI, "082040-quiet", &["residents"]).await;
    for _ in 0..3 {
        let (status, _) = post(
            &clerk,
            "/residents/by-number",
            &[
                ("csrf", &csrf),
                ("my_number", MOVER_NUMBER),
                ("purpose", "certificate_lookup"),
            ],
        )
        .await;
        assert_eq!(status, 200);
    }
    let record = format!("/residents/{}", person.id);
    for _ in 0..2 {
        assert_eq!(get(&clerk, &record).await.0, 200);
    }
    assert_eq!(get(&clerk, &format!("{record}/ticket")).await.0, 200);
    assert_eq!(get(&clerk, "/exports/doses.csv").await.0, 200);
    assert_eq!(get(&quiet, &record).await.0, 200);

    let (admin, admin_csrf) = admin(&app).await;
    let (status, _) = save_settings(&admin, &admin_csrf, "5", true).await;
    assert_eq!(status, 303);
    let (status, page) = get(&admin, "/admin/log/report").await;
    assert_eq!(status, 200, "{page}");
    let doc = html(&page);
    let cell = |login: &str, col: &str| {
        select_text(
            &doc,
            &format!("#report tr[data-login='{login}'] td[data-col='{col}']"),
        )
        .first()
        .cloned()
        .unwrap_or_default()
    };
    assert_eq!(cell("082040-busy", "number"), "3");
    assert_eq!(cell("082040-busy", "view"), "2");
    assert_eq!(cell("082040-busy", "print"), "1");
    assert_eq!(cell("082040-busy", "export"), "1");
    assert_eq!(cell("082040-quiet", "number"), "0");
    assert_eq!(cell("082040-quiet", "view"), "1");
    // The busy account passed the threshold (7 > 5), the quiet one not.
    let over =
        |login: &str| select_text(&doc, &format!("#report tr[data-login='{login}'] .badge")).len();
    assert_eq!(over("082040-busy"), 1);
    assert_eq!(over("082040-quiet"), 0);
    assert!(page.contains("id=\"volume-raised\""));
    // The notice is on the administrators' home page, once.
    let (_, home) = get(&admin, "/dashboard").await;
    let notices = select_text(&html(&home), "li[data-kind='access_volume']");
    assert_eq!(
        notices.len(),
        1,
        "{}",
        select_text(&html(&home), "#notices").join("")
    );
    assert!(notices[0].contains("082040-busy"));
    get(&admin, "/admin/log/report").await;
    let (_, home) = get(&admin, "/dashboard").await;
    assert_eq!(
        select_text(&html(&home), "li[data-kind='access_volume']").len(),
        1
    );

    // Settings out of range are refused, naming the field.
    let (status, page) = post(
        &admin,
        "/admin/log/settings",
        &[
            ("csrf", &admin_csrf),
            ("working_from", "20"),
            ("working_until", "30"),
            ("volume_threshold", "x"),
            ("review_every_days", "30"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    let errors = select_text(&html(&page), "#report-errors")[0].clone();
    assert!(errors.contains("勤務終了"), "{errors}");
    assert!(errors.contains("1日の件数の基準"), "{errors}");
}

#[tokio::test]
async fn reviews_are_recorded_with_who_when_and_a_note_and_an_overdue_one_is_flagged() {
    let app = spawn_app().await;
    app.seed_demo();
    let (admin, csrf) = admin(&app).await;
    let (_, page) = get(&admin, "/admin/log").await;
    assert!(page.contains("id=\"log-review-overdue\""));
    assert!(page.contains("id=\"accounts-review-overdue\""));

    let today = vrs::clock::today_in_japan().to_string();
    let (status, page) = post(
        &admin,
        "/admin/log/reviews",
        &[
            ("csrf", &csrf),
            ("kind", "log"),
            ("from", "2026-11-01"),
            ("until", &today),
            ("note", " "),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(select_text(&html(&page), "#log-errors")[0].contains("所見"));

    let (status, _) = post(
        &admin,
        "/admin/log/reviews",
        &[
            ("csrf", &csrf),
            ("kind", "log"),
            ("from", "2026-11-01"),
            ("until", &today),
            ("note", "時間外の利用なし。"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, page) = get(&admin, "/admin/log?done=reviewed").await;
    assert!(!page.contains("id=\"log-review-overdue\""));
    assert!(page.contains("id=\"accounts-review-overdue\""));
    let doc = html(&page);
    let reviews = select_text(&doc, "#reviews tbody tr");
    assert_eq!(reviews.len(), 1);
    assert!(reviews[0].contains("082040-admin"));
    assert!(reviews[0].contains("時間外の利用なし。"));
    assert!(reviews[0].contains(&format!("2026-11-01 – {today}")));

    let (status, _) = post(
        &admin,
        "/admin/log/reviews",
        &[
            ("csrf", &csrf),
            ("kind", "accounts"),
            ("from", &today),
            ("until", &today),
            ("note", "退職者のアカウントなし。"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, page) = get(&admin, "/admin/accounts").await;
    assert!(!page.contains("id=\"accounts-review-overdue\""));
    assert!(select_text(&html(&page), "#accounts-review")[0].contains("082040-admin"));
    // Both reviews are lines of the log.
    let (_, page) = get(&admin, "/admin/log?action=group:admin").await;
    let r = rows(&page);
    assert!(r.iter().any(|r| r.2 == "操作ログの点検"));
    assert!(r.iter().any(|r| r.2 == "アカウントの点検"));
}

#[tokio::test]
async fn the_access_record_lists_every_access_to_the_resident_with_why_and_names_by_choice() {
    let app = spawn_app().await;
    app.seed_demo();
    app.declare_lgwan(MUNI);
    let person = mover(&app);
    let record = format!("/residents/{}", person.id);
    let (clerk, csrf) = app
        .staff_with(MUNI, "082040-window", &["residents", "my_number"])
        .await;
    // Looked up by number, viewed, reissued (lost), printed, corrected.
    let (status, _) = post(
        &clerk,
        "/residents/by-number",
        &[
            ("csrf", &csrf),
            ("my_number", MOVER_NUMBER),
            ("purpose", "certificate_lookup"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(get(&clerk, &record).await.0, 200);
    let (status, _) = post(
        &clerk,
        &format!("{record}/reissue"),
        &[("csrf", &csrf), ("why", "lost"), ("reason", "本人申出")],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(get(&clerk, &format!("{record}/ticket")).await.0, 200);
    let (status, _) = post(
        &clerk,
        &format!("{record}/correct"),
        &[
            ("csrf", &csrf),
            ("name_kanji", "古河 訂正"),
            ("name_kana", person.name_kana.as_str()),
            ("birth_date", &person.birth_date.date().to_string()),
            ("sex", person.sex.code()),
            ("address", person.address.as_deref().unwrap_or("")),
            ("reason", "転記誤りの訂正"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    // Another municipality asks about the mover: a provision record.
    app.declare_lgwan("131016");
    let asking = TestApp::handle(&app);
    let acsrf = asking.login_as("131016-staff", DEMO_PASSWORD).await;
    let (status, _) = asking
        .client
        .post(asking.url("/transfers"))
        .form(&[
            ("csrf", acsrf.as_str()),
            ("my_number", MOVER_NUMBER),
            ("my_number_again", MOVER_NUMBER),
            ("source", MUNI),
            ("consent", "1"),
            ("id_document", "my_number_card"),
            ("checked_by", "窓口　一郎"),
            ("purpose", "ticket_issuance"),
        ])
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 200);

    // Without the permission: refused; from another municipality: not found.
    assert_eq!(get(&clerk, &format!("{record}/access-record")).await.0, 403);
    let (other, _) = app
        .staff_with("131016", "131016-discloser", &["disclosure"])
        .await;
    assert_eq!(get(&other, &format!("{record}/access-record")).await.0, 404);

    let (discloser, _) = app
        .staff_with(MUNI, "082040-discloser", &["residents", "disclosure"])
        .await;
    let (status, page) = get(&discloser, &format!("{record}/access-record")).await;
    assert_eq!(status, 200, "{page}");
    let doc = html(&page);
    let lines = select_text(&doc, "#access tbody tr");
    let has = |what: &str, also: &str| lines.iter().any(|l| l.contains(what) && l.contains(also));
    assert!(has("個人番号による検索", "接種証明書の交付"), "{lines:#?}");
    assert!(has("記録の閲覧", "082040-window"));
    assert!(has("接種券の再発行", "紛失"));
    assert!(has("接種券の印刷", "082040-window"));
    assert!(has("記録の訂正", "転記誤りの訂正"));
    assert!(
        has("照会への回答（提供）", "他団体からの照会への回答"),
        "{lines:#?}"
    );
    // The asking municipality's staff are not named: the provision record
    // says which municipality asked.
    assert!(has("照会への回答（提供）", "他の団体の職員"), "{lines:#?}");
    assert!(!page.contains("131016-staff"));
    assert_eq!(select_text(&doc, "#access-provisions tbody tr").len(), 1);
    assert_eq!(
        select_text(&doc, "#access-addressee"),
        [person.addressee_number.as_str()]
    );
    assert!(!page.contains(MOVER_NUMBER));
    // Every line of the log about the resident is on it, none other: the
    // log holds one more, the production of this record.
    let (admin, admin_csrf) = admin(&app).await;
    let addressee = person.addressee_number.as_str().to_string();
    let (_, log) = get(&admin, &format!("/admin/log?addressee={addressee}")).await;
    let logged = rows(&log);
    assert_eq!(logged.len(), lines.len() + 1, "{lines:#?}");
    assert_eq!(logged[0].2, "アクセス記録の作成");

    // Where the municipality names no staff, the office stands for them.
    let (status, _) = save_settings(&admin, &admin_csrf, "300", false).await;
    assert_eq!(status, 303);
    let (_, page) = get(&discloser, &format!("{record}/access-record")).await;
    assert!(!page.contains("082040-window"));
    assert!(!page.contains("082040-discloser"));
    assert!(select_text(&html(&page), "#access tbody tr")[0].contains("古河市 担当課"));
    // Producing the record is itself a line of the log.
    let (_, log) = get(&admin, "/admin/log?action=resident.access_record").await;
    assert_eq!(rows(&log).len(), 2);
}
