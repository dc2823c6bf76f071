//! Flow 4 over HTTP: the transfer inquiry at the window, in bulk and by API,
//! the provision records both sides keep, their retention, and abuse.
//!
//! The demo's mover: 古河市 (082040) resident 1 moved to 千代田区 (131016),
//! where they are resident 36; both hold the example number 123456789018.

use crate::helpers::*;
use diesel::prelude::*;
use vrs::db::models::doses::DoseRow;
use vrs::db::models::provisions::{NoticeRow, ProvisionRow};
use vrs::db::schema;
use vrs::demo::{DEMO_PASSWORD, MOVER_NUMBER, MOVER_TO, demo_resident};
use vrs::domain::{MyNumber, Role};
use vrs::tenancy::Partition;

const ASKING: &str = "131016";
const SOURCE: &str = "082040";

pub(crate) fn number_of(muni: &str, i: usize) -> String {
    let n = demo_resident(code(muni), i).my_number.unwrap();
    String::from_utf8(n.expose_digits().to_vec()).unwrap()
}

/// The demo app with 千代田区's terminals on loopback, and 千代田区's staff
/// (who hold every staff permission) signed in.
pub(crate) async fn asking_staff() -> (TestApp, TestApp, String) {
    let app = spawn_app().await;
    app.seed_demo();
    app.declare_lgwan(ASKING);
    let staff = TestApp::handle(&app);
    let csrf = staff.login_as("131016-staff", DEMO_PASSWORD).await;
    (app, staff, csrf)
}

