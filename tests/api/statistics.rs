//! Flow 7: the statistics' running counts against a recount from the dose
//! records, the viewers' pages and their limits, open data and suppression.

use crate::helpers::*;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use std::collections::BTreeMap;
use vrs::db::models::doses::DoseRow;
use vrs::db::schema;
use vrs::demo::{DEMO_MUNICIPALITIES, DEMO_PASSWORD, demo_resident};
use vrs::domain::Role;
use vrs::tenancy::Partition;

/// Every dose of every demo municipality, read in its own partition.
fn all_doses(app: &TestApp) -> Vec<DoseRow> {
    let mut conn = app.conn();
    let mut out = Vec::new();
    for m in DEMO_MUNICIPALITIES {
        let p = Partition::open(&mut conn, app.master(), code(m)).unwrap();
        let ids: Vec<String> = p
            .run(&mut conn, |s, c| {
                schema::doses::table
                    .filter(schema::doses::municipality_code.eq(s.code().as_str()))
                    .select(schema::doses::resident_id)
                    .distinct()
                    .load::<String>(&mut **c)
                    .map_err(vrs::db::DbError::from)
            })
            .unwrap();
        out.extend(
            p.run(&mut conn, |s, c| DoseRow::of_residents(s, c, &ids))
                .unwrap(),
        );
    }
    out
}

type Daily = BTreeMap<(String, String, i32), i64>;
type Monthly = BTreeMap<(String, String, i32, String), i64>;
type Demographic = BTreeMap<(String, String, i32, String), i64>;
type Municipal = BTreeMap<(String, String, i32), i64>;
type Counts = (Daily, Monthly, Demographic, Municipal, Municipal);

/// The counts as the definition gives them: valid doses given here, and
/// (the municipality's own progress) valid doses transferred here too.
fn recount(doses: &[DoseRow]) -> Counts {
    let mut c = Counts::default();
    for d in doses.iter().filter(|d| d.status == "valid") {
        let month = d.administered_on.format("%Y-%m").to_string();
        *c.4.entry((d.municipality_code.clone(), month, d.dose_number))
            .or_default() += 1;
    }
    for d in doses
        .iter()
        .filter(|d| d.status == "valid" && d.origin != "transferred")
    {
        let pref = d.municipality_code[..2].to_string();
        let month = d.administered_on.format("%Y-%m").to_string();
        *c.0.entry((pref.clone(), d.administered_on.to_string(), d.dose_number))
            .or_default() += 1;
        *c.1.entry((
            pref.clone(),
            month.clone(),
            d.dose_number,
            d.product_code.clone(),
        ))
        .or_default() += 1;
        *c.2.entry((
            pref,
            month.clone(),
            d.age_band.unwrap_or(-1),
            d.sex.clone().unwrap_or("9".into()),
        ))
        .or_default() += 1;
        *c.3.entry((d.municipality_code.clone(), month, d.dose_number))
            .or_default() += 1;
    }
    c
}

/// The counts as kept, each key's shards (migration 000017) added up.
fn kept(app: &TestApp) -> Counts {
    use schema::{dose_progress, stat_daily, stat_demographic, stat_monthly, stat_municipal};
    fn add<K: Ord>(into: &mut BTreeMap<K, i64>, rows: impl IntoIterator<Item = (K, i64)>) {
        for (k, n) in rows {
            *into.entry(k).or_default() += n;
        }
        into.retain(|_, n| *n != 0);
    }
    let mut conn = app.conn();
    let mut c = Counts::default();
    let daily: Vec<(String, chrono::NaiveDate, i32, i64, i16)> =
        stat_daily::table.load(&mut conn).unwrap();
    add(
        &mut c.0,
        daily
            .into_iter()
            .map(|(p, d, n, k, _)| ((p, d.to_string(), n), k)),
    );
    let monthly: Vec<(String, String, i32, String, i64, i16)> =
        stat_monthly::table.load(&mut conn).unwrap();
    add(
        &mut c.1,
        monthly
            .into_iter()
            .map(|(p, m, n, pr, k, _)| ((p, m, n, pr), k)),
    );
    let demo: Vec<(String, String, i32, String, i64, i16)> =
        stat_demographic::table.load(&mut conn).unwrap();
    add(
        &mut c.2,
        demo.into_iter().map(|(p, m, a, s, k, _)| ((p, m, a, s), k)),
    );
    let municipal: Vec<(String, String, i32, i64, i16)> =
        stat_municipal::table.load(&mut conn).unwrap();
    add(
        &mut c.3,
        municipal
            .into_iter()
            .map(|(m, mo, n, k, _)| ((m, mo, n), k)),
    );
    let progress: Vec<(String, String, i32, i64, i16)> =
        dose_progress::table.load(&mut conn).unwrap();
    add(
        &mut c.4,
        progress.into_iter().map(|(m, mo, n, k, _)| ((m, mo, n), k)),
    );
    c
}

