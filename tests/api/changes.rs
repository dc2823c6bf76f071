//! The resident registry's change file (異動) over HTTP: moves out and in,
//! deaths and renames applied together or not at all, tickets retired from
//! the move-out date, and doses recorded after it sent to the queue.

use crate::helpers::*;
use diesel::prelude::*;
use vrs::db::schema::{doses, tickets};
use vrs::demo::DEMO_PASSWORD;
use vrs::flows::residents::{HistoryEntry, Resident};

const MUNI: &str = "082040";

/// Registers `n` residents C-000..C-(n-1) with the tickets 70000000000..,
/// through the resident file, as 082040's staff; returns the CSRF token.
async fn registered(app: &TestApp, n: usize) -> String {
    app.declare_lgwan(MUNI);
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let mut file = String::from("宛名番号,氏名,氏名カナ,生年月日,性別,住所,接種券番号,券種,回数\n");
    for i in 0..n {
        file.push_str(&format!(
            "C-{i:03},笠間　{i}子,カサマ　ハナコ,1960-04-0{},2,茨城県笠間市{i}番地,{},1,1\n",
            i % 9 + 1,
            7_000_000_000u64 + i as u64
        ));
    }
    let (status, page) = app.import(&csrf, file.into_bytes(), "auto").await;
    assert_eq!(status, "succeeded", "{page}");
    csrf
}

