//! Flow 7: the statistics' running counts against a recount from the dose
//! records, the viewers' pages and their limits, open data and suppression.

use crate::helpers::*;
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
                    .load::<String>(c)
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

type Daily = BTreeMap<(String, String, i32, String), i64>;
type Demographic = BTreeMap<(String, String, i32, i32, String), i64>;

/// The counts as the definition gives them: valid doses given here.
fn recount(doses: &[DoseRow]) -> (Daily, Demographic, BTreeMap<(String, String, i32), i64>) {
    let mut daily = Daily::new();
    let mut demo = Demographic::new();
    let mut municipal = BTreeMap::new();
    for d in doses
        .iter()
        .filter(|d| d.status == "valid" && d.origin != "transferred")
    {
        let pref = d.municipality_code[..2].to_string();
        let month = d.administered_on.format("%Y-%m").to_string();
        *daily
            .entry((
                pref.clone(),
                d.administered_on.to_string(),
                d.dose_number,
                d.product_code.clone(),
            ))
            .or_default() += 1;
        *demo
            .entry((
                pref,
                month.clone(),
                d.dose_number,
                d.age_band.unwrap_or(-1),
                d.sex.clone().unwrap_or("9".into()),
            ))
            .or_default() += 1;
        *municipal
            .entry((d.municipality_code.clone(), month, d.dose_number))
            .or_default() += 1;
    }
    (daily, demo, municipal)
}

fn kept(app: &TestApp) -> (Daily, Demographic, BTreeMap<(String, String, i32), i64>) {
    let mut conn = app.conn();
    let daily: Vec<(String, chrono::NaiveDate, i32, String, i64)> = schema::stat_daily::table
        .filter(schema::stat_daily::n.ne(0))
        .load(&mut conn)
        .unwrap();
    let demo: Vec<(String, String, i32, i32, String, i64)> = schema::stat_demographic::table
        .filter(schema::stat_demographic::n.ne(0))
        .load(&mut conn)
        .unwrap();
    let municipal: Vec<(String, String, i32, i64)> = schema::stat_municipal::table
        .filter(schema::stat_municipal::n.ne(0))
        .load(&mut conn)
        .unwrap();
    (
        daily
            .into_iter()
            .map(|(p, d, n, pr, c)| ((p, d.to_string(), n, pr), c))
            .collect(),
        demo.into_iter()
            .map(|(p, m, n, a, s, c)| ((p, m, n, a, s), c))
            .collect(),
        municipal
            .into_iter()
            .map(|(m, mo, n, c)| ((m, mo, n), c))
            .collect(),
    )
}

fn declare_lgwan(app: &TestApp, muni: &str) {
    vrs::flows::networks::add(
        &mut app.conn(),
        &app.state.audit,
        &vrs::audit::Actor::default(),
        code(muni),
        vrs::domain::Network::parse("127.0.0.0/8").unwrap(),
        "庁舎",
    )
    .unwrap();
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
    declare_lgwan(&app, "131016");
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
