//! Inquiries about a resident under a support measure are held, not
//! answered: the asker gets the uniform answer, an administrator of the
//! holding municipality (not the person who asked) approves or refuses,
//! and only then is the record given or the inquiry sent. Window and bulk,
//! either direction.

use crate::helpers::*;
use crate::transfers::{asking_staff, movers_file};
use vrs::demo::{DEMO_PASSWORD, MOVER_NUMBER};

const ASKING: &str = "131016";
const SOURCE: &str = "082040";

impl TestApp {
    /// Who each line of a chain names: its login and address.
    fn log_accounts(&self, muni: &str) -> String {
        use diesel::prelude::*;
        use vrs::db::schema::audit_log;
        let mut conn = self.conn();
        vrs::audit::flush(&mut conn, &self.state.audit).unwrap();
        let rows: Vec<(String, Option<String>, Option<String>)> = audit_log::table
            .filter(audit_log::chain.eq(muni))
            .filter(audit_log::action.like("transfer.%"))
            .select((
                audit_log::action,
                audit_log::login_id,
                audit_log::client_addr,
            ))
            .load(&mut *conn)
            .unwrap();
        format!("{rows:?}")
    }
}

async fn post(s: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = s.client.post(s.url(path)).form(form).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// An administrator's decision on a held inquiry.
async fn decide(
    admin: &TestApp,
    csrf: &str,
    id: &str,
    decision: &str,
    reason: &str,
) -> (u16, String) {
    let form = [("csrf", csrf), ("decision", decision), ("reason", reason)];
    post(admin, &format!("/admin/held/{id}"), &form).await
}

/// Puts `muni`'s resident holding the mover's number under a support
/// measure, through its demo staff (who may see protected addresses).
async fn protect(app: &TestApp, muni: &str) -> String {
    let id = app.resident_of(muni, MOVER_NUMBER);
    let staff = TestApp::handle(app);
    let csrf = staff
        .login_as(&format!("{muni}-staff"), DEMO_PASSWORD)
        .await;
    let today = vrs::clock::today_in_japan();
    let (status, body) = post(
        &staff,
        &format!("/residents/{id}/protection"),
        &[
            ("csrf", &csrf),
            ("protected", "on"),
            ("from", &today.to_string()),
            ("review", &(today + chrono::Duration::days(365)).to_string()),
            ("reason", "支援措置申出"),
        ],
    )
    .await;
    assert_eq!(status, 303, "{body}");
    id
}

async fn admin_of(app: &TestApp, muni: &str) -> (TestApp, String) {
    let a = TestApp::handle(app);
    let csrf = a.login_as(&format!("{muni}-admin"), DEMO_PASSWORD).await;
    (a, csrf)
}

/// The held inquiries' ids on the administrator's page, waiting ones.
fn waiting(page: &str) -> Vec<String> {
    let doc = html(page);
    let sel = scraper::Selector::parse("section[data-status='held']").unwrap();
    doc.select(&sel)
        .filter_map(|e| e.value().id())
        .map(|id| id.trim_start_matches("held-").to_string())
        .collect()
}

#[tokio::test]
async fn asked_about_a_protected_resident_the_source_holds_until_its_administrator_approves() {
    let (app, staff, csrf) = asking_staff().await;
    let theirs = protect(&app, SOURCE).await;
    let mine = app.resident_of(ASKING, MOVER_NUMBER);
    let before = app.doses_of(ASKING, &mine).len();

    // The asker gets the answer any miss gets.
    let (status, page) = staff.inquire(&csrf, MOVER_NUMBER, SOURCE, true).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"no-match\""), "{page}");
    assert_eq!(app.doses_of(ASKING, &mine).len(), before);
    // The source kept a record of a held refusal, about its resident.
    let records = app.provisions(SOURCE);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, "refused");
    assert_eq!(records[0].refusal.as_deref(), Some("held"));
    assert_eq!(records[0].resident_id.as_deref(), Some(theirs.as_str()));
    // Its log says it was held, not who asked.
    let log = app.log_text(SOURCE);
    assert!(log.contains("transfer.hold"));
    assert!(!log.contains(ASKING), "{log}");
    // The disclosure of its provision records names no municipality.
    let keeper = TestApp::handle(&app);
    keeper.login_as("082040-staff", DEMO_PASSWORD).await;
    let disclosure = keeper
        .get(&format!("/residents/{theirs}/provisions.csv"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!disclosure.contains(ASKING));
    assert!(!disclosure.contains("千代田"));

    // The source's administrators are told, and see it waiting.
    let (admin, admin_csrf) = admin_of(&app, SOURCE).await;
    let home = admin.get("/dashboard").await.text().await.unwrap();
    assert_eq!(
        select_text(&html(&home), "li[data-kind='held_inquiry']").len(),
        1
    );
    let page = admin.get("/admin/held").await.text().await.unwrap();
    let held = waiting(&page);
    assert_eq!(held.len(), 1, "{page}");
    // Not even the administrators who decide learn where the person lives.
    assert!(!page.contains(ASKING) && !page.contains("千代田"), "{page}");
    let id = &held[0];
    // No reason, no decision.
    let (status, page) = decide(&admin, &admin_csrf, id, "approve", " ").await;
    assert_eq!(status, 422);
    assert!(select_text(&html(&page), "#held-error")[0].contains("理由"));
    assert!(app.doses_of(ASKING, &mine).len() == before);

    let (status, _) = decide(&admin, &admin_csrf, id, "approve", "本人の同意を確認済み").await;
    assert_eq!(status, 303);
    // Now the asker has the doses, its record says provided, and its
    // administrators are told.
    let copied = app.doses_of(ASKING, &mine);
    assert_eq!(copied.len(), before + 2, "{copied:?}");
    assert!(
        app.provisions(ASKING)
            .iter()
            .any(|r| r.outcome == "provided" && r.dose_count == 2)
    );
    assert!(
        app.provisions(SOURCE)
            .iter()
            .any(|r| r.outcome == "provided" && r.resident_id.as_deref() == Some(theirs.as_str()))
    );
    assert!(
        app.notices(ASKING)
            .iter()
            .any(|n| n.kind == "held_released")
    );
    // Decided once only.
    let (status, page) = decide(&admin, &admin_csrf, id, "refuse", "重ねて").await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"held-error\""));
    assert_eq!(app.doses_of(ASKING, &mine).len(), before + 2);
    let log = app.log_text(SOURCE);
    assert!(log.contains("transfer.release"));
    assert!(!log.contains(ASKING));
    // Nor do the lines' accounts and addresses: the asker's login names
    // its municipality.
    let who = app.log_accounts(SOURCE);
    assert!(!who.contains(ASKING), "{who}");
    // The disclosure still names no municipality.
    let disclosure = keeper
        .get(&format!("/residents/{theirs}/provisions.csv"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!disclosure.contains(ASKING));
    assert!(!disclosure.contains("千代田"));
}

