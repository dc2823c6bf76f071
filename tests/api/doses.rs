//! Flow 2 over HTTP: sites scan tickets and record doses, into the partition
//! of the municipality that issued the ticket, once per idempotency key,
//! with the data-quality rules sending doubtful doses to the 要確認 queue.

use crate::helpers::*;
use diesel::prelude::*;
use vrs::db::schema::{audit_log, doses, tickets};
use vrs::demo::DEMO_PASSWORD;
use vrs::domain::Role;

/// A ticket of `muni` as a site types it (code + number), with its
/// resident's id, for demo resident `i` (by ticket order).
fn demo_tickets(app: &TestApp, muni: &str) -> Vec<(String, String)> {
    let mut conn = app.conn();
    conn.transaction(|c| {
        vrs::db::set_transaction_municipality(c, muni).unwrap();
        tickets::table
            .filter(tickets::municipality_code.eq(muni))
            .order(tickets::ticket_number)
            .select((tickets::ticket_number, tickets::resident_id))
            .load::<(String, String)>(c)
    })
    .unwrap()
    .into_iter()
    .map(|(t, r)| (format!("{muni}{t}"), r))
    .collect()
}

/// Doses stored in `muni`'s partition: (resident, dose number, status, rules, site).
type DoseLine = (String, i32, String, Option<String>, Option<String>);
fn doses_of(app: &TestApp, muni: &str) -> Vec<DoseLine> {
    let mut conn = app.conn();
    conn.transaction(|c| {
        vrs::db::set_transaction_municipality(c, muni).unwrap();
        doses::table
            .filter(doses::municipality_code.eq(muni))
            .order(doses::recorded_at)
            .select((
                doses::resident_id,
                doses::dose_number,
                doses::status,
                doses::quality_flags,
                doses::site_name,
            ))
            .load(c)
    })
    .unwrap()
}

fn audit_count(app: &TestApp) -> i64 {
    vrs::audit::flush(&mut app.conn(), &app.state.audit).unwrap();
    audit_log::table
        .count()
        .get_result(&mut app.conn())
        .unwrap()
}

/// Every individual number and kanji name of `muni`'s residents, opened
/// with the municipality's key: what a site must never receive.
fn secrets_of(app: &TestApp, muni: &str) -> Vec<String> {
    let mut conn = app.conn();
    let p = vrs::tenancy::Partition::open(&mut conn, app.master(), code(muni)).unwrap();
    let ids: Vec<String> = demo_tickets(app, muni)
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    p.run(&mut conn, |scope, c| {
        let mut out = Vec::new();
        for id in &ids {
            let r = vrs::flows::residents::get(scope, c, id)?.unwrap();
            if let Some(n) = r.my_number {
                out.push(String::from_utf8(n.expose_digits().to_vec()).unwrap());
            }
            out.push(r.name_kanji.as_str().to_string());
            out.push(r.name_kana.as_str().to_string());
        }
        Ok::<_, vrs::flows::residents::ResidentError>(out)
    })
    .unwrap()
}

fn assert_clean(body: &str, secrets: &[String], what: &str) {
    for s in secrets {
        assert!(!body.contains(s.as_str()), "{what} leaks a personal value");
    }
}

