//! Retention and erasure by the owning municipality: a resident moved out
//! longer ago than the municipality keeps records is listed, exported
//! without an individual number, and erased — record, tickets and blind
//! indexes gone, statistics unchanged, one log line naming the 宛名番号 —
//! and no other municipality can erase it.

use crate::helpers::*;
use diesel::prelude::*;
use vrs::db::schema::{audit_log, residents, stat_municipal, tickets};
use vrs::demo::{DEMO_PASSWORD, MOVER_NUMBER};

const MUNI: &str = "082040";

async fn post(s: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = s.client.post(s.url(path)).form(form).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

fn doses_counted(app: &TestApp) -> i64 {
    stat_municipal::table
        .filter(stat_municipal::municipality_code.eq(MUNI))
        .select(stat_municipal::n)
        .load::<i64>(&mut *app.conn())
        .unwrap()
        .into_iter()
        .sum()
}

#[tokio::test]
async fn a_resident_past_retention_is_exported_then_erased_by_its_own_municipality_only() {
    let app = spawn_app().await;
    app.seed_demo();
    let person = app.holder_of(MUNI, MOVER_NUMBER).expect("the demo mover");
    let addressee = person.addressee_number.as_str().to_string();
    let record = format!("/residents/{}", person.id);
    let staff = TestApp::handle(&app);
    let scsrf = staff.login_as("082040-staff", DEMO_PASSWORD).await;
    let page = staff.get(&record).await.text().await.unwrap();
    assert!(page.contains(&addressee));
    let two_years_ago = (vrs::clock::today_in_japan() - chrono::Duration::days(800)).to_string();
    let (status, _) = post(
        &staff,
        &format!("{record}/flag"),
        &[
            ("csrf", &scsrf),
            ("flag", "moved_out"),
            ("date", &two_years_ago),
            ("reason", "転出届"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let counted = doses_counted(&app);
    assert!(counted > 0);

    let admin = TestApp::handle(&app);
    let acsrf = admin.login_as("082040-admin", DEMO_PASSWORD).await;
    // Kept five years by default: not yet listed.
    let page = admin.get("/admin/retention").await.text().await.unwrap();
    assert!(page.contains("id=\"retention-none\""), "{page}");
    // A bad period is refused, naming the field.
    let (status, page) = post(
        &admin,
        "/admin/retention/settings",
        &[("csrf", &acsrf), ("years", "0")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(select_text(&html(&page), "#retention-error")[0].contains("保存期間"));
    let (status, _) = post(
        &admin,
        "/admin/retention/settings",
        &[("csrf", &acsrf), ("years", "1")],
    )
    .await;
    assert_eq!(status, 303);
    let page = admin.get("/admin/retention").await.text().await.unwrap();
    let listed = select_text(&html(&page), "#due tbody tr");
    let cutoff = hidden(&page, "cutoff");
    assert_eq!(
        cutoff,
        vrs::flows::erasure::cutoff(vrs::clock::today_in_japan(), 1).to_string()
    );
    assert_eq!(listed.len(), 1, "{page}");
    assert!(listed[0].contains(&addressee));

    // The export before erasure: the 宛名番号 and the doses, no number.
    let csv = admin
        .get("/admin/retention.csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.contains(&addressee));
    assert!(!csv.contains(MOVER_NUMBER));
    assert_eq!(csv.lines().count(), 1 + 2, "{csv}");

    // Another municipality cannot erase it, whatever its own period.
    let theirs = vrs::flows::erasure::cutoff(vrs::clock::today_in_japan(), 5).to_string();
    let other = TestApp::handle(&app);
    let ocsrf = other.login_as("131016-admin", DEMO_PASSWORD).await;
    let (status, _) = post(
        &other,
        "/admin/retention/erase",
        &[
            ("csrf", &ocsrf),
            ("id", &person.id),
            ("confirm", "1"),
            ("cutoff", &theirs),
        ],
    )
    .await;
    assert_eq!(status, 404);
    // Without the confirmation, nothing happens.
    let (status, page) = post(
        &admin,
        "/admin/retention/erase",
        &[("csrf", &acsrf), ("id", &person.id), ("cutoff", &cutoff)],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"retention-error\""));
    assert_eq!(staff.get(&record).await.status(), 200);
    // Nor with the list shown under another period.
    let (status, page) = post(
        &admin,
        "/admin/retention/erase",
        &[("csrf", &acsrf), ("confirm", "1"), ("cutoff", "2000-01-01")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(select_text(&html(&page), "#retention-error")[0].contains("何も消去していません"));
    assert_eq!(staff.get(&record).await.status(), 200);

    let (status, _) = post(
        &admin,
        "/admin/retention/erase",
        &[
            ("csrf", &acsrf),
            ("id", &person.id),
            ("confirm", "1"),
            ("cutoff", &cutoff),
        ],
    )
    .await;
    assert_eq!(status, 303);

    // The record, its tickets and its blind indexes are gone.
    assert_eq!(staff.get(&record).await.status(), 404);
    assert!(app.holder_of(MUNI, MOVER_NUMBER).is_none());
    let (status, page) = post(
        &staff,
        "/residents/search",
        &[("csrf", &scsrf), ("addressee", &addressee)],
    )
    .await;
    assert!(status == 200 || status == 422, "{status}");
    assert!(!page.contains(&person.id));
    // Read as the municipality (row-level security on PostgreSQL).
    let (row, left) = app
        .conn()
        .transaction(|c| {
            vrs::db::set_transaction_municipality(c, MUNI).unwrap();
            let row: (Option<Vec<u8>>, Vec<u8>, Option<chrono::NaiveDateTime>) = residents::table
                .filter(residents::id.eq(&person.id))
                .select((
                    residents::my_number_index,
                    residents::name_kanji_sealed,
                    residents::erased_at,
                ))
                .first(c)?;
            let left: i64 = tickets::table
                .filter(tickets::resident_id.eq(&person.id))
                .count()
                .get_result(c)?;
            Ok::<_, diesel::result::Error>((row, left))
        })
        .unwrap();
    let (number_index, name, erased) = row;
    assert!(number_index.is_none());
    assert!(name.is_empty());
    assert!(erased.is_some());
    assert_eq!(left, 0);
    // The statistics still count the doses given.
    assert_eq!(doses_counted(&app), counted);
    // One log line, naming the 宛名番号 and the count only.
    vrs::audit::flush(&mut app.conn(), &app.state.audit).unwrap();
    let lines: Vec<(Option<String>, Option<String>)> = audit_log::table
        .filter(audit_log::chain.eq(MUNI))
        .filter(audit_log::action.eq("resident.erase"))
        .select((audit_log::target, audit_log::detail))
        .load(&mut *app.conn())
        .unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].0, Some(format!("resident:{}", person.id)));
    let detail = lines[0].1.clone().unwrap();
    assert!(
        detail.starts_with(&format!("addressee={addressee} records=")),
        "{detail}"
    );
    // Nothing is listed any more, and a second erasure finds nothing.
    let page = admin.get("/admin/retention").await.text().await.unwrap();
    assert!(page.contains("id=\"retention-none\""));
    let (status, _) = post(
        &admin,
        "/admin/retention/erase",
        &[
            ("csrf", &acsrf),
            ("id", &person.id),
            ("confirm", "1"),
            ("cutoff", &cutoff),
        ],
    )
    .await;
    assert_eq!(status, 404);
    // The ledger no longer holds the person.
    let ledger = staff.get("/exports/doses.csv").await.text().await.unwrap();
    assert!(!ledger.contains(&addressee));
}