#[tokio::test]
async fn a_refused_inquiry_gives_nothing_ever() {
    let (app, staff, csrf) = asking_staff().await;
    protect(&app, SOURCE).await;
    let mine = app.resident_of(ASKING, MOVER_NUMBER);
    let before = app.doses_of(ASKING, &mine).len();
    staff.inquire(&csrf, MOVER_NUMBER, SOURCE, true).await;
    let (admin, admin_csrf) = admin_of(&app, SOURCE).await;
    let page = admin.get("/admin/held").await.text().await.unwrap();
    let id = waiting(&page).pop().expect("one held");
    let (status, _) = decide(
        &admin,
        &admin_csrf,
        &id,
        "refuse",
        "本人の申出により提供しない",
    )
    .await;
    assert_eq!(status, 303);
    assert!(waiting(&admin.get("/admin/held").await.text().await.unwrap()).is_empty());
    assert_eq!(app.doses_of(ASKING, &mine).len(), before);
    assert!(
        app.provisions(SOURCE)
            .iter()
            .all(|r| r.outcome != "provided")
    );
    // Another municipality's administrator cannot decide it.
    let (other, other_csrf) = admin_of(&app, ASKING).await;
    let (status, _) = decide(&other, &other_csrf, &id, "approve", "x").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn asking_about_our_own_protected_resident_waits_for_another_person_to_approve() {
    let (app, staff, csrf) = asking_staff().await;
    let mine = protect(&app, ASKING).await;
    let before = app.doses_of(ASKING, &mine).len();
    let (status, page) = staff.inquire(&csrf, MOVER_NUMBER, SOURCE, true).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"held\""), "{page}");
    // Nothing reached the source.
    assert!(app.provisions(SOURCE).is_empty());
    let (admin, admin_csrf) = admin_of(&app, ASKING).await;
    let page = admin.get("/admin/held").await.text().await.unwrap();
    let id = waiting(&page).pop().expect("one held");
    assert!(page.contains("131016-staff"), "our own asker is named");

    // The person who asked may not approve their own inquiry.
    let requester = {
        let mut conn = app.conn();
        vrs::db::models::accounts::AccountRow::find_by_login_id(&mut conn, "131016-staff")
            .unwrap()
            .unwrap()
    };
    let same = vrs::audit::Actor::account(&requester.id, "131016-staff", "127.0.0.1");
    let decided = {
        let mut conn = app.conn();
        vrs::flows::transfer::decide(
            &mut conn,
            app.master(),
            &app.state.audit,
            Default::default(),
            &same,
            code(ASKING),
            &id,
            true,
            &vrs::domain::ChangeReason::parse("自分で承認").unwrap(),
        )
        .unwrap()
    };
    assert_eq!(decided, vrs::flows::transfer::Decided::SamePerson);
    assert!(app.provisions(SOURCE).is_empty());

    let (status, _) = decide(&admin, &admin_csrf, &id, "approve", "本人確認済み").await;
    assert_eq!(status, 303);
    assert_eq!(app.doses_of(ASKING, &mine).len(), before + 2);
    assert!(
        app.provisions(SOURCE)
            .iter()
            .any(|r| r.outcome == "provided")
    );
    assert!(
        app.notices(ASKING)
            .iter()
            .any(|n| n.kind == "held_released")
    );
}