impl TestApp {
    pub(crate) async fn inquire(
        &self,
        csrf: &str,
        number: &str,
        source: &str,
        consent: bool,
    ) -> (u16, String) {
        let consent = if consent { "1" } else { "" };
        let res = self
            .client
            .post(self.url("/transfers"))
            .form(&[
                ("csrf", csrf),
                ("my_number", number),
                ("my_number_again", number),
                ("source", source),
                ("consent", consent),
                ("id_document", "my_number_card"),
                ("checked_by", "窓口　一郎"),
                ("purpose", "ticket_issuance"),
            ])
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// A resident's id, found by number through the partition's index.
    pub(crate) fn resident_of(&self, muni: &str, number: &str) -> String {
        let mut conn = self.conn();
        let p = Partition::open(&mut conn, self.master(), code(muni)).unwrap();
        let n = MyNumber::parse(number).unwrap();
        p.run(&mut conn, |s, c| {
            vrs::flows::residents::find_by_my_number(
                s,
                c,
                &n,
                vrs::flows::residents::MyNumberPurpose::TransferInquiry,
            )
        })
        .unwrap()
        .unwrap()
        .id
    }

    pub(crate) fn doses_of(&self, muni: &str, resident: &str) -> Vec<DoseRow> {
        let mut conn = self.conn();
        let p = Partition::open(&mut conn, self.master(), code(muni)).unwrap();
        p.run(&mut conn, |s, c| DoseRow::of_resident(s, c, resident))
            .unwrap()
    }

    pub(crate) fn provisions(&self, muni: &str) -> Vec<ProvisionRow> {
        let mut conn = self.conn();
        let p = Partition::open(&mut conn, self.master(), code(muni)).unwrap();
        p.run(&mut conn, |_s, c| ProvisionRow::recent(c, 100_000))
            .unwrap()
    }

    pub(crate) fn notices(&self, muni: &str) -> Vec<NoticeRow> {
        let mut conn = self.conn();
        let p = Partition::open(&mut conn, self.master(), code(muni)).unwrap();
        p.run(&mut conn, |_, c| NoticeRow::open(c)).unwrap()
    }

    /// Every row a municipality holds, per table, and its log lines.
    pub(crate) fn holdings(&self, muni: &str) -> Vec<(&'static str, i64)> {
        let mut conn = self.conn();
        vrs::audit::flush(&mut conn, &self.state.audit).unwrap();
        let mut out = Vec::new();
        conn.transaction(|c| {
            vrs::db::set_transaction_municipality(c, muni).unwrap();
            for table in schema::TENANT_TABLES {
                let n: i64 = diesel::sql_query(format!(
                    "SELECT COUNT(*) AS n FROM {table} WHERE municipality_code = '{muni}'"
                ))
                .get_result::<Count>(c)?
                .n;
                out.push((*table, n));
            }
            let lines: i64 = schema::audit_log::table
                .filter(schema::audit_log::chain.eq(muni))
                .count()
                .get_result(c)?;
            out.push(("audit_log", lines));
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
        out
    }

    /// The text of every log line of a chain.
    pub(crate) fn log_text(&self, muni: &str) -> String {
        let mut conn = self.conn();
        vrs::audit::flush(&mut conn, &self.state.audit).unwrap();
        let rows: Vec<(String, Option<String>, String, Option<String>)> = schema::audit_log::table
            .filter(schema::audit_log::chain.eq(muni))
            .select((
                schema::audit_log::action,
                schema::audit_log::target,
                schema::audit_log::outcome,
                schema::audit_log::detail,
            ))
            .load(&mut *conn)
            .unwrap();
        format!("{rows:?}")
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn a_match_copies_exactly_the_sources_doses_and_both_sides_keep_provision_records() {
    let (app, staff, csrf) = asking_staff().await;
    let source_person = app.resident_of(SOURCE, MOVER_NUMBER);
    let asking_person = app.resident_of(ASKING, MOVER_NUMBER);
    let theirs = app.doses_of(SOURCE, &source_person);
    assert_eq!(theirs.len(), 2, "the demo mover had two doses in 古河市");
    assert!(app.doses_of(ASKING, &asking_person).is_empty());

    let (status, page) = staff.inquire(&csrf, MOVER_NUMBER, SOURCE, true).await;
    assert_eq!(status, 200, "{page}");
    let doc = html(&page);
    assert_eq!(select_text(&doc, "#given-doses tbody tr").len(), 2);
    assert!(!page.contains(MOVER_NUMBER), "the page echoes the number");
    assert!(page.contains(&format!("/residents/{asking_person}")));

    // Exactly the source's doses, marked with their origin.
    let copied = app.doses_of(ASKING, &asking_person);
    let key = |d: &DoseRow| {
        (
            d.dose_number,
            d.administered_on,
            d.product_code.clone(),
            d.lot_number.clone(),
            d.site_name.clone(),
            d.site_municipality_code.clone(),
        )
    };
    assert_eq!(
        copied.iter().map(key).collect::<Vec<_>>(),
        theirs.iter().map(key).collect::<Vec<_>>()
    );
    for d in &copied {
        assert_eq!(d.origin, "transferred");
        assert_eq!(d.origin_municipality_code.as_deref(), Some(SOURCE));
        assert_eq!(d.municipality_code, ASKING);
        assert_eq!(d.status, "valid");
    }

    // One provision record on each side, metadata only.
    let mine = app.provisions(ASKING);
    let given = app.provisions(SOURCE);
    assert_eq!((mine.len(), given.len()), (1, 1));
    let (m, g) = (&mine[0], &given[0]);
    assert_eq!(m.inquiry_id, g.inquiry_id);
    assert_eq!(
        (m.side.as_str(), g.side.as_str()),
        ("requester", "provider")
    );
    assert_eq!(m.resident_id.as_deref(), Some(asking_person.as_str()));
    assert_eq!(g.resident_id.as_deref(), Some(source_person.as_str()));
    for r in [m, g] {
        assert_eq!(r.outcome, "provided");
        assert_eq!(r.dose_count, 2);
        assert_eq!(
            (r.requester_code.as_str(), r.provider_code.as_str()),
            (ASKING, SOURCE)
        );
        assert_eq!(r.requester_login_id.as_deref(), Some("131016-staff"));
        assert_eq!(r.purpose, "ticket_issuance");
        assert_eq!(r.channel, "window");
        assert!(!format!("{r:?}").contains(MOVER_NUMBER));
    }
    assert!(m.consent_form);
    assert_eq!(m.id_document.as_deref(), Some("my_number_card"));

    // Both operation logs say it; neither holds the number.
    let asking_log = app.log_text(ASKING);
    let source_log = app.log_text(SOURCE);
    assert!(asking_log.contains("transfer.inquire"), "{asking_log}");
    assert!(source_log.contains("transfer.answer"), "{source_log}");
    assert!(source_log.contains("purpose=answering_inquiry"));
    assert!(!asking_log.contains(MOVER_NUMBER) && !source_log.contains(MOVER_NUMBER));

    // Asking again copies nothing twice.
    let (status, page) = staff.inquire(&csrf, MOVER_NUMBER, SOURCE, true).await;
    assert_eq!(status, 200);
    assert_eq!(select_text(&html(&page), "#given-doses tbody tr").len(), 2);
    assert_eq!(app.doses_of(ASKING, &asking_person).len(), 2);
    assert_eq!(app.provisions(ASKING).len(), 2);

    // The record page shows the transferred doses; the provision list and
    // its CSV name both inquiries, and reading them is logged.
    let record = staff
        .get(&format!("/residents/{asking_person}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(record.contains("転出元から取得"));
    let list = staff
        .get(&format!("/residents/{asking_person}/provisions"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(select_text(&html(&list), "#provisions tbody tr").len(), 2);
    let csv = staff
        .get(&format!("/residents/{asking_person}/provisions.csv"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains("茨城県古河市") && !csv.contains(MOVER_NUMBER));
    assert!(app.log_text(ASKING).contains("provisions.read"));
    // Another municipality's resident id is simply not found.
    let foreign = staff
        .get(&format!("/residents/{source_person}/provisions"))
        .await;
    assert_eq!(foreign.status(), 404);
}

#[tokio::test]
async fn wrong_code_wrong_number_and_unknown_number_answer_alike_and_the_source_keeps_nothing_but_the_attempt()
 {
    let (app, staff, csrf) = asking_staff().await;
    // An unknown number: a resident of ours whose number no municipality
    // asked knows.
    let stranger = "S0000001";
    let unknown = MyNumber::from_body(55_555_555_555);
    let unknown_digits = String::from_utf8(unknown.expose_digits().to_vec()).unwrap();
    {
        let mut conn = app.conn();
        let p = Partition::open(&mut conn, app.master(), code(ASKING)).unwrap();
        let mut person = demo_resident(code(ASKING), 0);
        person.addressee_number = vrs::domain::AddresseeNumber::parse(stranger).unwrap();
        person.my_number = Some(unknown);
        p.run(&mut conn, |s, c| {
            vrs::flows::residents::register(s, c, &person)
        })
        .unwrap();
    }
    let before_source = app.holdings(SOURCE);
    let before_other = app.holdings("012025");

    // The mover's number sent to the wrong municipality (函館市).
    let (s1, wrong_code) = staff.inquire(&csrf, MOVER_NUMBER, "012025", true).await;
    // Another of our residents' numbers: 古河市 has nobody with it.
    let (s2, wrong_number) = staff
        .inquire(&csrf, &number_of(ASKING, 5), SOURCE, true)
        .await;
    let (s3, unknown_number) = staff.inquire(&csrf, &unknown_digits, SOURCE, true).await;
    assert_eq!((s1, s2, s3), (200, 200, 200));
    assert_eq!(wrong_code, wrong_number, "the answers differ");
    assert_eq!(wrong_number, unknown_number, "the answers differ");
    assert_eq!(select_text(&html(&wrong_code), "#no-match").len(), 1);

    // At the municipalities asked: one attempt record each, about nobody,
    // and nothing else — no log line, no copy of the number.
    let after_source = app.holdings(SOURCE);
    let after_other = app.holdings("012025");
    let grew = |before: &[(&str, i64)], after: &[(&str, i64)]| -> Vec<(String, i64)> {
        before
            .iter()
            .zip(after)
            .filter(|(b, a)| b.1 != a.1)
            .map(|(b, a)| (b.0.to_string(), a.1 - b.1))
            .collect()
    };
    assert_eq!(
        grew(&before_source, &after_source),
        vec![("provision_records".to_string(), 2)]
    );
    assert_eq!(
        grew(&before_other, &after_other),
        vec![("provision_records".to_string(), 1)]
    );
    for muni in [SOURCE, "012025"] {
        for r in app.provisions(muni) {
            assert_eq!(r.outcome, "no_match");
            assert_eq!(r.resident_id, None);
            assert_eq!(r.dose_count, 0);
            let text = format!("{r:?}");
            for n in [MOVER_NUMBER, &unknown_digits, &number_of(ASKING, 5)] {
                assert!(!text.contains(n));
            }
        }
    }
    // The asking side recorded all three, unmatched, and logged them.
    let mine = app.provisions(ASKING);
    assert_eq!(mine.len(), 3);
    assert!(
        mine.iter()
            .all(|r| r.outcome == "no_match" && r.side == "requester")
    );
    assert_eq!(app.log_text(ASKING).matches("transfer.inquire").count(), 3);
}

#[tokio::test]
async fn without_recorded_consent_or_with_a_bad_field_nothing_is_sent() {
    let (app, staff, csrf) = asking_staff().await;
    let before = (app.holdings(SOURCE), app.holdings(ASKING));
    let (status, page) = staff.inquire(&csrf, MOVER_NUMBER, SOURCE, false).await;
    assert_eq!(status, 422);
    let errors = select_text(&html(&page), "#inquiry-errors li");
    assert_eq!(
        errors,
        vec!["同意書の受領: 本人の同意（同意書の受領）が記録されていません。照会できません"]
    );
    assert!(!page.contains(MOVER_NUMBER));
    // A wrong check digit in the code, and two entries that differ.
    let res = staff
        .client
        .post(staff.url("/transfers"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("my_number", MOVER_NUMBER),
            ("my_number_again", "123456789026"),
            ("source", "082041"),
            ("consent", "1"),
            ("id_document", "my_number_card"),
            ("checked_by", "窓口"),
            ("purpose", "ticket_issuance"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert_eq!(
        select_text(&html(&page), "#inquiry-errors li"),
        vec![
            "個人番号（確認）: 2回の入力が一致しません",
            "転出元市区町村コード: チェックデジットが一致しません"
        ]
    );
    // Our own code is not a source, and a number not registered here is
    // not sent.
    let (status, page) = staff.inquire(&csrf, MOVER_NUMBER, ASKING, true).await;
    assert_eq!(status, 422, "{page}");
    let (status, page) = staff
        .inquire(&csrf, &number_of(SOURCE, 3), SOURCE, true)
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("当団体の住民として登録されていません"));
    assert_eq!(
        before,
        (app.holdings(SOURCE), {
            let mut a = app.holdings(ASKING);
            // Only the refusal's log line was added here.
            let log = a.iter_mut().find(|(t, _)| *t == "audit_log").unwrap();
            log.1 -= 1;
            a
        })
    );
}

#[tokio::test]
async fn sites_viewers_operators_administrators_and_outside_terminals_are_refused() {
    let app = spawn_app().await;
    app.seed_demo();
    let viewer = app.create_account("nat-viewer", Role::NationalViewer, None, &[]);
    let operator = app.create_account("operator2", Role::Operator, None, &[]);
    let lookup_only = app.create_account(
        "131016-numbers",
        Role::MunicipalStaff,
        Some(ASKING),
        &["my_number"],
    );
    // Outside LG-WAN first: even the staff with the permission is refused.
    let staff = TestApp::handle(&app);
    let csrf = staff.login_as("131016-staff", DEMO_PASSWORD).await;
    assert_eq!(staff.get("/transfers").await.status(), 403);
    let (status, _) = staff.inquire(&csrf, MOVER_NUMBER, SOURCE, true).await;
    assert_eq!(status, 403);
    assert_eq!(staff.get("/transfers/bulk").await.status(), 403);
    assert!(app.provisions(SOURCE).is_empty());

    app.declare_lgwan(ASKING);
    for (login, pw) in [
        ("131016-tablet", DEMO_PASSWORD.to_string()),
        ("131016-admin", DEMO_PASSWORD.to_string()),
        ("nat-viewer", viewer),
        ("operator2", operator),
        ("131016-numbers", lookup_only),
    ] {
        let s = TestApp::handle(&app);
        let csrf = s.login_as(login, &pw).await;
        assert_eq!(s.get("/transfers").await.status(), 403, "{login}");
        let (status, _) = s.inquire(&csrf, MOVER_NUMBER, SOURCE, true).await;
        assert_eq!(status, 403, "{login}");
    }
    assert!(app.provisions(SOURCE).is_empty());
    assert_eq!(staff.get("/transfers").await.status(), 200);
}

#[tokio::test]
async fn past_the_rate_inquiries_are_refused_and_both_administrators_are_told() {
    let app = spawn_app_with(|a| a.inquiry_rate_account = 2).await;
    app.seed_demo();
    app.declare_lgwan(ASKING);
    let staff = TestApp::handle(&app);
    let csrf = staff.login_as("131016-staff", DEMO_PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(
            staff.inquire(&csrf, MOVER_NUMBER, SOURCE, true).await.0,
            200
        );
    }
    let (status, page) = staff.inquire(&csrf, MOVER_NUMBER, SOURCE, true).await;
    assert_eq!(status, 429);
    assert!(page.contains("上限"));
    let refused: Vec<_> = app
        .provisions(ASKING)
        .into_iter()
        .filter(|r| r.outcome == "refused")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].refusal.as_deref(), Some("rate_limit"));
    // The source got only the two inquiries that were sent.
    assert_eq!(app.provisions(SOURCE).len(), 2);
    let asking = app.notices(ASKING);
    let source = app.notices(SOURCE);
    assert_eq!(asking.len(), 1);
    assert_eq!(asking[0].subject, "account:131016-staff");
    assert_eq!(source.len(), 1);
    assert_eq!(source[0].subject, "municipality:131016");
    // A fourth refusal raises no second notice while one is open.
    assert_eq!(
        staff.inquire(&csrf, MOVER_NUMBER, SOURCE, true).await.0,
        429
    );
    assert_eq!(app.notices(ASKING).len(), 1);

    // Each administrator sees it on the dashboard and can close it.
    for (muni, expect) in [(ASKING, "131016-staff"), (SOURCE, "東京都千代田区")] {
        let admin = TestApp::handle(&app);
        let admin_csrf = admin
            .login_as(&format!("{muni}-admin"), DEMO_PASSWORD)
            .await;
        let dash = admin.get("/dashboard").await.text().await.unwrap();
        let items = select_text(&html(&dash), "#notices li");
        assert_eq!(items.len(), 1, "{dash}");
        assert!(items[0].contains(expect), "{items:?}");
        let id = &app.notices(muni)[0].id;
        let res = admin
            .client
            .post(admin.url(&format!("/admin/notices/{id}/close")))
            .form(&[("csrf", admin_csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert!(app.notices(muni).is_empty());
    }
    assert!(app.log_text(ASKING).contains("reason=rate_limit"));
}

/// A movers' file for 千代田区: the demo mover, then `others` of its own
/// residents whom 古河市 does not know.
pub(crate) fn movers_file(others: usize) -> String {
    let mut s = String::from("宛名番号,個人番号,転出元市区町村コード,本人同意,本人確認書類\n");
    s.push_str(&format!(
        "D{:07},{MOVER_NUMBER},{SOURCE},1,個人番号カード\n",
        MOVER_TO.1 + 1
    ));
    for i in 0..others {
        s.push_str(&format!(
            "D{:07},{},{SOURCE},済,運転免許証\n",
            i + 1,
            number_of(ASKING, i)
        ));
    }
    s
}

impl TestApp {
    pub(crate) async fn bulk(&self, csrf: &str, file: String) -> (String, String) {
        let form = reqwest::multipart::Form::new()
            .text("csrf", csrf.to_string())
            .text("purpose", "ticket_issuance")
            .text("encoding", "auto")
            .part(
                "file",
                reqwest::multipart::Part::bytes(file.into_bytes()).file_name("movers.csv"),
            );
        let res = self
            .client
            .post(self.url("/transfers/bulk"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        let job = res.headers()["location"].to_str().unwrap().to_string();
        for _ in 0..600 {
            let s: crate::residents::Status = self
                .get(&format!("{job}/status"))
                .await
                .json()
                .await
                .unwrap();
            if s.done {
                return (job.clone(), self.get(&job).await.text().await.unwrap());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("bulk job did not finish");
    }
}

#[tokio::test]
async fn a_bulk_file_with_one_bad_line_sends_nothing_and_names_the_line() {
    let (app, staff, csrf) = asking_staff().await;
    let before = (app.holdings(SOURCE), app.holdings(ASKING));
    let mut file = movers_file(20);
    // Line 7: no consent recorded; line 9: a wrong check digit.
    let mut lines: Vec<String> = file.lines().map(str::to_string).collect();
    lines[6] = lines[6].replace(",済,", ",,");
    let bad = lines[8].clone();
    let digits = bad.split(',').nth(1).unwrap().to_string();
    let wrong = format!(
        "{}{}",
        &digits[..11],
        (digits.as_bytes()[11] - b'0' + 1) % 10
    );
    lines[8] = bad.replace(&digits, &wrong);
    file = lines.join("\n") + "\n";
    let (_, page) = staff.bulk(&csrf, file).await;
    let doc = html(&page);
    assert_eq!(select_text(&doc, "#rejected").len(), 1, "{page}");
    let rows: Vec<String> = select_text(&doc, "#errors tbody tr");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with("7本人同意"), "{rows:?}");
    assert!(rows[1].starts_with("9個人番号"), "{rows:?}");
    assert!(!page.contains(&digits) && !page.contains(&wrong));
    // Nothing was sent, nothing stored on either side (but the job's
    // journal line and its log line here).
    let after_source = app.holdings(SOURCE);
    assert_eq!(before.0, after_source);
    let after: Vec<_> = app
        .holdings(ASKING)
        .into_iter()
        .filter(|(t, _)| *t != "import_jobs" && *t != "audit_log")
        .collect();
    let was: Vec<_> = before
        .1
        .into_iter()
        .filter(|(t, _)| *t != "import_jobs" && *t != "audit_log")
        .collect();
    assert_eq!(was, after);
}

#[tokio::test]
async fn a_bulk_inquiry_copies_the_matches_and_its_result_holds_no_individual_number() {
    let (app, staff, csrf) = asking_staff().await;
    let (job, page) = staff.bulk(&csrf, movers_file(30)).await;
    let doc = html(&page);
    assert_eq!(select_text(&doc, "#matched"), vec!["1"], "{page}");
    assert_eq!(select_text(&doc, "#unmatched"), vec!["30"]);
    assert_eq!(select_text(&doc, "#doses"), vec!["2"]);
    let mover = app.resident_of(ASKING, MOVER_NUMBER);
    assert_eq!(app.doses_of(ASKING, &mover).len(), 2);
    // 31 records on each side, one per line.
    let mine = app.provisions(ASKING);
    assert_eq!(mine.len(), 31);
    assert!(mine.iter().all(|r| r.channel == "bulk" && r.consent_form));
    assert_eq!(app.provisions(SOURCE).len(), 31);

    let res = staff.get(&format!("{job}/result.csv")).await;
    assert_eq!(res.status(), 200);
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 32);
    assert!(lines[1].starts_with(&format!(
        "2,D{:07},082040,茨城県古河市,該当あり,2,",
        MOVER_TO.1 + 1
    )));
    assert!(lines[2].starts_with("3,D0000001,082040,茨城県古河市,該当なし,0,"));
    // No individual number of anyone, and no 12-digit run at all.
    for muni in vrs::demo::DEMO_MUNICIPALITIES {
        for i in 0..vrs::demo::RESIDENTS_PER_MUNICIPALITY {
            assert!(!csv.contains(&number_of(muni, i)));
        }
    }
    // No cell shaped like a number either (the last, the inquiry's UUID,
    // may hold a run of 12 hex digits that are all decimal).
    for line in &lines {
        let cells: Vec<&str> = line.split(',').collect();
        for cell in &cells[..cells.len() - 1] {
            assert_eq!(vrs::domain::mask_number_like(cell), *cell);
        }
    }
    // Every line is in the asking municipality's log.
    assert_eq!(app.log_text(ASKING).matches("channel=bulk").count(), 31);
}

#[tokio::test]
async fn the_retention_purge_removes_exactly_the_records_past_seven_years_and_records_never_change()
{
    let app = spawn_app().await;
    app.seed_demo();
    let now = vrs::clock::now();
    let cutoff = vrs::flows::provisions::cutoff(now);
    let record = |id: &str, at: chrono::NaiveDateTime| ProvisionRow {
        municipality_code: SOURCE.into(),
        id: id.into(),
        inquiry_id: format!("inq-{id}"),
        side: "provider".into(),
        requested_at: at,
        answered_at: Some(at),
        requester_code: ASKING.into(),
        requester_account_id: None,
        requester_login_id: Some("131016-staff".into()),
        requester_addr: None,
        provider_code: SOURCE.into(),
        resident_id: None,
        channel: "window".into(),
        procedure_code: "transfer_in_inquiry".into(),
        purpose: "ticket_issuance".into(),
        items: String::new(),
        dose_count: 0,
        outcome: "no_match".into(),
        refusal: None,
        consent_form: false,
        id_document: None,
        id_checked_by: None,
        job_id: None,
        line_no: None,
    };
    let rows = vec![
        record("old-2", cutoff - chrono::Duration::days(400)),
        record("old-1", cutoff - chrono::Duration::seconds(1)),
        record("kept-1", cutoff + chrono::Duration::seconds(60)),
        record("kept-2", now - chrono::Duration::days(1)),
    ];
    let mut conn = app.conn();
    let p = Partition::open(&mut conn, app.master(), code(SOURCE)).unwrap();
    p.run(&mut conn, |_s, c| ProvisionRow::insert_many(c, &rows))
        .unwrap();
    // The database refuses to change one.
    let changed = p.run(&mut conn, |_, c| {
        diesel::update(schema::provision_records::table)
            .set(schema::provision_records::outcome.eq("provided"))
            .execute(&mut **c)
            .map_err(vrs::db::DbError::from)
    });
    assert!(changed.is_err(), "a provision record was changed");
    drop(conn);

    // The command purges (the server runs the same every hour).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vrs"))
        .args(["provisions", "purge"])
        .env("VRS_DATA_DIR", app.data_dir())
        .env("VRS_DATABASE_URL", app.db.url_string())
        .env_remove("VRS_MASTER_KEY")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("082040: 2 provision records"), "{printed}");
    let mut left: Vec<String> = app.provisions(SOURCE).into_iter().map(|r| r.id).collect();
    left.sort();
    assert_eq!(left, vec!["kept-1", "kept-2"]);
    assert!(app.log_text(SOURCE).contains("provisions.purge"));
    assert!(app.log_text(SOURCE).contains("deleted=2"));
}

#[tokio::test]
async fn the_api_asks_like_the_window_and_only_from_lgwan() {
    let app = spawn_app().await;
    app.seed_demo();
    let token = |login: &'static str| {
        let app = &app;
        async move {
            let res = app
                .client
                .post(app.url("/api/v1/sessions"))
                .json(&serde_json::json!({ "login_id": login, "password": DEMO_PASSWORD }))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            res.json::<serde_json::Value>().await.unwrap()["token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let ask = |token: String, body: serde_json::Value| {
        let app = &app;
        async move {
            let res = app
                .client
                .post(app.url("/api/v1/transfer-inquiries"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let body = |number: &str, source: &str| {
        serde_json::json!({
            "individual_number": number,
            "source_municipality_code": source,
            "consent": { "form_received": true, "id_document": "passport", "checked_by": "窓口" },
            "purpose": "history_confirmation",
        })
    };
    let staff = token("131016-staff").await;
    let (status, text) = ask(staff.clone(), body(MOVER_NUMBER, SOURCE)).await;
    assert_eq!(
        (status, text.as_str()),
        (403, r#"{"error":"outside_lgwan"}"#)
    );
    app.declare_lgwan(ASKING);

    let (status, text) = ask(staff.clone(), body(MOVER_NUMBER, SOURCE)).await;
    assert_eq!(status, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["outcome"], "matched");
    assert_eq!(v["doses"].as_array().unwrap().len(), 2);
    assert!(!text.contains(MOVER_NUMBER));

    let (s1, wrong_code) = ask(staff.clone(), body(MOVER_NUMBER, "012025")).await;
    let (s2, wrong_number) = ask(staff.clone(), body(&number_of(ASKING, 5), SOURCE)).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(wrong_code, r#"{"outcome":"no_match"}"#);
    assert_eq!(wrong_code, wrong_number);

    let mut no_consent = body(MOVER_NUMBER, SOURCE);
    no_consent["consent"]["form_received"] = serde_json::json!(false);
    let (status, text) = ask(staff.clone(), no_consent).await;
    assert_eq!(status, 422);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["field"], "consent.form_received");

    // A site's token is refused whatever it sends.
    let tablet = token("131016-tablet").await;
    let (status, _) = ask(tablet, body(MOVER_NUMBER, SOURCE)).await;
    assert_eq!(status, 403);

    // The inquiry permission without the individual-number one: refused
    // here and at the window, on an LG-WAN terminal too.
    let pw = app.create_account(
        "131016-inquirer",
        vrs::domain::Role::MunicipalStaff,
        Some(ASKING),
        &["inquiry"],
    );
    let res = app
        .client
        .post(app.url("/api/v1/sessions"))
        .json(&serde_json::json!({ "login_id": "131016-inquirer", "password": pw }))
        .send()
        .await
        .unwrap();
    let inquirer = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, text) = ask(inquirer, body(MOVER_NUMBER, SOURCE)).await;
    assert_eq!((status, text.as_str()), (403, r#"{"error":"forbidden"}"#));
    let window = TestApp::handle(&app);
    window.login_as("131016-inquirer", &pw).await;
    assert_eq!(window.get("/transfers").await.status(), 403);
    assert_eq!(window.get("/transfers/bulk").await.status(), 403);
    let refusals = app.log_text(ASKING);
    assert!(refusals.contains("reason=role"), "{refusals}");
    let api: Vec<_> = app
        .provisions(ASKING)
        .into_iter()
        .filter(|r| r.channel == "api")
        .collect();
    assert_eq!(api.len(), 3);
    assert_eq!(
        api.iter()
            .filter(|r| r.purpose == "history_confirmation")
            .count(),
        3
    );
}

#[tokio::test]
async fn a_bulk_file_with_windows_or_old_mac_line_ends_names_each_bad_line_itself() {
    let (app, staff, csrf) = asking_staff().await;
    let before = (app.holdings(SOURCE), app.holdings(ASKING));
    let good: Vec<String> = movers_file(20).lines().map(str::to_string).collect();
    let files: Vec<(&str, String)> = ["\r\n", "\r"]
        .into_iter()
        .map(|end| {
            let mut lines = good.clone();
            // Line 12: a wrong check digit.
            let digits = lines[11].split(',').nth(1).unwrap().to_string();
            let wrong = format!(
                "{}{}",
                &digits[..11],
                (digits.as_bytes()[11] - b'0' + 1) % 10
            );
            lines[11] = lines[11].replace(&digits, &wrong);
            // Line 16: the ID document's cell is missing.
            lines[15] = lines[15].rsplit_once(',').unwrap().0.to_string();
            (end, lines.join(end) + end)
        })
        .chain([
            // Cut off inside the last line.
            ("cut", {
                let f = movers_file(20);
                f[..f.rfind("運転").unwrap()].to_string()
            }),
        ])
        .collect();
    for (what, file) in files {
        let (_, page) = staff.bulk(&csrf, file).await;
        let doc = html(&page);
        assert_eq!(select_text(&doc, "#rejected").len(), 1, "{what}: {page}");
        let rows: Vec<String> = select_text(&doc, "#errors tbody tr");
        let want: &[&str] = if what == "cut" {
            &["22ファイルの最後の行が途中で切れています"]
        } else {
            &[
                "12個人番号",
                "16列の数が見出し行と合いません（見出し5列、この行4列）",
            ]
        };
        assert_eq!(rows.len(), want.len(), "{what}: {rows:?}");
        for (row, want) in rows.iter().zip(want) {
            assert!(row.starts_with(want), "{what}: {rows:?}");
        }
    }
    // Nothing was sent, nothing stored on either side (but the jobs'
    // journal lines and their log lines here).
    assert_eq!(before.0, app.holdings(SOURCE));
    let kept = |h: Vec<(&'static str, i64)>| -> Vec<_> {
        h.into_iter()
            .filter(|(t, _)| *t != "import_jobs" && *t != "audit_log")
            .collect()
    };
    assert_eq!(kept(before.1), kept(app.holdings(ASKING)));
}