impl TestApp {
    /// Signs a machine client in through the API; returns its bearer token.
    pub async fn api_token(&self, login: &str, password: &str) -> String {
        let res = self
            .client
            .post(self.url("/api/v1/sessions"))
            .json(&serde_json::json!({"login_id": login, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "api login as {login}");
        res.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn api_dose(
        &self,
        token: &str,
        key: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let res = self
            .client
            .post(self.url("/api/v1/doses"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or_default())
    }

    /// The tablet's scan step: the confirm page's HTML.
    pub async fn scan(&self, csrf: &str, ticket: &str) -> (u16, String) {
        let res = self
            .client
            .post(self.url("/site/scan"))
            .form(&[("csrf", csrf), ("ticket", ticket)])
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }
}

fn today() -> String {
    vrs::clock::today_in_japan().to_string()
}

#[tokio::test]
async fn a_site_of_one_municipality_records_another_municipalitys_ticket_into_its_partition() {
    let app = spawn_app().await;
    app.seed_demo();
    // The tablet of 古河市's demo site; the ticket of a 千代田区 resident with
    // no dose yet (demo residents 0, 3, 6 … have none).
    let site = TestApp::handle(&app);
    let csrf = site.login_as("082040-tablet", DEMO_PASSWORD).await;
    let (ticket, resident) = demo_tickets(&app, "131016")
        .into_iter()
        .find(|(_, r)| !doses_of(&app, "131016").iter().any(|d| &d.0 == r))
        .unwrap();
    let before_b = doses_of(&app, "082040").len();
    let secrets = secrets_of(&app, "131016");

    let (status, confirm) = site.scan(&csrf, &ticket).await;
    assert_eq!(status, 200);
    assert_clean(&confirm, &secrets, "the confirm screen");
    let doc = html(&confirm);
    assert_eq!(
        select_text(&doc, "#preview-municipality"),
        ["東京都千代田区"]
    );
    assert_eq!(select_text(&doc, "#preview-ticket"), [&ticket[6..]]);
    assert!(select_text(&doc, "#preview-dose")[0].contains('1'));
    assert!(select_text(&doc, "#blocks").is_empty());
    let form = [
        ("csrf", csrf.clone()),
        ("ticket", hidden(&confirm, "ticket")),
        ("key", hidden(&confirm, "key")),
        ("dose_number", hidden(&confirm, "dose_number")),
        ("product", "PFZ_JN1_12P".into()),
        ("lot", "fa1000".into()),
        ("administered_on", today()),
    ];
    // A hidden dose number changed in the page is refused as the API
    // refuses it, and nothing is recorded.
    for tampered in ["x", "0", "100", "1\u{0}"] {
        let mut bad = form.clone();
        bad[3].1 = tampered.to_string();
        let res = site
            .client
            .post(site.url("/site/doses"))
            .form(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{tampered:?}");
    }
    assert!(!doses_of(&app, "131016").iter().any(|d| d.0 == resident));
    let res = site
        .client
        .post(site.url("/site/doses"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let next = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        next.starts_with("/site?recorded=1&queued=0&m=131016"),
        "{next}"
    );
    let done = site.get(&next).await.text().await.unwrap();
    assert_eq!(
        select_text(&html(&done), "#recorded .tablet-outcome__title").len(),
        1
    );
    assert_clean(&done, &secrets, "the success screen");
    // The product and lot are remembered for the next person.
    let again = site.scan(&csrf, &ticket).await.1;
    assert_eq!(hidden(&again, "lot"), "FA1000");

    // The dose is in 千代田区's partition, with the site's name; 古河市's
    // partition did not change.
    let stored: Vec<DoseLine> = doses_of(&app, "131016")
        .into_iter()
        .filter(|d| d.0 == resident)
        .collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, 1);
    assert_eq!(stored[0].2, "valid");
    assert_eq!(stored[0].4.as_deref(), Some("デモ集団接種会場"));
    assert_eq!(doses_of(&app, "082040").len(), before_b);
    // The record of it is in 千代田区's operation log, not 古河市's.
    vrs::audit::flush(&mut app.conn(), &app.state.audit).unwrap();
    let lines: Vec<(String, String)> = audit_log::table
        .filter(audit_log::action.eq("doses.record"))
        .select((audit_log::chain, audit_log::login_id.assume_not_null()))
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(
        lines,
        vec![("131016".to_string(), "082040-tablet".to_string())]
    );
    // 古河市's staff see nothing of it: not in their queue, not in their export.
    let b_staff = TestApp::handle(&app);
    b_staff.login_as("082040-staff", DEMO_PASSWORD).await;
    let export = b_staff
        .get("/exports/doses.csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(!export.contains(&ticket[6..]));
    // No page a site account can open carries a personal value.
    for path in ["/dashboard", "/site", "/totp", "/password"] {
        let res = site.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_clean(&res.text().await.unwrap(), &secrets, path);
    }
    // A site account reaches no staff page.
    for path in [
        "/residents",
        "/residents/by-number",
        "/doses/queue",
        "/exports/doses.csv",
    ] {
        assert_eq!(site.get(path).await.status(), 403, "{path}");
    }
}

#[tokio::test]
async fn a_typed_wrong_check_digit_is_refused_before_anything_is_written() {
    let app = spawn_app().await;
    app.seed_demo();
    let site = TestApp::handle(&app);
    let csrf = site.login_as("082040-tablet", DEMO_PASSWORD).await;
    let (ticket, _) = demo_tickets(&app, "131016").remove(0);
    // 131016 → 131017: the check digit no longer holds.
    let wrong = format!("131017{}", &ticket[6..]);
    let before = (audit_count(&app), doses_of(&app, "131016").len());
    let (status, page) = site.scan(&csrf, &wrong).await;
    assert_eq!(status, 422);
    let err = select_text(&html(&page), "#scan-error").join("");
    assert!(
        err.contains("接種券") && err.contains("チェックデジット"),
        "{err}"
    );
    assert!(select_text(&html(&page), "#preview").is_empty());
    let token = site.api_token("082040-tablet", DEMO_PASSWORD).await;
    let after_login = audit_count(&app);
    let (status, body) = site
        .api_dose(
            &token,
            "0123456789abcdef-wrong",
            serde_json::json!({"ticket": wrong, "administered_on": today(),
                "product_code": "PFZ_JN1_12P", "lot_number": "FA1000"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "ticket");
    assert_eq!(body["message_en"], "check digit does not match");
    assert_eq!(doses_of(&app, "131016").len(), before.1);
    // Only the API login wrote a line; the refused scans wrote nothing.
    assert_eq!(before.0 + 1, after_login);
    assert_eq!(audit_count(&app), after_login);
    // A well-formed number the municipality never issued: the same answer
    // whether the code or the number is wrong, and nothing stored.
    let (status, page) = site.scan(&csrf, "1310169999999999").await;
    assert_eq!(status, 422);
    assert!(select_text(&html(&page), "#scan-error")[0].contains("見つかりません"));
    // The full OCR line of the real ticket (券種 1, 回数 1) reads; one whose
    // 回数 was misread as 4 does not.
    assert_eq!(site.scan(&csrf, &format!("11{ticket}")).await.0, 200);
    let (status, page) = site.scan(&csrf, &format!("14{ticket}")).await;
    assert_eq!(status, 422);
    assert!(select_text(&html(&page), "#scan-error")[0].contains("見つかりません"));
    let (status, page) = site.scan(&csrf, &format!("271004{}", &ticket[6..])).await;
    assert_eq!(
        status, 422,
        "a municipality with no partition answers the same"
    );
    assert!(select_text(&html(&page), "#scan-error")[0].contains("見つかりません"));
    assert_eq!(doses_of(&app, "131016").len(), before.1);
}

#[tokio::test]
async fn the_same_scan_submitted_twice_and_concurrently_records_one_dose() {
    let app = spawn_app().await;
    app.seed_demo();
    let site = TestApp::handle(&app);
    let csrf = site.login_as("131016-tablet", DEMO_PASSWORD).await;
    let fresh: Vec<(String, String)> = demo_tickets(&app, "082040")
        .into_iter()
        .filter(|(_, r)| !doses_of(&app, "082040").iter().any(|d| &d.0 == r))
        .collect();
    // The form submitted twice (a double tap, or a reload after a dropped
    // connection): one dose.
    let (ticket, resident) = fresh[0].clone();
    let confirm = site.scan(&csrf, &ticket).await.1;
    let form = [
        ("csrf", csrf.clone()),
        ("ticket", ticket.clone()),
        ("key", hidden(&confirm, "key")),
        ("dose_number", "1".into()),
        ("product", "PFZ_JN1_12P".into()),
        ("lot", "FA1001".into()),
        ("administered_on", today()),
    ];
    for _ in 0..2 {
        let res = site
            .client
            .post(site.url("/site/doses"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
    }
    let count = |r: &str| doses_of(&app, "082040").iter().filter(|d| d.0 == r).count();
    assert_eq!(count(&resident), 1);

    // The same request eight times at once through the API: one dose, and
    // every answer names it.
    let (ticket, resident) = fresh[1].clone();
    let token = site.api_token("131016-tablet", DEMO_PASSWORD).await;
    let body = serde_json::json!({"ticket": ticket, "administered_on": today(),
        "product_code": "PFZ_JN1_12P", "lot_number": "FA1001"});
    let one = || site.api_dose(&token, "concurrent-key-000000001", body.clone());
    let (a, b, c, d, e, f, g, h) =
        tokio::join!(one(), one(), one(), one(), one(), one(), one(), one());
    let answers = [a, b, c, d, e, f, g, h];
    let ids: Vec<&str> = answers
        .iter()
        .map(|(s, b)| {
            assert!(*s == 201 || *s == 200, "{s} {b}");
            b["dose_id"].as_str().unwrap()
        })
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]));
    assert_eq!(answers.iter().filter(|(s, _)| *s == 201).count(), 1);
    assert_eq!(count(&resident), 1);
    // The key reused for another ticket is refused, not silently replayed.
    let other = serde_json::json!({"ticket": fresh[2].0, "administered_on": today(),
        "product_code": "PFZ_JN1_12P", "lot_number": "FA1001"});
    let (status, b) = site
        .api_dose(&token, "concurrent-key-000000001", other)
        .await;
    // Another municipality's partition holds no dose with this key; in the
    // same municipality it is a conflict.
    assert_eq!(status, 409, "{b}");
    assert_eq!(b["error"], "idempotency_key_reused");
}

#[tokio::test]
async fn each_data_quality_rule_sends_its_case_to_the_queue_where_staff_resolve_it() {
    let app = spawn_app().await;
    app.seed_demo();
    let site = TestApp::handle(&app);
    let token = site.api_token("082040-tablet", DEMO_PASSWORD).await;
    let muni = "131016";
    let all = demo_tickets(&app, muni);
    let stored = doses_of(&app, muni);
    let with_n = |n: usize| -> Vec<(String, String)> {
        all.iter()
            .filter(|(_, r)| stored.iter().filter(|d| &d.0 == r).count() == n)
            .cloned()
            .collect()
    };
    let (none, one, three) = (with_n(0), with_n(1), with_n(3));
    let post = |ticket: &str, date: &str, lot: &str, key: &'static str| {
        let body = serde_json::json!({"ticket": ticket, "administered_on": date,
            "product_code": "PFZ_JN1_12P", "lot_number": lot});
        site.api_dose(&token, key, body)
    };
    let tomorrow = (vrs::clock::today_in_japan() + chrono::Duration::days(1)).to_string();
    // Flag one person as moved out, as staff would (this invalidates the
    // ticket; the site still reaches the municipality through the queue).
    {
        let mut conn = app.conn();
        let p = vrs::tenancy::Partition::open(&mut conn, app.master(), code(muni)).unwrap();
        p.run(&mut conn, |scope, c| {
            vrs::flows::residents::set_flag(
                scope,
                c,
                &none[5].1,
                vrs::flows::residents::Flag::MovedOut,
                Some(chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()),
                &vrs::domain::ChangeReason::parse("転出届").unwrap(),
                "test",
            )
        })
        .unwrap();
    }
    let cases = [
        (
            "future_date",
            post(&none[0].0, &tomorrow, "FA1000", "rule-future-0000001").await,
        ),
        (
            "before_birth",
            post(&none[1].0, "1901-01-01", "FA1000", "rule-birth-00000001").await,
        ),
        (
            "out_of_order",
            post(&one[0].0, "2021-01-01", "FA1000", "rule-order-00000001").await,
        ),
        (
            "unknown_lot",
            post(&none[2].0, &today(), "ZZ9999", "rule-lot-0000000001").await,
        ),
        (
            "moved_out",
            post(&none[5].0, &today(), "FA1000", "rule-moved-00000001").await,
        ),
        (
            "complete",
            post(&three[0].0, &today(), "FA1000", "rule-complete-00001").await,
        ),
    ];
    // Too soon: dose 1 today, dose 2 the same day.
    let first = post(&none[3].0, &today(), "FA1000", "rule-soon-first-0001").await;
    assert_eq!(first.1["status"], "recorded", "{}", first.1);
    let soon = post(&none[3].0, &today(), "FA1000", "rule-soon-second-001").await;
    for (rule, (status, body)) in cases.iter().chain([("too_soon", soon)].iter()) {
        assert_eq!(*status, 201, "{rule}: {body}");
        assert_eq!(body["status"], "queued", "{rule}: {body}");
        let rules: Vec<&str> = body["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(rules.contains(rule), "{rule}: {rules:?}");
    }
    // A clean dose is not queued.
    let (_, clean) = post(&none[4].0, &today(), "FA1000", "rule-clean-00000001").await;
    assert_eq!(clean["status"], "recorded");

    // The municipality's queue shows all seven, counted per site.
    let staff = TestApp::handle(&app);
    let csrf = staff.login_as("131016-staff", DEMO_PASSWORD).await;
    let page = staff.get("/doses/queue").await.text().await.unwrap();
    let doc = html(&page);
    assert_eq!(select_text(&doc, "#queue-total"), ["7"]);
    assert_eq!(
        select_text(&doc, "#per-site tbody tr td"),
        ["デモ集団接種会場", "7"]
    );
    assert_eq!(select_text(&doc, "#queue tbody tr").len(), 7);
    // Staff confirm one, reject one, and undo a wrong scan (delete) with a
    // reason; every change is an event, the rows stay.
    let id_of = |body: &serde_json::Value| body["dose_id"].as_str().unwrap().to_string();
    let resident_of = |ticket: &str| all.iter().find(|(t, _)| t == ticket).unwrap().1.clone();
    let act = |resident: String, dose: String, action: &'static str, reason: &'static str| {
        let csrf = csrf.clone();
        let staff = &staff;
        async move {
            staff
                .client
                .post(staff.url(&format!("/residents/{resident}/doses/{dose}")))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("action", action),
                    ("reason", reason),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // (whose dose, which dose, action, reason, expected answer)
    let steps = [
        (
            &none[2].0,
            id_of(&cases[3].1.1),
            "confirm",
            "ロットを確認済み",
            303,
        ),
        (
            &none[0].0,
            id_of(&cases[0].1.1),
            "reject",
            "日付の誤り",
            303,
        ),
        (&none[4].0, id_of(&clean), "delete", "誤スキャン", 303),
        // Reject without a reason is refused and changes nothing.
        (&three[0].0, id_of(&cases[5].1.1), "reject", "", 422),
        // Another resident's path with this dose id: not found.
        (&none[1].0, id_of(&cases[5].1.1), "reject", "x", 404),
    ];
    for (ticket, dose, action, reason, expected) in steps {
        let status = act(resident_of(ticket), dose, action, reason).await;
        assert_eq!(status, expected, "{action} {reason}");
    }
    let statuses: Vec<(String, String)> = doses_of(&app, muni)
        .into_iter()
        .filter(|d| d.4.is_some() && d.2 != "valid" || d.0 == resident_of(&none[2].0))
        .map(|d| (d.0, d.2))
        .collect();
    assert!(statuses.contains(&(resident_of(&none[2].0), "valid".into())));
    assert!(statuses.contains(&(resident_of(&none[0].0), "rejected".into())));
    assert!(statuses.contains(&(resident_of(&none[4].0), "deleted".into())));
    let page = staff.get("/doses/queue").await.text().await.unwrap();
    assert_eq!(select_text(&html(&page), "#queue-total"), ["5"]);
    // The record shows the events with their reasons.
    let record = staff
        .get(&format!("/residents/{}", resident_of(&none[4].0)))
        .await
        .text()
        .await
        .unwrap();
    let events = select_text(&html(&record), "#dose-events tbody td").join(" ");
    assert!(events.contains("誤スキャン"), "{events}");
}

#[tokio::test]
async fn staff_correct_a_dose_with_a_new_row_and_the_old_one_stays() {
    let app = spawn_app().await;
    app.seed_demo();
    let muni = "082040";
    let staff = TestApp::handle(&app);
    let csrf = staff.login_as("082040-staff", DEMO_PASSWORD).await;
    let stored = doses_of(&app, muni);
    let (resident, ..) = stored[0].clone();
    // The id of one of the resident's doses in a given status.
    let dose_in = |status: &'static [&'static str]| -> String {
        let mut conn = app.conn();
        conn.transaction(|c| {
            vrs::db::set_transaction_municipality(c, muni).unwrap();
            doses::table
                .filter(doses::municipality_code.eq(muni))
                .filter(doses::resident_id.eq(&resident))
                .filter(doses::status.eq_any(status))
                .filter(doses::dose_number.eq(1))
                .select(doses::id)
                .first::<String>(c)
        })
        .unwrap()
    };
    let dose_id = dose_in(&["valid", "pending"]);
    let res = staff
        .client
        .post(staff.url(&format!("/residents/{resident}/doses/{dose_id}")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "correct"),
            ("reason", "ロット番号の誤記"),
            ("dose_number", "1"),
            ("administered_on", "2021-05-11"),
            ("product", "PFZ_ORIG_12P"),
            ("lot", "FA1004"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let mine: Vec<DoseLine> = doses_of(&app, muni)
        .into_iter()
        .filter(|d| d.0 == resident)
        .collect();
    assert!(mine.iter().any(|d| d.2 == "corrected"));
    assert_eq!(
        mine.iter().filter(|d| d.2 == "valid" && d.1 == 1).count(),
        1,
        "{mine:?}"
    );
    // A bad lot is refused with the field named, and nothing changes.
    let res = staff
        .client
        .post(staff.url(&format!("/residents/{resident}/doses/{dose_id}")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "correct"),
            ("reason", "x"),
            ("dose_number", "1"),
            ("administered_on", "2021-05-11"),
            ("product", "PFZ_ORIG_12P"),
            ("lot", "FA 1004"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("ロット番号"));

    // A date no dose can have — tomorrow, or before the person was born —
    // is refused (a corrected dose is valid at once, and certificates are
    // issued from it), and nothing changes.
    let valid_id = dose_in(&["valid"]);
    let before = doses_of(&app, muni);
    let tomorrow = (vrs::clock::today_in_japan() + chrono::Duration::days(1)).to_string();
    for (date, done, says) in [
        (
            tomorrow.as_str(),
            "dose_future",
            "未来の日付は入力できません",
        ),
        (
            "1900-01-01",
            "dose_before_birth",
            "生年月日より前の日付は入力できません",
        ),
    ] {
        let res = staff
            .client
            .post(staff.url(&format!("/residents/{resident}/doses/{valid_id}")))
            .form(&[
                ("csrf", csrf.as_str()),
                ("action", "correct"),
                ("reason", "日付の誤記"),
                ("dose_number", "1"),
                ("administered_on", date),
                ("product", "PFZ_ORIG_12P"),
                ("lot", "FA1004"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{date}");
        let to = res.headers()["location"].to_str().unwrap().to_string();
        assert!(to.ends_with(&format!("done={done}")), "{to}");
        assert!(staff.get(&to).await.text().await.unwrap().contains(says));
    }
    assert_eq!(doses_of(&app, muni), before);
}

#[tokio::test]
async fn the_api_is_described_and_keeps_its_account_rules() {
    let app = spawn_app().await;
    app.seed_demo();
    let doc: serde_json::Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/sessions",
        "/api/v1/tickets/check",
        "/api/v1/doses",
        "/api/v1/transfer-inquiries",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    // No token, a made-up token: 401.
    let res = app
        .client
        .post(app.url("/api/v1/doses"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (status, _) = app
        .api_dose("not-a-token", "0123456789abcdef-x", serde_json::json!({}))
        .await;
    assert_eq!(status, 401);
    // A session cookie is not a bearer token: a browser cannot be made to call it.
    let browser = TestApp::handle(&app);
    browser.login_as("082040-tablet", DEMO_PASSWORD).await;
    let res = browser
        .client
        .post(browser.url("/api/v1/tickets/check"))
        .json(&serde_json::json!({"ticket": "0820401234567890"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A municipal system records only its own municipality's tickets.
    let pw = app.create_account(
        "082040-system",
        Role::MunicipalStaff,
        Some("082040"),
        &["residents"],
    );
    let token = app.api_token("082040-system", &pw).await;
    let (own, _) = demo_tickets(&app, "082040").remove(0);
    let (other, _) = demo_tickets(&app, "131016").remove(0);
    let check = |t: String| {
        let token = token.clone();
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/v1/tickets/check"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"ticket": t}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(check(own).await.status(), 200);
    assert_eq!(check(other).await.status(), 403);
    // Viewers and operators have no recording rights; a site's answer
    // carries no individual number or name.
    let viewer = app.create_account("nat-viewer", Role::NationalViewer, None, &[]);
    let vt = app.api_token("nat-viewer", &viewer).await;
    let (status, body) = app
        .api_dose(
            &vt,
            "0123456789abcdef-v",
            serde_json::json!({"ticket": "0820401234567890",
            "administered_on": today(), "product_code": "PFZ_JN1_12P", "lot_number": "FA1000"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let site = app.api_token("131016-tablet", DEMO_PASSWORD).await;
    let secrets = secrets_of(&app, "082040");
    for (ticket, _) in demo_tickets(&app, "082040").into_iter().take(10) {
        let res = app
            .client
            .post(app.url("/api/v1/tickets/check"))
            .bearer_auth(&site)
            .json(&serde_json::json!({"ticket": ticket}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        assert_clean(&text, &secrets, "a ticket check");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["hint"]["kana_initials"].as_str().unwrap().contains('・'));
    }
    // Bad JSON and a bad field are named.
    let res = app
        .client
        .post(app.url("/api/v1/tickets/check"))
        .bearer_auth(&site)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // A field of the wrong type is named.
    let (status, body) = app
        .api_dose(
            &site,
            "0123456789abcdef-t",
            serde_json::json!({"ticket": "0820401234567890", "administered_on": today(),
                "product_code": "PFZ_JN1_12P", "lot_number": "FA1000", "dose_number": "two"}),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("dose_number")));
    let (status, body) = app
        .api_dose(
            &site,
            "0123456789abcdef-l",
            serde_json::json!({"ticket": "0820401234567890",
            "administered_on": today(), "product_code": "PFZ_JN1_12P", "lot_number": "ロット"}),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("lot_number")));
}

#[tokio::test]
async fn an_administrator_registers_a_site_and_binds_a_tablet_account_to_it() {
    let app = spawn_app().await;
    app.seed_demo();
    let admin = TestApp::handle(&app);
    let csrf = admin.login_as("012025-admin", DEMO_PASSWORD).await;
    let res = admin
        .client
        .post(admin.url("/admin/sites"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "函館市医師会館"),
            ("kind", "clinic"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let page = admin.get("/admin/sites").await.text().await.unwrap();
    assert!(page.contains("函館市医師会館"));
    let empty = admin
        .client
        .post(admin.url("/admin/sites"))
        .form(&[("csrf", csrf.as_str()), ("name", " "), ("kind", "clinic")])
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 422);
    // A kind that is none of the choices (a NUL, 10 KB, nothing) is an
    // error naming the field; no site is stored.
    let long = "x".repeat(10_000);
    for kind in ["\0", long.as_str(), "", "Clinic"] {
        let res = admin
            .client
            .post(admin.url("/admin/sites"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", "別の会場"),
                ("kind", kind),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{kind:?}");
        let body = res.text().await.unwrap();
        assert!(body.contains("種別"), "{kind:?}");
    }
    let page = admin.get("/admin/sites").await.text().await.unwrap();
    assert!(!page.contains("別の会場"));
    // A tablet account needs a site of this municipality.
    let form_page = admin.get("/admin/accounts/new").await.text().await.unwrap();
    let doc = html(&form_page);
    let sel = scraper::Selector::parse("#site_id option").unwrap();
    let site_id = doc
        .select(&sel)
        .find(|o| o.text().collect::<String>() == "函館市医師会館")
        .and_then(|o| o.value().attr("value"))
        .unwrap()
        .to_string();
    let mut form = vec![
        ("csrf", csrf.clone()),
        ("login_id", "012025-clinic1".to_string()),
        ("display_name", "医師会館タブレット".to_string()),
        ("role", "site_tablet".to_string()),
        ("expires_on", "2099-03-31".to_string()),
        ("device_name", "iPad 受付".to_string()),
        ("responsible_person", "会館 太郎".to_string()),
        ("site_id", String::new()),
    ];
    let res = admin
        .client
        .post(admin.url("/admin/accounts"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422, "no site");
    form.pop();
    form.push(("site_id", site_id.clone()));
    // A responsible person whose name hides a right-to-left override is
    // refused, naming the field, not stored cut or as typed.
    let mut hidden = form.clone();
    hidden[6].1 = "会館\u{202E}太郎".to_string();
    let res = admin
        .client
        .post(admin.url("/admin/accounts"))
        .form(&hidden)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("責任者: 制御文字"));
    let res = admin
        .client
        .post(admin.url("/admin/accounts"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bound: Option<String> = vrs::db::schema::accounts::table
        .filter(vrs::db::schema::accounts::login_id.eq("012025-clinic1"))
        .select(vrs::db::schema::accounts::site_id)
        .first(&mut app.conn())
        .unwrap();
    assert_eq!(bound, Some(site_id));
}

#[tokio::test]
async fn the_operator_keeps_the_vaccine_master() {
    let app = spawn_app().await;
    app.seed_demo();
    let pw = app.create_account("operator2", Role::Operator, None, &[]);
    let op = TestApp::handle(&app);
    let csrf = op.login_as("operator2", &pw).await;
    let page = op.get("/operator/vaccines").await.text().await.unwrap();
    // The shipped master: Japan's 24 product lines.
    assert_eq!(select_text(&html(&page), "#products tbody tr").len(), 24);
    let post = |path: &'static str, form: Vec<(&'static str, &'static str)>| {
        let mut form = form;
        form.push(("csrf", csrf.as_str()));
        let req = op.client.post(op.url(path)).form(&form);
        async move { req.send().await.unwrap() }
    };
    let lot = vec![
        ("product", "MOD_JN1"),
        ("lot", "3005123"),
        ("expires_on", ""),
    ];
    assert_eq!(
        post("/operator/vaccines/lots", lot.clone()).await.status(),
        303
    );
    let again = post("/operator/vaccines/lots", lot).await;
    assert_eq!(again.status(), 422);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("すでに登録されています")
    );
    let bad = post(
        "/operator/vaccines/lots",
        vec![("product", "MOD_JN1"), ("lot", "30 05"), ("expires_on", "")],
    )
    .await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("ロット番号"));
    // A new product line, every field checked.
    let product = vec![
        ("product_code", "PFZ_LP81_12P"),
        ("manufacturer_ja", "ファイザー"),
        ("manufacturer_en", "Pfizer"),
        (
            "product_ja",
            "コミナティ筋注シリンジ12歳以上用（1価：オミクロン株LP.8.1）",
        ),
        (
            "product_en",
            "Comirnaty 12+ years monovalent Omicron LP.8.1",
        ),
        ("vaccine_type", "mRNA"),
        ("target", "LP.8.1"),
        ("age_group", "adult"),
        ("cvx", ""),
        ("primary_doses", "2"),
        ("dose2_min_days", "19"),
        ("dose3_min_days", ""),
        ("booster_min_months", "3"),
    ];
    let mut broken = product.clone();
    broken[0].1 = "pfz lp";
    broken[9].1 = "7";
    let res = post("/operator/vaccines/products", broken).await;
    assert_eq!(res.status(), 422);
    let errors = select_text(&html(&res.text().await.unwrap()), "#product-errors li");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("製品コード"));
    assert!(errors[1].starts_with("初回接種の回数"));
    assert_eq!(
        post("/operator/vaccines/products", product).await.status(),
        303
    );
    // A value the page never sends changes nothing.
    let res = post(
        "/operator/vaccines/in-use",
        vec![("product", "PFZ_LP81_12P"), ("in_use", "no")],
    )
    .await;
    assert_eq!(res.status(), 400);
    // Withdrawn, a product leaves the sites' choice.
    let res = post(
        "/operator/vaccines/in-use",
        vec![("product", "PFZ_LP81_12P"), ("in_use", "0")],
    )
    .await;
    assert_eq!(res.status(), 303);
    let site = TestApp::handle(&app);
    let scsrf = site.login_as("082040-tablet", DEMO_PASSWORD).await;
    let (ticket, _) = demo_tickets(&app, "082040").remove(0);
    let confirm = site.scan(&scsrf, &ticket).await.1;
    assert!(!confirm.contains("PFZ_LP81_12P"));
    assert!(confirm.contains("MOD_JN1"));
    // Every change is in the platform's operation log.
    let actions: Vec<String> = audit_log::table
        .filter(audit_log::chain.eq("platform"))
        .filter(audit_log::action.like("vaccines.%"))
        .select(audit_log::action)
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(
        actions,
        [
            "vaccines.lot.add",
            "vaccines.product.add",
            "vaccines.product.in_use"
        ]
    );
}

#[tokio::test]
async fn a_site_walking_through_ticket_numbers_is_stopped() {
    let app = spawn_app().await;
    app.seed_demo();
    let site = TestApp::handle(&app);
    let csrf = site.login_as("082040-tablet", DEMO_PASSWORD).await;
    let (real, _) = demo_tickets(&app, "131016").remove(0);
    for n in 0..vrs::flows::accounts::MAX_SCAN_MISSES {
        let (status, page) = site
            .scan(&csrf, &format!("131016{:010}", 9_000_000_000u64 + n as u64))
            .await;
        assert_eq!(status, 422);
        assert!(select_text(&html(&page), "#scan-error")[0].contains("見つかりません"));
    }
    // Now even a real ticket is refused for a while, and shows nothing.
    let (status, page) = site.scan(&csrf, &real).await;
    assert_eq!(status, 422);
    assert!(select_text(&html(&page), "#preview").is_empty());
    assert!(select_text(&html(&page), "#scan-error")[0].contains("停止"));
    let token = site.api_token("082040-tablet", DEMO_PASSWORD).await;
    let res = site
        .client
        .post(site.url("/api/v1/tickets/check"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"ticket": real}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    // The misses are in the site's own municipality's log, without the
    // numbers looked up; the issuing municipality's log has none of them.
    let misses: Vec<(String, Option<String>)> = audit_log::table
        .filter(audit_log::action.eq("tickets.scan"))
        .filter(audit_log::outcome.eq("not_found"))
        .select((audit_log::chain, audit_log::target))
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(misses.len(), vrs::flows::accounts::MAX_SCAN_MISSES as usize);
    assert!(
        misses
            .iter()
            .all(|(c, t)| c == "082040" && t.as_deref() == Some("municipality:131016"))
    );
}

/// Unknown tickets sent straight to the recording form count as misses
/// too, and are logged, on SQLite's commit groups as everywhere: a refusal
/// is an answer, and what was written for it stays.
#[tokio::test]
async fn unknown_tickets_posted_to_the_recording_form_are_counted_and_logged() {
    let app = spawn_app().await;
    app.seed_demo();
    let site = TestApp::handle(&app);
    let csrf = site.login_as("082040-tablet", DEMO_PASSWORD).await;
    for n in 0..vrs::flows::accounts::MAX_SCAN_MISSES {
        let form = [
            ("csrf", csrf.clone()),
            (
                "ticket",
                format!("131016{:010}", 9_100_000_000u64 + n as u64),
            ),
            ("key", format!("unknown-ticket-miss-{n:04}")),
            ("dose_number", "1".into()),
            ("product", "PFZ_JN1_12P".into()),
            ("lot", "FA1000".into()),
            ("administered_on", today()),
        ];
        let res = site
            .client
            .post(site.url("/site/doses"))
            .form(&form)
            .send()
            .await
            .unwrap();
        // The form is shown again with the ticket's error.
        assert_eq!(res.status(), 422);
    }
    let misses: i64 = audit_log::table
        .filter(audit_log::action.eq("tickets.scan"))
        .filter(audit_log::outcome.eq("not_found"))
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(misses, i64::from(vrs::flows::accounts::MAX_SCAN_MISSES));
    let (real, _) = demo_tickets(&app, "131016").remove(0);
    let (status, page) = site.scan(&csrf, &real).await;
    assert_eq!(status, 422);
    assert!(select_text(&html(&page), "#scan-error")[0].contains("停止"));
}

/// A recording's operation-log line is written with the dose and chained
/// into the municipality's log moments later by the server's log writer,
/// with no reader asking; lines written directly by other actions meanwhile
/// wait their turn behind it, and the chain verifies whole.
#[tokio::test]
async fn recording_log_lines_are_chained_by_the_log_writer_in_order() {
    use vrs::db::schema::audit_pending;
    let app = spawn_app().await;
    app.seed_demo();
    let site = TestApp::handle(&app);
    let token = site.api_token("131016-tablet", DEMO_PASSWORD).await;
    let (ticket, _) = demo_tickets(&app, "082040")
        .into_iter()
        .find(|(_, r)| !doses_of(&app, "082040").iter().any(|d| &d.0 == r))
        .expect("a ticket with no dose yet");
    let body = serde_json::json!({"ticket": ticket, "administered_on": today(),
        "product_code": "PFZ_JN1_12P", "lot_number": "FA1001"});
    let (status, answer) = site.api_dose(&token, "writer-key-0000000001", body).await;
    assert_eq!(status, 201, "{answer}");
    let dose_id = answer["dose_id"].as_str().unwrap().to_string();

    // Chained by the server on its own, within moments.
    let target = format!("dose:{dose_id}");
    let chained = || -> Option<i64> {
        audit_log::table
            .filter(audit_log::chain.eq("082040"))
            .filter(audit_log::target.eq(&target))
            .select(audit_log::seq)
            .first(&mut app.conn())
            .optional()
            .unwrap()
    };
    // Moments: 100 ms on an idle machine; a busy test machine (two cores
    // shared by every test at once) is given up to 30 s.
    let mut seq = None;
    for _ in 0..300 {
        seq = chained();
        if seq.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let seq = seq.expect("the log writer chained the recording's line");
    let waiting: i64 = audit_pending::table
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(waiting, 0);

    // A line written to be chained later and one appended directly after
    // it keep that order, and the chain still verifies.
    let actor = vrs::audit::Actor::account("acc-x", "082040-clerk", "10.0.0.9");
    let entry = |action| vrs::audit::Entry {
        chain: "082040",
        action,
        target: None,
        outcome: "ok",
        detail: None,
    };
    let mut conn = app.conn();
    vrs::audit::append_later(&mut conn, &actor, entry("resident.view")).unwrap();
    vrs::audit::record(
        &mut conn,
        &app.state.audit,
        &actor,
        entry("resident.search"),
    )
    .unwrap();
    let order: Vec<String> = audit_log::table
        .filter(audit_log::chain.eq("082040"))
        .filter(audit_log::seq.gt(seq))
        .filter(audit_log::login_id.eq("082040-clerk"))
        .order(audit_log::seq)
        .select(audit_log::action)
        .load(&mut conn)
        .unwrap();
    assert_eq!(order, ["resident.view", "resident.search"]);
    let report = vrs::audit::verify(&mut conn, &app.state.audit, Some("082040"), None).unwrap();
    assert_eq!(report[0].broken_at, None);
}

/// Many sites recording at once: the doses of one moment are committed
/// together (on SQLite, in one commit group), and each is answered only
/// once it is stored — every answer names a stored dose of its own ticket,
/// with its operation-log line, in the partition that issued the ticket.
#[tokio::test]
async fn many_recordings_at_once_are_each_answered_once_stored() {
    let app = spawn_app().await;
    app.seed_demo();
    let token = app.api_token("082040-tablet", DEMO_PASSWORD).await;
    let tickets: Vec<(String, String)> = ["082040", "131016"]
        .into_iter()
        .flat_map(|m| demo_tickets(&app, m).into_iter().skip(20).take(15))
        .collect();
    let before = doses_of(&app, "082040").len() + doses_of(&app, "131016").len();
    let answers = futures_util::future::join_all(tickets.iter().enumerate().map(|(i, (t, _))| {
        let body = serde_json::json!({"ticket": t, "administered_on": today(),
            "product_code": "PFZ_JN1_12P", "lot_number": "FA1001"});
        let (app, token) = (&app, token.clone());
        async move {
            app.api_dose(&token, &format!("many-at-once-{i:08}"), body)
                .await
        }
    }))
    .await;
    let mut ids = Vec::new();
    for ((status, body), (ticket, _)) in answers.iter().zip(&tickets) {
        assert!(*status == 201, "{status} {body}");
        assert_eq!(
            format!(
                "{}{}",
                body["municipality_code"].as_str().unwrap(),
                body["ticket_number"].as_str().unwrap()
            ),
            *ticket
        );
        ids.push(body["dose_id"].as_str().unwrap().to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), tickets.len());
    let after = doses_of(&app, "082040").len() + doses_of(&app, "131016").len();
    assert_eq!(after - before, tickets.len());
    vrs::audit::flush(&mut app.conn(), &app.state.audit).unwrap();
    let logged: i64 = audit_log::table
        .filter(audit_log::action.eq("doses.record"))
        .filter(audit_log::login_id.eq("082040-tablet"))
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(logged, tickets.len() as i64);
}