#[tokio::test]
async fn a_bulk_inquiry_holds_its_protected_lines_either_way() {
    let (app, staff, csrf) = asking_staff().await;
    // The mover protected at the source: the line reads as a miss there.
    protect(&app, SOURCE).await;
    let (job, _) = staff.bulk(&csrf, movers_file(3)).await;
    let csv = staff
        .get(&format!("{job}/result.csv"))
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[1].contains(",該当なし,0,"), "{csv}");
    let (admin, _) = admin_of(&app, SOURCE).await;
    assert_eq!(
        waiting(&admin.get("/admin/held").await.text().await.unwrap()).len(),
        1
    );

    // The mover protected here too: the line is held before it is sent.
    protect(&app, ASKING).await;
    let sent_before = app.provisions(SOURCE).len();
    let (job, _) = staff.bulk(&csrf, movers_file(3)).await;
    let csv = staff
        .get(&format!("{job}/result.csv"))
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[1].contains(",保留（支援措置のため管理者の承認待ち）,0,"),
        "{csv}"
    );
    // Only the other three lines reached the source.
    assert_eq!(app.provisions(SOURCE).len(), sent_before + 3);
    let (mine, _) = admin_of(&app, ASKING).await;
    assert_eq!(
        waiting(&mine.get("/admin/held").await.text().await.unwrap()).len(),
        1
    );
}