impl TestApp {
    /// Uploads a change file and waits for its job; returns its status
    /// and page.
    pub async fn change_file(&self, csrf: &str, bytes: Vec<u8>) -> (String, String) {
        let form = reqwest::multipart::Form::new()
            .text("csrf", csrf.to_string())
            .text("encoding", "auto")
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name("idou.csv"),
            );
        let res = self
            .client
            .post(self.url("/residents/changes"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        let job = res.headers()["location"].to_str().unwrap().to_string();
        self.finished(&job).await
    }

    /// A resident of 082040 by 宛名番号, with their history, as staff read
    /// them.
    pub fn resident_by_addressee(&self, addressee: &str) -> Option<(Resident, Vec<HistoryEntry>)> {
        let mut conn = self.conn();
        let p = vrs::tenancy::Partition::open(&mut conn, self.master(), code(MUNI)).unwrap();
        p.read(&mut conn, |s, c| {
            let a = vrs::domain::AddresseeNumber::parse(addressee).unwrap();
            let Some(r) = vrs::flows::residents::find_by_addressee(s, c, &a)? else {
                return Ok(None);
            };
            let h = vrs::flows::residents::history(s, c, &r.id)?;
            Ok::<_, vrs::flows::residents::ResidentError>(Some((r, h)))
        })
        .unwrap()
    }

    /// A resident's doses: (status, rules failed).
    pub fn dose_states(&self, resident: &str) -> Vec<(String, Option<String>)> {
        let mut conn = self.conn();
        conn.transaction(|c| {
            vrs::db::set_transaction_municipality(c, MUNI).unwrap();
            doses::table
                .filter(doses::municipality_code.eq(MUNI))
                .filter(doses::resident_id.eq(resident))
                .order(doses::administered_on)
                .select((doses::status, doses::quality_flags))
                .load(c)
        })
        .unwrap()
    }

    /// A resident's tickets: (number, status, reason invalidated).
    pub fn tickets_of(&self, resident: &str) -> Vec<(String, String, Option<String>)> {
        let mut conn = self.conn();
        conn.transaction(|c| {
            vrs::db::set_transaction_municipality(c, MUNI).unwrap();
            tickets::table
                .filter(tickets::municipality_code.eq(MUNI))
                .filter(tickets::resident_id.eq(resident))
                .order(tickets::issued_at)
                .select((
                    tickets::ticket_number,
                    tickets::status,
                    tickets::invalidated_reason,
                ))
                .load(c)
        })
        .unwrap()
    }
}

const HEADER: &str = "宛名番号,異動事由,異動日,氏名,氏名カナ,生年月日,性別,住所\n";

fn days_ago(n: i64) -> String {
    (vrs::clock::today_in_japan() - chrono::Duration::days(n)).to_string()
}

#[tokio::test]
async fn a_change_file_moves_out_records_deaths_registers_arrivals_and_renames_together() {
    let app = spawn_app().await;
    app.seed_demo();
    let csrf = registered(&app, 6).await;
    let before = app.count_rows(MUNI);
    let moved = days_ago(3);
    let file = format!(
        "{HEADER}\
         C-000,転出,{moved},,,,,\n\
         C-001,12,{moved},,,,,\n\
         N-100,転入,{moved},水戸　一郎,ミト　イチロウ,1990-01-02,1,茨城県笠間市新町1\n\
         C-002,氏名変更,{moved},友部　二子,トモベ　フタコ,,,\n\
         C-003,転居,{moved},笠間　3子,,,,茨城県笠間市下市毛2\n\
         C-004,転出,{moved},,,,,\n\
         C-004,転入,{moved},笠間　4子,カサマ　ハナコ,1960-04-05,2,茨城県笠間市戻り町4\n"
    );
    let (status, page) = app.change_file(&csrf, file.into_bytes()).await;
    assert_eq!(status, "succeeded", "{page}");
    let doc = html(&page);
    for (id, n) in [
        ("#added", "1"),
        ("#returned", "1"),
        ("#moved-out", "2"),
        ("#deceased", "1"),
        ("#changed", "2"),
        ("#tickets-issued", "2"),
        ("#tickets-invalidated", "3"),
    ] {
        assert_eq!(select_text(&doc, id), [n], "{id}");
    }
    let on = chrono::NaiveDate::parse_from_str(&moved, "%Y-%m-%d").unwrap();
    // Moved out: flagged from the date, the ticket retired for it.
    let (gone, history) = app.resident_by_addressee("C-000").unwrap();
    assert_eq!((gone.moved_out_on, gone.deceased_on), (Some(on), None));
    assert_eq!(
        app.tickets_of(&gone.id),
        [(
            "7000000000".into(),
            "invalidated".into(),
            Some("moved_out".into())
        )]
    );
    let event = history
        .iter()
        .find(|e| e.kind == "registry_change")
        .unwrap();
    assert!(event.detail.reason.as_deref().unwrap().starts_with("転出"));
    let (dead, _) = app.resident_by_addressee("C-001").unwrap();
    assert_eq!(dead.deceased_on, Some(on));
    assert_eq!(app.tickets_of(&dead.id)[0].2.as_deref(), Some("deceased"));
    // Moved in: registered with an active ticket for dose 1.
    let (new, _) = app.resident_by_addressee("N-100").unwrap();
    assert_eq!(new.name_kanji.as_str(), "水戸　一郎");
    let t = app.tickets_of(&new.id);
    assert_eq!((t.len(), t[0].1.as_str()), (1, "active"));
    // Renamed, moved within the city: history keeps before and after.
    let (renamed, history) = app.resident_by_addressee("C-002").unwrap();
    assert_eq!(renamed.name_kana.as_str(), "トモベ　フタコ");
    let change = &history
        .iter()
        .find(|e| e.kind == "registry_change")
        .unwrap()
        .detail;
    assert!(
        change
            .changes
            .iter()
            .any(|c| c.before == "笠間　2子" && c.after == "友部　二子"),
        "{change:?}"
    );
    let (moved_within, _) = app.resident_by_addressee("C-003").unwrap();
    assert_eq!(moved_within.address.as_deref(), Some("茨城県笠間市下市毛2"));
    assert_eq!(moved_within.name_kanji.as_str(), "笠間　3子");
    // Out and back in the same file: current again, old ticket retired,
    // a new one issued.
    let (back, _) = app.resident_by_addressee("C-004").unwrap();
    assert_eq!((back.moved_out_on, back.deceased_on), (None, None));
    let t = app.tickets_of(&back.id);
    assert_eq!(
        t.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
        ["invalidated", "active"]
    );
    // One resident and two tickets more; the kept count of current
    // residents follows the flags (6 + 1 - 2).
    assert_eq!(app.count_rows(MUNI), (before.0 + 1, before.1 + 2));
    let (kept, counted) = app.current_residents(MUNI);
    assert_eq!((kept, counted), (before.0 + 1 - 2, before.0 + 1 - 2));
    let log = app.log_text(MUNI);
    assert!(log.contains("\"residents.changes\""), "{log}");
    assert!(!log.contains("failed"), "{log}");
}

#[tokio::test]
async fn any_bad_line_rejects_the_whole_file_by_line_and_column_and_stores_nothing() {
    let app = spawn_app().await;
    app.seed_demo();
    let csrf = registered(&app, 3).await;
    let before = app.count_rows(MUNI);
    let tomorrow = (vrs::clock::today_in_japan() + chrono::Duration::days(1)).to_string();
    let d = days_ago(1);
    let file = format!(
        "{HEADER}\
         C-000,転出,{d},,,,,\n\
         C-001,転居,{d},別の　名前,,,,茨城県笠間市3\n\
         Z-999,死亡,{d},,,,,\n\
         C-002,転入,{d},笠間　2子,カサマ　ハナコ,1960-04-03,2,\n\
         N-1,引越,{d},,,,,\n\
         N-2,転入,{tomorrow},水戸　花子,ミト　ハナコ,1990-01-01,2,\n\
         N-3,出生,{d},水戸　三郎,,2026-01-01,1,\n"
    );
    let (status, page) = app.change_file(&csrf, file.into_bytes()).await;
    assert_eq!(status, "rejected", "{page}");
    let errors: Vec<String> = select_text(&html(&page), "#errors tbody tr");
    let expect = [
        ("3", "氏名", "変更できない"),
        ("4", "宛名番号", "登録されていない"),
        ("5", "異動事由", "現に住民"),
        ("6", "異動事由", "選択肢"),
        ("7", "異動日", "未来"),
        ("8", "氏名カナ", "入力されていません"),
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    for ((line, column, words), row) in expect.iter().zip(&errors) {
        assert!(
            row.starts_with(&format!("{line}{column}")) && row.contains(words),
            "{row} / {line} {column} {words}"
        );
    }
    // Nothing of it: the good line's move-out neither.
    let (c0, history) = app.resident_by_addressee("C-000").unwrap();
    assert_eq!(c0.moved_out_on, None);
    assert!(history.iter().all(|e| e.kind != "registry_change"));
    assert_eq!(app.tickets_of(&c0.id)[0].1, "active");
    assert!(app.resident_by_addressee("N-2").is_none());
    assert_eq!(app.count_rows(MUNI), before);
    let (kept, counted) = app.current_residents(MUNI);
    assert_eq!((kept, counted), (before.0, before.0));
    assert!(
        app.log_text(MUNI)
            .contains("\"residents.changes\", Some(\"import:")
    );
}

#[tokio::test]
async fn a_dose_on_or_after_the_move_out_date_goes_to_the_queue_and_the_ticket_is_refused() {
    let app = spawn_app().await;
    app.seed_demo();
    let csrf = registered(&app, 3).await;
    let site = TestApp::handle(&app);
    let token = site.api_token("082040-tablet", DEMO_PASSWORD).await;
    let dose = |ticket: &str, date: String, key: &'static str| {
        let body = serde_json::json!({"ticket": format!("{MUNI}{ticket}"), "administered_on": date,
            "product_code": "PFZ_JN1_12P", "lot_number": "FA1000"});
        site.api_dose(&token, key, body)
    };
    // Recorded before the registry's change arrives: both count.
    let (s, early) = dose("7000000000", days_ago(30), "move-early-000000001").await;
    assert_eq!(
        (s, early["status"].as_str()),
        (201, Some("recorded")),
        "{early}"
    );
    let (s, late) = dose("7000000001", days_ago(2), "move-late-0000000001").await;
    assert_eq!(
        (s, late["status"].as_str()),
        (201, Some("recorded")),
        "{late}"
    );
    let file = format!(
        "{HEADER}C-000,転出,{},,,,,\nC-001,死亡,{},,,,,\n",
        days_ago(10),
        days_ago(5)
    );
    let (status, page) = app.change_file(&csrf, file.into_bytes()).await;
    assert_eq!(status, "succeeded", "{page}");
    // The dose of 30 days ago was before the move: it still counts. The
    // one of 2 days ago was after the death: it waits in the queue.
    let (c0, _) = app.resident_by_addressee("C-000").unwrap();
    let (c1, _) = app.resident_by_addressee("C-001").unwrap();
    assert_eq!(app.dose_states(&c0.id), [("valid".to_string(), None)]);
    assert_eq!(
        app.dose_states(&c1.id),
        [("pending".to_string(), Some("deceased".to_string()))]
    );
    // At the site after the move: the ticket is shown as invalidated for
    // the move-out, and a dose recorded anyway never counts.
    let scan = site
        .client
        .post(site.url("/api/v1/tickets/check"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"ticket": format!("{MUNI}7000000000")}))
        .send()
        .await
        .unwrap();
    let scanned: serde_json::Value = scan.json().await.unwrap();
    assert!(
        scanned["blocks"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("moved_out")),
        "{scanned}"
    );
    let (s, after) = dose("7000000000", days_ago(0), "move-after-000000001").await;
    assert_eq!(s, 201, "{after}");
    assert_eq!(after["status"], "queued", "{after}");
    assert!(
        after["rules"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("moved_out"))
    );
}