#[tokio::test]
async fn the_counts_equal_a_recount_after_recording_correcting_and_deleting() {
    let app = spawn_app().await;
    app.seed_demo();
    let before = all_doses(&app);
    assert!(before.len() > 50);
    assert_eq!(kept(&app), recount(&before));

    // Staff correct one dose and delete another; a transfer copies doses
    // (not counted again); the counts follow.
    app.declare_lgwan("131016");
    let staff = TestApp::handle(&app);
    let csrf = staff.login_as("131016-staff", DEMO_PASSWORD).await;
    let chiyoda: Vec<&DoseRow> = before
        .iter()
        .filter(|d| d.municipality_code == "131016" && d.status == "valid")
        .collect();
    let (a, b) = (chiyoda[0], chiyoda[chiyoda.len() - 1]);
    let res = staff
        .client
        .post(staff.url(&format!("/residents/{}/doses/{}", a.resident_id, a.id)))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "correct"),
            ("reason", "接種日の誤り"),
            ("dose_number", &a.dose_number.to_string()),
            ("administered_on", "2022-02-02"),
            ("product", "MOD_ORIG"),
            ("lot", "FA0001"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let res = staff
        .client
        .post(staff.url(&format!("/residents/{}/doses/{}", b.resident_id, b.id)))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "delete"),
            ("reason", "読み取りの誤り"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let res = staff
        .client
        .post(staff.url("/transfers"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("my_number", vrs::demo::MOVER_NUMBER),
            ("my_number_again", vrs::demo::MOVER_NUMBER),
            ("source", "082040"),
            ("consent", "1"),
            ("id_document", "my_number_card"),
            ("checked_by", "窓口　一郎"),
            ("purpose", "ticket_issuance"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let after = all_doses(&app);
    assert!(after.iter().any(|d| d.origin == "transferred"));
    assert_ne!(recount(&after), recount(&before));
    assert_eq!(kept(&app), recount(&after));

    // The recount from scratch gives the same counts again.
    vrs::flows::statistics::recount(&mut app.conn()).unwrap();
    assert_eq!(kept(&app), recount(&after));
}

#[tokio::test]
async fn a_recount_next_to_recording_counts_every_dose_once() {
    let app = spawn_app().await;
    app.seed_demo();
    // Counts gone wrong: some too high, some missing.
    app.conn()
        .batch_execute(
            "UPDATE stat_daily SET n = n + 7; DELETE FROM stat_monthly WHERE dose_number = 1; \
             DELETE FROM stat_open; UPDATE dose_progress SET n = n - 1",
        )
        .unwrap();
    assert_ne!(kept(&app), recount(&all_doses(&app)));

    // The recount reads its snapshot; then, before it writes, staff
    // delete a dose (its trigger subtracts it from the counts at once).
    let differences = vrs::flows::statistics::differences_from_doses(&mut app.conn()).unwrap();
    app.declare_lgwan("131016");
    let staff = TestApp::handle(&app);
    let csrf = staff.login_as("131016-staff", DEMO_PASSWORD).await;
    let gone = all_doses(&app)
        .into_iter()
        .find(|d| {
            d.municipality_code == "131016" && d.status == "valid" && d.origin != "transferred"
        })
        .unwrap();
    let res = staff
        .client
        .post(staff.url(&format!(
            "/residents/{}/doses/{}",
            gone.resident_id, gone.id
        )))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "delete"),
            ("reason", "読み取りの誤り"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let r = vrs::flows::statistics::apply(&mut app.conn(), &differences).unwrap();
    assert!(r.corrected > 0);

    // The deleted dose is counted neither by the snapshot's difference nor
    // twice: the counts are those of the doses as they are now.
    assert_eq!(kept(&app), recount(&all_doses(&app)));
    // Counts that are right are left as they are.
    assert_eq!(
        vrs::flows::statistics::recount(&mut app.conn())
            .unwrap()
            .corrected,
        0
    );
}

/// A prefectural viewer of one prefecture (two-digit code).
fn prefectural_viewer(app: &TestApp, login: &str, prefecture: &str) -> String {
    let password = format!("pw for {login} 2026");
    vrs::flows::accounts::create(
        &mut app.conn(),
        &app.state.audit,
        &vrs::audit::Actor::default(),
        vrs::flows::accounts::NewAccount {
            login_id: vrs::domain::LoginId::parse(login).unwrap(),
            role: Role::PrefecturalViewer,
            municipality: None,
            prefecture_code: Some(prefecture.to_string()),
            display_name: format!("テスト {login}"),
            permissions: Vec::new(),
            expires_on: None,
            device_name: None,
            responsible_person: None,
            site_id: None,
            must_change_password: false,
        },
        Some(vrs::domain::NewPassword::parse(&password).unwrap()),
    )
    .unwrap();
    password
}

/// What must never appear in a statistics response: the demo residents'
/// names, birth dates and individual numbers (birth dates from before the
/// programme, so that no vaccination day can equal one by chance).
fn personal_strings() -> Vec<String> {
    let mut out = Vec::new();
    for m in DEMO_MUNICIPALITIES {
        for i in 0..vrs::demo::RESIDENTS_PER_MUNICIPALITY {
            let r = demo_resident(code(m), i);
            out.push(r.name_kanji.as_str().to_string());
            out.push(r.name_kana.as_str().to_string());
            if chrono::Datelike::year(&r.birth_date.date()) < 2020 {
                out.push(r.birth_date.date().to_string());
            }
            if let Some(n) = r.my_number {
                out.push(String::from_utf8(n.expose_digits().to_vec()).unwrap());
            }
        }
    }
    out
}

#[tokio::test]
async fn viewers_see_their_area_only_and_small_counts_are_suppressed_everywhere() {
    let app = spawn_app().await;
    app.seed_demo();
    let doses = all_doses(&app);
    let counted: Vec<&DoseRow> = doses
        .iter()
        .filter(|d| d.status == "valid" && d.origin != "transferred")
        .collect();

    let national = TestApp::handle(&app);
    let pw = app.create_account("nat-viewer", Role::NationalViewer, None, &[]);
    national.login_as("nat-viewer", &pw).await;
    let res = national.get("/statistics").await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    let doc = html(&page);
    let total = select_text(&doc, "#stats-total strong").join("");
    assert_eq!(total.replace(',', ""), counted.len().to_string());
    // Every prefecture of the demo is in the area table, with its count
    // (or the suppression mark when under 10).
    let rows = select_text(&doc, "#by-area-table tbody tr");
    assert_eq!(rows.len(), 3, "{rows:?}");
    // Small cells are marked, not shown: each age band under 10 reads so.
    let ages = select_text(&doc, "#by-age-table tbody td.num");
    assert!(ages.iter().any(|v| v == "10未満"), "{ages:?}");
    for v in &ages {
        if v != "10未満" {
            assert!(v.replace(',', "").parse::<i64>().unwrap() >= 10);
        }
    }
    // A prefecture's page lists its municipalities.
    let tokyo = national
        .get("/statistics?area=13")
        .await
        .text()
        .await
        .unwrap();
    assert!(tokyo.contains("千代田区"));

    // A prefectural viewer of Ibaraki (08) sees Ibaraki, and nothing else.
    let ibaraki = TestApp::handle(&app);
    let pw = prefectural_viewer(&app, "ibaraki-viewer", "08");
    ibaraki.login_as("ibaraki-viewer", &pw).await;
    let own = ibaraki.get("/statistics").await;
    assert_eq!(own.status(), 200);
    let own = own.text().await.unwrap();
    assert!(own.contains("古河市") && !own.contains("千代田区"));
    for area in ["13", "all", "01"] {
        let res = ibaraki.get(&format!("/statistics?area={area}")).await;
        assert_eq!(res.status(), 403, "{area}");
    }
    // Municipal staff and administrators are not viewers.
    let staff = TestApp::handle(&app);
    staff.login_as("131016-staff", DEMO_PASSWORD).await;
    assert_eq!(staff.get("/statistics").await.status(), 403);

    // Open data: every published count is at least 10; nothing personal in
    // any of these responses.
    let ndjson = app
        .get("/statistics/open-data.ndjson")
        .await
        .text()
        .await
        .unwrap();
    for line in ndjson.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["count"].as_i64().unwrap() >= 10, "{line}");
        assert!(v["medical_worker"].is_null());
    }
    let csv = app
        .get("/statistics/open-data.csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("date,prefecture,gender,age,medical_worker,status,count"));
    let by_date = app
        .get("/statistics/summary-by-date.csv")
        .await
        .text()
        .await
        .unwrap();
    let by_pref = app
        .get("/statistics/summary-by-prefecture.csv")
        .await
        .text()
        .await
        .unwrap();
    for cell in by_date
        .lines()
        .skip(1)
        .chain(by_pref.lines().skip(1))
        .flat_map(|l| l.split(',').skip(1).collect::<Vec<_>>())
    {
        if !cell.is_empty() {
            assert!(cell.parse::<i64>().unwrap() >= 10, "{cell}");
        }
    }
    // A bad filter is refused, naming the field.
    for (query, field) in [
        ("from=2022-13", "from"),
        ("to=x", "to"),
        ("area=99", "area"),
    ] {
        let res = app.get(&format!("/statistics/open-data.csv?{query}")).await;
        assert_eq!(res.status(), 400, "{query}");
        assert!(res.text().await.unwrap().starts_with(&format!("{field}: ")));
    }
    assert_eq!(national.get("/statistics?from=2022-1x").await.status(), 400);
    let personal = personal_strings();
    for body in [&page, &tokyo, &own, &ndjson, &csv, &by_date, &by_pref] {
        for p in &personal {
            assert!(!body.contains(p.as_str()), "{p} in a statistics response");
        }
    }
}

#[tokio::test]
async fn open_data_lines_add_up_to_the_dose_records_when_nothing_is_suppressed() {
    let app = spawn_app_with(|a| a.stats_min_cell = 1).await;
    app.seed_demo();
    let doses = all_doses(&app);
    let mut expected: BTreeMap<(String, String, i32, String, String), i64> = BTreeMap::new();
    for d in doses
        .iter()
        .filter(|d| d.status == "valid" && d.origin != "transferred")
    {
        let age = match d.age_band {
            None => "unknown",
            Some(b) if b >= 65 => "65-",
            Some(_) => "-64",
        };
        let gender = match d.sex.as_deref() {
            Some("1") => "M",
            Some("2") => "F",
            _ => "U",
        };
        *expected
            .entry((
                d.administered_on.to_string(),
                d.municipality_code[..2].to_string(),
                d.dose_number,
                age.to_string(),
                gender.to_string(),
            ))
            .or_default() += 1;
    }
    let ndjson = app
        .get("/statistics/open-data.ndjson")
        .await
        .text()
        .await
        .unwrap();
    let mut got = BTreeMap::new();
    for line in ndjson.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        got.insert(
            (
                v["date"].as_str().unwrap().to_string(),
                v["prefecture"].as_str().unwrap().to_string(),
                v["status"].as_i64().unwrap() as i32,
                v["age"].as_str().unwrap().to_string(),
                v["gender"].as_str().unwrap().to_string(),
            ),
            v["count"].as_i64().unwrap(),
        );
    }
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_municipality_sees_its_own_progress_and_queue_and_nothing_personal() {
    let app = spawn_app().await;
    app.seed_demo();
    let staff = TestApp::handle(&app);
    staff.login_as("131016-staff", DEMO_PASSWORD).await;
    let res = staff.get("/statistics/municipality").await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    let doc = html(&page);
    assert_eq!(
        select_text(&doc, "#current-residents").join(""),
        vrs::demo::RESIDENTS_PER_MUNICIPALITY.to_string()
    );
    // The last month's cumulative count of first doses equals the records.
    let firsts = all_doses(&app)
        .iter()
        .filter(|d| d.municipality_code == "131016" && d.status == "valid" && d.dose_number == 1)
        .count();
    let rows = select_text(&doc, "#progress-table tbody tr td.num");
    assert!(rows[0].starts_with(&format!("{firsts} (")), "{rows:?}");
    // The queue now equals the pending doses.
    let pending = all_doses(&app)
        .iter()
        .filter(|d| d.municipality_code == "131016" && d.status == "pending")
        .count();
    assert_eq!(
        select_text(&doc, "#queue-now").join(""),
        pending.to_string()
    );
    for p in personal_strings() {
        assert!(!page.contains(p.as_str()), "{p}");
    }
    // Viewers and other roles do not see it.
    let pw = app.create_account("nat-viewer", Role::NationalViewer, None, &[]);
    let viewer = TestApp::handle(&app);
    viewer.login_as("nat-viewer", &pw).await;
    assert_eq!(viewer.get("/statistics/municipality").await.status(), 403);
}

/// The number of current residents on the progress page, read from the
/// page of a logged-in staff member.
async fn current_residents_shown(staff: &TestApp) -> i64 {
    let page = staff
        .get("/statistics/municipality")
        .await
        .text()
        .await
        .unwrap();
    select_text(&html(&page), "#current-residents")
        .join("")
        .replace(',', "")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_current_residents_count_follows_imports_flags_and_registrations() {
    let app = spawn_app().await;
    app.seed_demo();
    let base = vrs::demo::RESIDENTS_PER_MUNICIPALITY as i64;
    let (staff, csrf) = app.staff_of("082040").await;
    assert_eq!(current_residents_shown(&staff).await, base);

    staff
        .import(
            &csrf,
            crate::residents::resident_csv(7, 31).into_bytes(),
            "auto",
        )
        .await;
    assert_eq!(current_residents_shown(&staff).await, base + 7);
    assert_eq!(app.current_residents("082040"), (base + 7, base + 7));

    // One moves out, one dies: neither is a current resident any more.
    for (addressee, flag) in [("A-31-000000", "moved_out"), ("A-31-000001", "deceased")] {
        let link = crate::residents::resident_link(&staff.find_addressee(&csrf, addressee).await);
        let res = staff
            .client
            .post(staff.url(&format!("{link}/flag")))
            .form(&[
                ("csrf", csrf.as_str()),
                ("flag", flag),
                ("date", "2026-09-30"),
                ("reason", "届出"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
    }
    assert_eq!(current_residents_shown(&staff).await, base + 5);

    // The same file again changes nobody's count; the other municipality's
    // count never moved.
    staff
        .import(
            &csrf,
            crate::residents::resident_csv(7, 31).into_bytes(),
            "auto",
        )
        .await;
    assert_eq!(app.current_residents("082040"), (base + 5, base + 5));
    assert_eq!(app.current_residents("131016"), (base, base));

    // A count gone wrong is put right by the recount, as the doses' are.
    app.conn()
        .batch_execute(
            "UPDATE resident_counts SET n = n + 5 WHERE staged_seq = 0; DELETE FROM dose_progress",
        )
        .unwrap();
    assert_eq!(app.current_residents("082040"), (base + 10, base + 5));
    vrs::flows::statistics::recount(&mut app.conn()).unwrap();
    assert_eq!(app.current_residents("082040"), (base + 5, base + 5));
    assert_eq!(app.current_residents("131016"), (base, base));
    assert_eq!(kept(&app), recount(&all_doses(&app)));
}

/// The queue's history over the last 60 days reads only the doses that
/// waited in them, and counts each on exactly the days it waited: one that
/// left the queue before the window and was deleted in it not at all.
#[tokio::test]
async fn the_queue_history_counts_each_dose_on_the_days_it_waited() {
    use vrs::db::models::dose_events::DoseEventRow;
    use vrs::db::schema::doses;
    let app = spawn_app().await;
    app.seed_demo();
    let muni = "131016";
    let mut conn = app.conn();
    let p = Partition::open(&mut conn, app.master(), code(muni)).unwrap();
    let history = |conn: &mut vrs::db::PooledConn| {
        p.run(conn, |s, c| vrs::flows::statistics::quality(s, c, 60))
            .unwrap()
            .total
    };
    let before = history(&mut conn);
    let picked: Vec<DoseRow> = all_doses(&app)
        .into_iter()
        .filter(|d| d.municipality_code == muni && d.status == "valid" && d.quality_flags.is_none())
        .take(3)
        .collect();
    let now = vrs::clock::now();
    let days = |n: i64| now - chrono::Duration::days(n);
    let plan = [
        (
            &picked[0],
            vec![
                ("queued", days(100)),
                ("confirmed", days(90)),
                ("deleted", days(10)),
            ],
            "deleted",
        ),
        (&picked[1], vec![("queued", days(100))], "pending"),
        (
            &picked[2],
            vec![("queued", days(100)), ("confirmed", days(30))],
            "valid",
        ),
    ];
    p.run(&mut conn, |_s, c| {
        for (dose, events, status) in &plan {
            diesel::update(
                doses::table
                    .filter(doses::municipality_code.eq(muni))
                    .filter(doses::id.eq(&dose.id)),
            )
            .set((
                doses::status.eq(*status),
                doses::quality_flags.eq(Some("unknown_lot")),
            ))
            .execute(&mut **c)?;
            for (kind, at) in events {
                DoseEventRow {
                    municipality_code: muni.into(),
                    id: uuid::Uuid::now_v7().to_string(),
                    dose_id: dose.id.clone(),
                    resident_id: dose.resident_id.clone(),
                    at: *at,
                    kind: (*kind).into(),
                    account_id: None,
                    detail: None,
                    reason_sealed: None,
                }
                .insert(c)?;
            }
        }
        Ok::<_, vrs::db::DbError>(())
    })
    .unwrap();
    let after = history(&mut conn);
    let added: Vec<i64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    // The one still waiting on every day, the one confirmed 30 days ago on
    // the days before that, the deleted one on none.
    assert_eq!(added[0], 2, "{added:?}");
    assert_eq!(added[59], 1, "{added:?}");
    assert!(added.iter().all(|n| *n == 1 || *n == 2), "{added:?}");
    let both = added.iter().filter(|n| **n == 2).count();
    assert!((29..=31).contains(&both), "{added:?}");
}

/// The queue's history is kept by the database with each event (migration
/// 000018): after doses are queued and then confirmed, rejected and
/// deleted by the flows staff use, it equals what the recount derives from
/// the events; a deleted dose that never waited moves nothing; and a
/// history gone wrong is put right by the recount.
#[tokio::test]
async fn the_kept_queue_history_equals_a_recount_from_the_events() {
    use vrs::db::models::dose_events::DoseEventRow;
    use vrs::db::schema::doses;
    use vrs::domain::ChangeReason;
    use vrs::flows::dose_checks::Rule;
    let app = spawn_app().await;
    app.seed_demo();
    let muni = "131016";
    let mut conn = app.conn();
    let p = Partition::open(&mut conn, app.master(), code(muni)).unwrap();
    let quality = |conn: &mut vrs::db::PooledConn| {
        p.run(conn, |s, c| vrs::flows::statistics::quality(s, c, 60))
            .unwrap()
    };
    let before = quality(&mut conn);
    assert_eq!(before.total, vec![0; 60]);
    let picked: Vec<DoseRow> = all_doses(&app)
        .into_iter()
        .filter(|d| d.municipality_code == muni && d.status == "valid")
        .take(5)
        .collect();
    let flags = [
        "unknown_lot",
        "too_soon,unknown_lot",
        "too_soon",
        "too_soon",
    ];
    let queued_at = vrs::clock::now() - chrono::Duration::days(5);
    p.run(&mut conn, |_s, c| {
        for (dose, flags) in picked.iter().zip(flags) {
            diesel::update(
                doses::table
                    .filter(doses::municipality_code.eq(muni))
                    .filter(doses::id.eq(&dose.id)),
            )
            .set((doses::status.eq("pending"), doses::quality_flags.eq(flags)))
            .execute(&mut **c)?;
            DoseEventRow {
                municipality_code: muni.into(),
                id: uuid::Uuid::now_v7().to_string(),
                dose_id: dose.id.clone(),
                resident_id: dose.resident_id.clone(),
                at: queued_at,
                kind: "queued".into(),
                account_id: None,
                detail: Some(flags.into()),
                reason_sealed: None,
            }
            .insert(c)?;
        }
        Ok::<_, vrs::db::DbError>(())
    })
    .unwrap();
    let queued = quality(&mut conn);
    assert_eq!(queued.total[53], 0, "{:?}", queued.total);
    assert_eq!(queued.total[54..], [4; 6], "{:?}", queued.total);
    assert_eq!(
        queued.now_by_rule,
        vec![(Rule::TooSoon, 3), (Rule::UnknownLot, 2)]
    );
    let reason = ChangeReason::parse("確認済み").unwrap();
    p.run(&mut conn, |s, c| {
        use vrs::flows::doses as flow;
        flow::confirm(s, c, &picked[0].id, "acc", None)?;
        flow::reject(s, c, &picked[1].id, "acc", &reason)?;
        flow::delete(s, c, &picked[2].id, "acc", &reason)?;
        // Valid, never queued: its deletion leaves the queue as it was.
        flow::delete(s, c, &picked[4].id, "acc", &reason)?;
        Ok::<_, vrs::flows::doses::DoseError>(())
    })
    .unwrap();
    let settled = quality(&mut conn);
    assert_eq!(settled.total[54..59], [4; 5], "{:?}", settled.total);
    assert_eq!(settled.total[59], 1, "{:?}", settled.total);
    assert_eq!(settled.now_by_rule, vec![(Rule::TooSoon, 1)]);
    assert_eq!(
        settled.now_by_site.iter().map(|(_, n)| n).sum::<i64>(),
        1,
        "{:?}",
        settled.now_by_site
    );
    // The trigger kept what the recount derives from the events.
    assert_eq!(
        vrs::flows::statistics::recount(&mut app.conn())
            .unwrap()
            .corrected,
        0
    );
    // Lost, and put right.
    app.conn().batch_execute("DELETE FROM queue_days").unwrap();
    assert_eq!(quality(&mut conn).total, vec![0; 60]);
    assert!(
        vrs::flows::statistics::recount(&mut app.conn())
            .unwrap()
            .corrected
            > 0
    );
    assert_eq!(quality(&mut conn), settled);
}

/// On PostgreSQL a dose's counts are kept in its connection's shard, so two
/// doses of the same prefecture, day and dose number, recorded at once on
/// two connections, do not wait for each other's commit (before, the
/// second waited for the first's row locks, WAL flush included).
#[tokio::test]
async fn two_doses_of_one_day_recorded_at_once_do_not_wait_for_each_other() {
    use diesel::connection::SimpleConnection;
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    if !on_postgres() {
        return;
    }
    let app = spawn_app().await;
    app.seed_demo();
    let muni = "131016";
    // Two connections of different shards (the shard is the server
    // process's id modulo 8).
    let mut conns: Vec<(i32, vrs::db::PooledConn)> = Vec::new();
    for _ in 0..4 {
        let mut c = app.conn();
        let pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(&mut c)
            .unwrap()
            .pid;
        conns.push((pid, c));
    }
    let (pa, mut a) = conns.remove(0);
    let (_, mut b) = conns
        .into_iter()
        .find(|(p, _)| p % 8 != pa % 8)
        .expect("two connections in different shards");
    b.batch_execute("SET lock_timeout = '3s'").unwrap();
    let residents: Vec<String> = all_doses(&app)
        .into_iter()
        .filter(|d| d.municipality_code == muni)
        .map(|d| d.resident_id)
        .take(2)
        .collect();
    let dose = |resident: &str| vrs::flows::doses::NewDose {
        resident_id: resident.to_string(),
        dose_number: vrs::domain::DoseNumber::default(),
        administered_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 3).unwrap(),
        ticket_number: None,
        site_municipality: Some(code(muni)),
        site_name: Some("同日会場".into()),
        product_code: "PFZ_JN1_12P".into(),
        lot_number: Some("FA1000".into()),
        recorded_by: None,
        age_band: Some(70),
        sex: Some("1".into()),
    };
    let p = Partition::open(&mut a, app.master(), code(muni)).unwrap();
    let second_partition = Partition::open(&mut b, app.master(), code(muni)).unwrap();
    let before = kept(&app);
    p.run(&mut a, |s, c| {
        vrs::flows::doses::append(s, c, &[dose(&residents[0])])?;
        // The first transaction holds its count rows; the second records
        // and commits meanwhile, or runs into the lock timeout.
        let (other, second, b) = (&second_partition, residents[1].clone(), &mut b);
        std::thread::scope(|t| {
            t.spawn(|| other.run(b, |s, c| vrs::flows::doses::append(s, c, &[dose(&second)])))
                .join()
                .unwrap()
        })?;
        Ok::<_, vrs::flows::residents::ResidentError>(())
    })
    .unwrap();
    let after = kept(&app);
    let day = ("13".to_string(), "2026-11-03".to_string(), 1);
    assert_eq!(
        after.0.get(&day).copied().unwrap_or(0) - before.0.get(&day).copied().unwrap_or(0),
        2
    );
    assert_eq!(kept(&app), recount(&all_doses(&app)));
}