#[tokio::test]
async fn reconciliation_lists_exactly_the_new_changed_and_absent_and_changes_nothing_until_staff_act()
 {
    let app = spawn_app().await;
    app.seed_demo();
    let csrf = registered(&app, 7).await;
    // C-006 moved out already: missing from the file, and rightly so.
    let gone = format!("{HEADER}C-006,転出,{},,,,,\n", days_ago(40));
    assert_eq!(
        app.change_file(&csrf, gone.into_bytes()).await.0,
        "succeeded"
    );
    let before = app.count_rows(MUNI);
    // Every current resident but the five the file names is absent (the
    // demo's too).
    let absent_expected = app.current_residents(MUNI).0 - 5;
    let mut file = String::from("宛名番号,氏名,氏名カナ,生年月日,性別,住所\n");
    for i in 0..4 {
        file.push_str(&format!(
            "C-{i:03},笠間　{i}子,カサマ　ハナコ,1960-04-0{},2,茨城県笠間市{i}番地\n",
            i % 9 + 1
        ));
    }
    file.push_str("C-004,笠間　4子,カサマ　ハナコ,1960-04-05,2,茨城県笠間市移転先\n");
    file.push_str("N-900,新井　九郎,アライ　クロウ,1999-09-09,1,\n");
    let res = app
        .client
        .post(app.url("/residents/reconcile"))
        .multipart(
            reqwest::multipart::Form::new()
                .text("csrf", csrf.clone())
                .text("encoding", "auto")
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(file.into_bytes()).file_name("all.csv"),
                ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let job = res.headers()["location"].to_str().unwrap().to_string();
    let (status, page) = app.finished(&job).await;
    assert_eq!(status, "succeeded", "{page}");
    let doc = html(&page);
    let absent_n = absent_expected.to_string();
    for (id, n) in [
        ("#same", "4"),
        ("#new", "1"),
        ("#changed", "1"),
        ("#absent-count", absent_n.as_str()),
    ] {
        assert_eq!(select_text(&doc, id), [n], "{id}");
    }
    let absent = select_text(&doc, "#absent-list tbody tr");
    assert_eq!(absent.len() as i64, absent_expected, "{absent:?}");
    assert_eq!(
        absent
            .iter()
            .filter(|r| r.contains("C-0"))
            .collect::<Vec<_>>(),
        [&absent
            .iter()
            .find(|r| r.contains("C-005") && r.contains("笠間　5子"))
            .unwrap()
            .clone()],
        "only C-005 of ours: C-000..C-004 are in the file, C-006 moved out"
    );
    assert!(select_text(&doc, "#new-list tbody tr")[0].contains("N-900"));
    assert!(select_text(&doc, "#changed-list tbody tr")[0].contains("C-004"));
    // Nothing changed by comparing.
    assert_eq!(app.count_rows(MUNI), before);
    let (c4, _) = app.resident_by_addressee("C-004").unwrap();
    assert_eq!(c4.address.as_deref(), Some("茨城県笠間市4番地"));
    assert!(app.resident_by_addressee("N-900").is_none());
    let (c5, _) = app.resident_by_addressee("C-005").unwrap();
    assert_eq!(c5.moved_out_on, None);
    // Staff act: a bad date and no choice are refused, naming the field.
    let item = doc
        .select(&scraper::Selector::parse("#absent-list input[name=item]").unwrap())
        .find(|i| i.value().attr("aria-label") == Some("C-005"))
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_string();
    let decide = |pairs: Vec<(&'static str, String)>| {
        let app = &app;
        let job = job.clone();
        async move {
            app.client
                .post(app.url(&format!("{job}/absent")))
                .form(&pairs)
                .send()
                .await
                .unwrap()
        }
    };
    let tomorrow = (vrs::clock::today_in_japan() + chrono::Duration::days(1)).to_string();
    let bad = decide(vec![
        ("csrf", csrf.clone()),
        ("item", item.clone()),
        ("decision", "moved_out".into()),
        ("date", tomorrow),
        ("reason", "全件照合".into()),
    ])
    .await;
    assert_eq!(bad.status(), 422);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("日付: 未来の日付は入力できません")
    );
    let none = decide(vec![
        ("csrf", csrf.clone()),
        ("decision", "keep".into()),
        ("reason", "全件照合".into()),
    ])
    .await;
    assert!(
        none.text()
            .await
            .unwrap()
            .contains("処理する人を選んでください")
    );
    let on = days_ago(7);
    let ok = decide(vec![
        ("csrf", csrf.clone()),
        ("item", item.clone()),
        ("decision", "moved_out".into()),
        ("date", on.clone()),
        ("reason", "全件照合で不在".into()),
    ])
    .await;
    assert_eq!(ok.status(), 303);
    let (c5, history) = app.resident_by_addressee("C-005").unwrap();
    assert_eq!(c5.moved_out_on.map(|d| d.to_string()), Some(on));
    assert!(history.iter().any(|e| e.kind == "moved_out"));
    assert_eq!(app.tickets_of(&c5.id)[0].1, "invalidated");
    let page = app.get(&job).await.text().await.unwrap();
    let rows = select_text(&html(&page), "#absent-list tbody tr");
    let c5_row = rows.iter().find(|r| r.contains("C-005")).unwrap();
    assert!(c5_row.contains("転出として登録"), "{c5_row}");
    // Deciding again changes nothing more.
    let again = decide(vec![
        ("csrf", csrf.clone()),
        ("item", item),
        ("decision", "deceased".into()),
        ("date", days_ago(1)),
        ("reason", "二度目".into()),
    ])
    .await;
    assert_eq!(again.status(), 303);
    assert_eq!(
        app.resident_by_addressee("C-005").unwrap().0.deceased_on,
        None
    );
    let log = app.log_text(MUNI);
    assert!(log.contains("\"residents.reconcile\""), "{log}");
    assert!(log.contains(&format!(
        "reconcile={} decision=moved_out",
        job.rsplit('/').next().unwrap()
    )));
}

impl TestApp {
    /// Uploads a dose batch and waits for its job.
    pub async fn dose_batch(&self, csrf: &str, file: &str) -> (String, String, String) {
        let res = self
            .client
            .post(self.url("/doses/batches"))
            .multipart(
                reqwest::multipart::Form::new()
                    .text("csrf", csrf.to_string())
                    .text("encoding", "auto")
                    .part(
                        "file",
                        reqwest::multipart::Part::bytes(file.as_bytes().to_vec())
                            .file_name("yoshinhyo.csv"),
                    ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        let job = res.headers()["location"].to_str().unwrap().to_string();
        let (status, page) = self.finished(&job).await;
        (status, page, job)
    }
}

const BATCH_HEADER: &str = "接種券,接種日,製品コード,ロット番号,医療機関,回数\n";

#[tokio::test]
async fn a_dose_batch_records_each_dose_once_and_queues_the_doubtful_like_a_tablet() {
    let app = spawn_app().await;
    app.seed_demo();
    let csrf = registered(&app, 4).await;
    let site = "デモ集団接種会場";
    let (d30, d10, d5) = (days_ago(30), days_ago(10), days_ago(5));
    let file = format!(
        "{BATCH_HEADER}\
         0820407000000000,{d30},PFZ_JN1_12P,FA1000,{site},1\n\
         7000000000,{d30},PFZ_JN1_12P,FA1000,{site},1\n\
         7000000001,{d10},PFZ_JN1_12P,ZZ9999,{site},1\n\
         7000000002,{d10},PFZ_JN1_12P,FA1001,{site},1\n\
         7000000002,{d5},PFZ_JN1_12P,FA1001,{site},2\n\
         9999999999,{d5},PFZ_JN1_12P,FA1001,{site},1\n"
    );
    let (status, page, job) = app.dose_batch(&csrf, &file).await;
    assert_eq!(status, "succeeded", "{page}");
    let doc = html(&page);
    for (id, n) in [
        ("#recorded", "2"),
        ("#queued", "2"),
        ("#replayed", "1"),
        ("#refused", "1"),
    ] {
        assert_eq!(select_text(&doc, id), [n], "{id}");
    }
    let (c0, _) = app.resident_by_addressee("C-000").unwrap();
    let (c1, _) = app.resident_by_addressee("C-001").unwrap();
    let (c2, _) = app.resident_by_addressee("C-002").unwrap();
    assert_eq!(app.dose_states(&c0.id), [("valid".to_string(), None)]);
    assert_eq!(
        app.dose_states(&c1.id),
        [("pending".to_string(), Some("unknown_lot".to_string()))]
    );
    assert_eq!(
        app.dose_states(&c2.id),
        [
            ("valid".to_string(), None),
            ("pending".to_string(), Some("too_soon".to_string()))
        ]
    );
    // The result file: a line per line, in Japanese, no individual number.
    let csv = app
        .get(&format!("{job}/result.csv"))
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(
        lines[0],
        "行番号,接種券番号,接種日,結果,接種回,要確認の理由,記録できない理由"
    );
    assert_eq!(lines.len(), 7, "{csv}");
    assert!(
        lines[2].starts_with("3,7000000000,") && lines[2].contains("記録済みです"),
        "{csv}"
    );
    assert!(
        lines[3].contains("要確認") && lines[3].contains("ロット"),
        "{csv}"
    );
    assert!(
        lines[6].contains("当団体が発行した接種券ではありません"),
        "{csv}"
    );
    // The same file again records nothing twice.
    let (status, page, _) = app.dose_batch(&csrf, &file).await;
    assert_eq!(status, "succeeded", "{page}");
    let doc = html(&page);
    for (id, n) in [
        ("#recorded", "0"),
        ("#queued", "0"),
        ("#replayed", "5"),
        ("#refused", "1"),
    ] {
        assert_eq!(select_text(&doc, id), [n], "{id}");
    }
    assert_eq!(app.dose_states(&c2.id).len(), 2);
    let log = app.log_text(MUNI);
    assert!(log.contains("\"doses.batch\""), "{log}");
    assert!(log.contains("\"doses.batch_result\""), "{log}");
}

#[tokio::test]
async fn a_dose_batch_with_a_bad_line_records_nothing_and_names_each_line_and_column() {
    let app = spawn_app().await;
    app.seed_demo();
    let csrf = registered(&app, 2).await;
    let site = "デモ集団接種会場";
    let d = days_ago(3);
    let tomorrow = (vrs::clock::today_in_japan() + chrono::Duration::days(1)).to_string();
    let file = format!(
        "{BATCH_HEADER}\
         7000000000,{d},PFZ_JN1_12P,FA1000,{site},1\n\
         1310161234567890,{d},PFZ_JN1_12P,FA1000,{site},1\n\
         7000000001,{tomorrow},PFZ_JN1_12P,FA1000,{site},1\n\
         7000000001,{d},NO_SUCH_VACCINE,FA1000,{site},1\n\
         7000000001,{d},PFZ_JN1_12P,FA1000,どこかの診療所,1\n\
         7000000001,{d},PFZ_JN1_12P,FA1000,{site},0\n"
    );
    let (status, page, _) = app.dose_batch(&csrf, &file).await;
    assert_eq!(status, "rejected", "{page}");
    let errors = select_text(&html(&page), "#errors tbody tr");
    let expect = [
        ("3", "接種券", "他の市区町村"),
        ("4", "接種日", "未来"),
        ("5", "製品コード", "マスタにない"),
        ("6", "医療機関", "接種場所"),
        ("7", "回数", "1から"),
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
    for ((line, column, words), row) in expect.iter().zip(&errors) {
        assert!(
            row.starts_with(&format!("{line}{column}")) && row.contains(words),
            "{row} / {line} {column} {words}"
        );
    }
    let (c0, _) = app.resident_by_addressee("C-000").unwrap();
    assert!(app.dose_states(&c0.id).is_empty());
}

#[tokio::test]
async fn a_bulk_correction_of_a_thousand_queued_doses_writes_a_thousand_events_and_log_lines() {
    let app = spawn_app().await;
    app.seed_demo();
    let n = 1000;
    let csrf = registered(&app, n).await;
    let site = "デモ集団接種会場";
    let d = days_ago(2);
    // A session's lot typed wrong on every 予診票: all queued.
    let mut file = String::from(BATCH_HEADER);
    for i in 0..n {
        file.push_str(&format!(
            "{},{d},PFZ_JN1_12P,FA10O0,{site},1\n",
            7_000_000_000u64 + i as u64
        ));
    }
    let (status, page, _) = app.dose_batch(&csrf, &file).await;
    assert_eq!(status, "succeeded", "{page}");
    assert_eq!(select_text(&html(&page), "#queued"), [n.to_string()]);
    // The filter finds them by lot and rule; without a reason nothing is done.
    let list = app
        .get("/doses/queue?rule=unknown_lot&lot=FA10O0")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        select_text(&html(&list), "#matching-count"),
        [n.to_string()]
    );
    let bulk = |reason: &'static str| {
        app.client
            .post(app.url("/doses/queue/bulk"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("rule", "unknown_lot"),
                ("lot", "FA10O0"),
                ("scope", "all"),
                ("action", "correct_lot"),
                ("new_lot", "FA1000"),
                ("reason", reason),
            ])
            .send()
    };
    let refused = bulk("").await.unwrap();
    assert_eq!(refused.status(), 422);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("理由: 入力されていません")
    );
    let done = bulk("ロット番号の転記誤り（同一会場・同日）")
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    assert!(
        done.headers()["location"]
            .to_str()
            .unwrap()
            .contains(&format!("done={n}"))
    );
    // Each dose its own event and its own log line; all now count with
    // the right lot, and the queue is empty.
    let mut conn = app.conn();
    let (events, valid) = conn
        .transaction(|c| {
            vrs::db::set_transaction_municipality(c, MUNI).unwrap();
            let events: i64 = vrs::db::schema::dose_events::table
                .filter(vrs::db::schema::dose_events::municipality_code.eq(MUNI))
                .filter(vrs::db::schema::dose_events::kind.eq("corrected"))
                .count()
                .get_result(c)?;
            let valid: i64 = doses::table
                .filter(doses::municipality_code.eq(MUNI))
                .filter(doses::status.eq("valid"))
                .filter(doses::lot_number.eq("FA1000"))
                .filter(
                    doses::administered_on
                        .eq(chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").unwrap()),
                )
                .count()
                .get_result(c)?;
            Ok::<_, diesel::result::Error>((events, valid))
        })
        .unwrap();
    drop(conn);
    assert_eq!((events, valid), (n as i64, n as i64));
    let log = app.log_text(MUNI);
    assert_eq!(
        log.matches("action=correct_lot bulk=1").count(),
        n,
        "log lines"
    );
    let list = app
        .get("/doses/queue?lot=FA10O0")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(select_text(&html(&list), "#queue-total"), ["0"]);
    assert_eq!(select_text(&html(&list), "#queue-empty").len(), 1);
}

/// A dose as the recount reads it: resident, number, day, product.
type StoredDose = (String, i32, chrono::NaiveDate, String);

/// The due list worked out again from the stored doses and the master's
/// intervals, in this test's own terms: (宛名番号 is not needed) resident
/// id → the day the dose may be given.
fn recount_due(
    app: &TestApp,
    dose: i32,
    to: chrono::NaiveDate,
) -> std::collections::BTreeMap<String, chrono::NaiveDate> {
    use vrs::db::schema::{residents, vaccine_products};
    let mut conn = app.conn();
    let products: std::collections::HashMap<String, (Option<i32>, i32)> = vaccine_products::table
        .select((
            vaccine_products::product_code,
            vaccine_products::dose2_min_days,
            vaccine_products::booster_min_months,
        ))
        .load::<(String, Option<i32>, i32)>(&mut *conn)
        .unwrap()
        .into_iter()
        .map(|(c, d2, m)| (c, (d2, m)))
        .collect();
    let (people, all): (Vec<(String, bool)>, Vec<StoredDose>) = conn
        .transaction(|c| {
            vrs::db::set_transaction_municipality(c, MUNI).unwrap();
            let people = residents::table
                .filter(residents::municipality_code.eq(MUNI))
                .filter(residents::moved_out_on.is_null())
                .filter(residents::deceased_on.is_null())
                .select((residents::id, residents::address_protected))
                .load::<(String, bool)>(c)?;
            let all = doses::table
                .filter(doses::municipality_code.eq(MUNI))
                .filter(doses::status.eq_any(["valid", "pending"]))
                .select((
                    doses::resident_id,
                    doses::dose_number,
                    doses::administered_on,
                    doses::product_code,
                ))
                .load(c)?;
            Ok::<_, diesel::result::Error>((people, all))
        })
        .unwrap();
    let mut out = std::collections::BTreeMap::new();
    for (id, protected) in people {
        if protected {
            continue;
        }
        let mine: Vec<_> = all.iter().filter(|d| d.0 == id).collect();
        let Some(last) = mine.iter().max_by_key(|d| (d.1, d.2)) else {
            continue;
        };
        if last.1 + 1 != dose {
            continue;
        }
        let (d2, months) = products[&last.3];
        let on = if dose == 2 {
            last.2 + chrono::Duration::days(d2.unwrap().into())
        } else {
            last.2
                .checked_add_months(chrono::Months::new(months as u32))
                .unwrap()
        };
        if on <= to {
            out.insert(id, on);
        }
    }
    out
}

#[tokio::test]
async fn the_due_list_matches_a_recount_and_its_notices_carry_a_ticket_for_the_dose() {
    let app = spawn_app().await;
    app.seed_demo();
    let csrf = registered(&app, 6).await;
    let site = "デモ集団接種会場";
    let (d100, d70, d40, d10) = (days_ago(100), days_ago(70), days_ago(40), days_ago(10));
    let file = format!(
        "{BATCH_HEADER}\
         7000000000,{d100},PFZ_JN1_12P,FA1000,{site},1\n\
         7000000000,{d70},PFZ_JN1_12P,FA1000,{site},2\n\
         7000000001,{d40},PFZ_JN1_12P,FA1000,{site},1\n\
         7000000002,{d10},PFZ_JN1_12P,FA1000,{site},1\n\
         7000000004,{d40},PFZ_JN1_12P,FA1000,{site},1\n"
    );
    assert_eq!(app.dose_batch(&csrf, &file).await.0, "succeeded");
    // C-004 moves out: left out unless asked for.
    let gone = format!("{HEADER}C-004,転出,{},,,,,\n", days_ago(1));
    assert_eq!(
        app.change_file(&csrf, gone.into_bytes()).await.0,
        "succeeded"
    );
    let today = vrs::clock::today_in_japan();
    let (from, to) = (
        today - chrono::Duration::days(30),
        today + chrono::Duration::days(30),
    );
    for dose in [2, 3] {
        let expected = recount_due(&app, dose, to);
        assert!(
            !expected.is_empty(),
            "dose {dose}: the test needs someone due"
        );
        let query = format!("dose={dose}&from={from}&to={to}");
        let csv = app
            .get(&format!("/residents/due.csv?{query}"))
            .await
            .text()
            .await
            .unwrap();
        let mut listed = std::collections::BTreeMap::new();
        for line in csv.trim_start_matches('\u{feff}').lines().skip(1) {
            let cells: Vec<&str> = line.split(',').collect();
            let (r, _) = app.resident_by_addressee(cells[0]).unwrap();
            listed.insert(
                r.id,
                chrono::NaiveDate::parse_from_str(cells[6], "%Y-%m-%d").unwrap(),
            );
            assert_eq!(cells[5], dose.to_string());
        }
        assert_eq!(listed, expected, "dose {dose}");
        // No individual number in the download.
        assert_eq!(vrs::domain::mask_number_like(&csv), csv);
        let page = app
            .get(&format!("/residents/due?{query}"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(
            select_text(&html(&page), "#due-count"),
            [expected.len().to_string()]
        );
    }
    // Asked for, the moved-out person is listed too.
    let page = app
        .get(&format!(
            "/residents/due?dose=2&from={from}&to={to}&ended=1"
        ))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        select_text(&html(&page), "#due-list tbody tr")
            .iter()
            .any(|r| r.contains("C-004"))
    );
    // Bad input names the fields.
    let bad = app.get("/residents/due?dose=0&from=2026-13-01&to=").await;
    assert_eq!(bad.status(), 422);
    let text = bad.text().await.unwrap();
    for field in ["接種回", "期間の初日", "期間の末日"] {
        assert!(text.contains(&format!("{field}: ")), "{field}");
    }
    // Notices for dose 3: a letter for each, each with a new ticket for
    // dose 3 (the dose-1 ticket does not cover it).
    let expected = recount_due(&app, 3, to);
    let res = app
        .client
        .post(app.url("/residents/due/notices"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("dose", "3"),
            ("from", &from.to_string()),
            ("to", &to.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let job = res.headers()["location"].to_str().unwrap().to_string();
    let (status, page) = app.finished(&job).await;
    assert_eq!(status, "succeeded", "{page}");
    let doc = html(&page);
    assert_eq!(select_text(&doc, "#letters"), [expected.len().to_string()]);
    assert_eq!(
        select_text(&doc, "#tickets-issued"),
        [expected.len().to_string()]
    );
    let print = app
        .get(&format!("{job}/print?page=1"))
        .await
        .text()
        .await
        .unwrap();
    let doc = html(&print);
    assert_eq!(select_text(&doc, "article.letter").len(), expected.len());
    let (c0, _) = app.resident_by_addressee("C-000").unwrap();
    let t = app.tickets_of(&c0.id);
    let active = t.iter().find(|t| t.1 == "active").unwrap();
    assert!(
        print.contains(&active.0),
        "the letter carries the new ticket"
    );
    assert!(print.contains("第3回接種のご案内"));
    // Staff who may not see protected addresses neither include people
    // under a support measure nor print letters that did.
    let (plain, _) = app.staff_with(MUNI, "082040-plain", &["residents"]).await;
    assert_eq!(
        plain.get(&format!("{job}/print?page=1")).await.status(),
        200
    );
    let refused = plain
        .get(&format!(
            "/residents/due?dose=3&from={from}&to={to}&protected=1"
        ))
        .await;
    assert_eq!(refused.status(), 422);
    let res = app
        .client
        .post(app.url("/residents/due/notices"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("dose", "3"),
            ("from", &from.to_string()),
            ("to", &to.to_string()),
            ("protected", "1"),
        ])
        .send()
        .await
        .unwrap();
    let with_protected = res.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(app.finished(&with_protected).await.0, "succeeded");
    assert_eq!(
        plain
            .get(&format!("{with_protected}/print?page=1"))
            .await
            .status(),
        403
    );
    assert_eq!(
        app.get(&format!("{with_protected}/print?page=1"))
            .await
            .status(),
        200
    );
    let log = app.log_text(MUNI);
    for action in ["notices.run", "notices.print", "residents.due_export"] {
        assert!(log.contains(&format!("\"{action}\"")), "{action}");
    }
}

#[tokio::test]
async fn the_dose_number_is_an_open_number_past_nine_on_tickets_doses_and_the_ocr_line() {
    let app = spawn_app().await;
    app.seed_demo();
    app.declare_lgwan(MUNI);
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    // A ticket for the twelfth dose: its OCR line prints 0 for 回数.
    let file = "宛名番号,氏名,氏名カナ,生年月日,性別,住所,接種券番号,券種,回数\n\
                D-012,結城　十二,ユウキ　ジュウニ,1950-01-12,1,茨城県結城市,7100000012,1,12\n";
    let (status, page) = app.import(&csrf, file.as_bytes().to_vec(), "auto").await;
    assert_eq!(status, "succeeded", "{page}");
    let (p, _) = app.resident_by_addressee("D-012").unwrap();
    let link = html(&page)
        .select(&scraper::Selector::parse("#print-sheets").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("href")
        .unwrap()
        .to_string();
    let sheet = app.get(&link).await.text().await.unwrap();
    assert!(
        sheet.contains("100820407100000012"),
        "the OCR line prints 0 for 回数"
    );
    // The tablet reads that OCR line as this municipality's ticket.
    let site = TestApp::handle(&app);
    let token = site.api_token("082040-tablet", DEMO_PASSWORD).await;
    let check = site
        .client
        .post(site.url("/api/v1/tickets/check"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"ticket": "100820407100000012"}))
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), 200, "{}", check.text().await.unwrap());
    let (s, body) = site
        .api_dose(
            &token,
            "open-dose-number-0001",
            serde_json::json!({"ticket": "100820407100000012", "administered_on": days_ago(1),
                "product_code": "PFZ_JN1_12P", "lot_number": "FA1000", "dose_number": 12}),
        )
        .await;
    // The record says dose 1 is due: the site's 12 is refused as stale,
    // and 100 is refused as no dose number at all.
    assert_eq!(s, 409, "{body}");
    let (s, body) = site
        .api_dose(
            &token,
            "open-dose-number-0002",
            serde_json::json!({"ticket": "100820407100000012", "administered_on": days_ago(1),
                "product_code": "PFZ_JN1_12P", "lot_number": "FA1000", "dose_number": 100}),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    assert!(body.to_string().contains("99"), "{body}");
    // Staff correct a dose to the twelfth: stored as 12.
    let (s, body) = site
        .api_dose(
            &token,
            "open-dose-number-0003",
            serde_json::json!({"ticket": "100820407100000012", "administered_on": days_ago(1),
                "product_code": "PFZ_JN1_12P", "lot_number": "FA1000"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let dose = body["dose_id"].as_str().unwrap().to_string();
    let res = app
        .client
        .post(app.url(&format!("/residents/{}/doses/{dose}", p.id)))
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "correct"),
            ("dose_number", "１２"),
            ("administered_on", &days_ago(1)),
            ("product", "PFZ_JN1_12P"),
            ("lot", "FA1000"),
            ("reason", "接種回の訂正"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let mut conn = app.conn();
    let numbers: Vec<(i32, String)> = conn
        .transaction(|c| {
            vrs::db::set_transaction_municipality(c, MUNI).unwrap();
            doses::table
                .filter(doses::municipality_code.eq(MUNI))
                .filter(doses::resident_id.eq(&p.id))
                .order(doses::recorded_at)
                .select((doses::dose_number, doses::status))
                .load(c)
        })
        .unwrap();
    assert_eq!(
        numbers,
        [(1, "corrected".to_string()), (12, "valid".to_string())]
    );
}

#[tokio::test]
async fn an_individual_number_a_change_file_gives_is_kept_across_batches_and_never_given_twice() {
    let app = spawn_app().await;
    app.seed_demo();
    let n = 1_200;
    let csrf = registered(&app, n).await;
    let d = days_ago(1);
    let numbers = crate::residents::my_numbers_of(2, 77);
    // Two people given the same number in one file: the second line says so.
    let twice = format!(
        "宛名番号,異動事由,異動日,個人番号\nC-000,職権修正,{d},{}\nC-001,職権修正,{d},{}\n",
        numbers[0], numbers[0]
    );
    let (status, page) = app.change_file(&csrf, twice.into_bytes()).await;
    assert_eq!(status, "rejected", "{page}");
    let errors = select_text(&html(&page), "#errors tbody tr");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("3個人番号"), "{errors:?}");
    // A number given on the file's first line, the same person named again
    // more than a write batch later: the number stays the one given.
    let mut file = format!(
        "宛名番号,異動事由,異動日,個人番号,住所\nC-000,職権修正,{d},{},\n",
        numbers[1]
    );
    for i in 1..n {
        file.push_str(&format!("C-{i:03},転居,{d},,茨城県笠間市{i}丁目\n"));
    }
    file.push_str(&format!("C-000,転居,{d},,茨城県笠間市最後\n"));
    let (status, page) = app.change_file(&csrf, file.into_bytes()).await;
    assert_eq!(status, "succeeded", "{page}");
    assert!(
        app.found_by_number(&csrf, &numbers[1]).await,
        "the number given is the person's"
    );
    let (c0, history) = app.resident_by_addressee("C-000").unwrap();
    assert_eq!(c0.address.as_deref(), Some("茨城県笠間市最後"));
    // The history says the number changed, and nothing of it.
    let text = format!("{history:?}");
    assert!(
        text.contains("個人番号") && !text.contains(&numbers[1]),
        "{text}"
    );
}
