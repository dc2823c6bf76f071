//! Flow 1, 3 and 6 over HTTP: importing the resident file, records and
//! flags, tickets, and the ledger export.

use crate::helpers::*;
use diesel::prelude::*;
use vrs::db::schema::{audit_log, residents, tickets};
use vrs::demo::DEMO_PASSWORD;
use vrs::domain::{MyNumber, Role};

/// A resident file of `n` lines for municipality-local people "A-…".
pub fn resident_csv(n: usize, salt: u64) -> String {
    let mut s =
        String::from("宛名番号,個人番号,氏名,氏名カナ,生年月日,性別,住所,接種券番号,券種,回数\n");
    for i in 0..n {
        let number = MyNumber::from_body(salt * 10_000_000 + i as u64);
        let digits = String::from_utf8(number.expose_digits().to_vec()).unwrap();
        s.push_str(&format!(
            "A-{salt}-{i:06},{digits},山田　{}郎,ヤマダ　タロウ,{}-{:02}-{:02},{},東京都千代田区一番町{}-{},,1,1\n",
            ["一", "二", "三", "四"][i % 4],
            1930 + i % 80,
            1 + i % 12,
            1 + i % 28,
            1 + i % 2,
            i % 9 + 1,
            i % 30 + 1,
        ));
    }
    s
}

pub fn my_numbers_of(n: usize, salt: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let d = MyNumber::from_body(salt * 10_000_000 + i as u64).expose_digits();
            String::from_utf8(d.to_vec()).unwrap()
        })
        .collect()
}

pub fn shift_jis(s: &str) -> Vec<u8> {
    let (b, _, bad) = encoding_rs::SHIFT_JIS.encode(s);
    assert!(!bad);
    b.into_owned()
}

#[derive(serde::Deserialize, Debug)]
pub struct Status {
    pub status: String,
    pub percent: u8,
    pub done: bool,
}

impl TestApp {
    /// Uploads a resident file; returns the job's page path.
    pub async fn upload(&self, csrf: &str, bytes: Vec<u8>, encoding: &str) -> reqwest::Response {
        self.try_upload(csrf, bytes, encoding).await.unwrap()
    }

    /// The upload, and whether an answer came back at all.
    pub async fn try_upload(
        &self,
        csrf: &str,
        bytes: Vec<u8>,
        encoding: &str,
    ) -> reqwest::Result<reqwest::Response> {
        let form = reqwest::multipart::Form::new()
            .text("csrf", csrf.to_string())
            .text("encoding", encoding.to_string())
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name("residents.csv"),
            );
        self.client
            .post(self.url("/residents/imports"))
            .multipart(form)
            .send()
            .await
    }

    /// Uploads and waits for the job to finish; returns its page.
    pub async fn import(&self, csrf: &str, bytes: Vec<u8>, encoding: &str) -> (String, String) {
        let res = self.upload(csrf, bytes, encoding).await;
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        let job = res.headers()["location"].to_str().unwrap().to_string();
        self.finished(&job).await
    }

    /// Waits for the job at `job` (its page's path) to finish; returns its
    /// status and page.
    pub async fn finished(&self, job: &str) -> (String, String) {
        for _ in 0..600 {
            let s: Status = self
                .get(&format!("{job}/status"))
                .await
                .json()
                .await
                .unwrap();
            if s.done {
                assert_eq!(s.percent, 100);
                let page = self.get(job).await.text().await.unwrap();
                return (s.status, page);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("import did not finish");
    }

    pub fn count_rows(&self, muni: &str) -> (i64, i64) {
        let mut conn = self.conn();
        conn.transaction(|c| {
            vrs::db::set_transaction_municipality(c, muni).unwrap();
            let r: i64 = residents::table
                .filter(residents::municipality_code.eq(muni))
                .count()
                .get_result(c)?;
            let t: i64 = tickets::table
                .filter(tickets::municipality_code.eq(muni))
                .count()
                .get_result(c)?;
            Ok::<_, diesel::result::Error>((r, t))
        })
        .unwrap()
    }

    /// The current residents of `muni` as the kept count gives them, and
    /// as counting the rows a reader sees gives them.
    pub fn current_residents(&self, muni: &str) -> (i64, i64) {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.conn();
        let p = vrs::tenancy::Partition::open(&mut conn, self.master(), code(muni)).unwrap();
        let kept = p
            .run(&mut conn, |s, c| {
                vrs::db::models::residents::ResidentRow::count_current(s, c)
            })
            .unwrap();
        let counted = p
            .run(&mut conn, |_, c| {
                // Flags a change file staged count once its job succeeded.
                diesel::sql_query(format!(
                    "SELECT CAST(count(*) AS BIGINT) AS n FROM residents r \
                     LEFT JOIN resident_next n ON n.municipality_code = r.municipality_code \
                       AND n.resident_id = r.id AND n.flags_set AND n.seq <= \
                       (SELECT coalesce(max(j.seq), 0) FROM import_jobs j \
                        WHERE j.municipality_code = '{muni}' AND j.status = 'succeeded') \
                     WHERE r.municipality_code = '{muni}' \
                     AND (CASE WHEN n.resident_id IS NULL \
                       THEN r.moved_out_on IS NULL AND r.deceased_on IS NULL \
                       ELSE n.moved_out_on IS NULL AND n.deceased_on IS NULL END) \
                     AND (r.staged_seq IS NULL OR r.staged_seq <= \
                       (SELECT coalesce(max(j.seq), 0) FROM import_jobs j \
                        WHERE j.municipality_code = '{muni}' AND j.status = 'succeeded'))"
                ))
                .get_result::<N>(&mut **c)
                .map_err(vrs::db::DbError::from)
            })
            .unwrap()
            .n;
        (kept, counted)
    }

    pub fn sealed_rows(&self, muni: &str) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        let mut conn = self.conn();
        conn.transaction(|c| {
            vrs::db::set_transaction_municipality(c, muni).unwrap();
            residents::table
                .filter(residents::municipality_code.eq(muni))
                .order(residents::id)
                .select((
                    residents::id,
                    residents::name_kanji_sealed,
                    residents::my_number_sealed.assume_not_null(),
                ))
                .load(c)
        })
        .unwrap()
    }

    /// The search results page for one 宛名番号.
    pub async fn find_addressee(&self, csrf: &str, addressee: &str) -> String {
        self.client
            .post(self.url("/residents/search"))
            .form(&[("csrf", csrf), ("addressee", addressee)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Whether the lookup by individual number finds a resident (for staff
    /// who may use it).
    pub async fn found_by_number(&self, csrf: &str, number: &str) -> bool {
        let page = self
            .client
            .post(self.url("/residents/by-number"))
            .form(&[
                ("csrf", csrf),
                ("purpose", "certificate_lookup"),
                ("my_number", number),
            ])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        !select_text(&html(&page), "#resident dd").is_empty()
    }

    /// A staff account with the residents, individual-number, export and
    /// protected-address permissions, on a terminal of the municipality's
    /// LG-WAN (this machine's loopback declared): it may import files with
    /// numbers.
    pub async fn staff_of(&self, muni: &str) -> (TestApp, String) {
        self.staff_of_named(muni, &format!("{muni}-clerk")).await
    }

    /// The same, under another login name.
    pub async fn staff_of_named(&self, muni: &str, login: &str) -> (TestApp, String) {
        self.declare_lgwan(muni);
        self.staff_with(
            muni,
            login,
            &["residents", "my_number", "export", "protected_address"],
        )
        .await
    }

    /// A staff account holding exactly `permissions`, signed in.
    pub async fn staff_with(
        &self,
        muni: &str,
        login: &str,
        permissions: &[&str],
    ) -> (TestApp, String) {
        let login = login.to_string();
        let pw = self.create_account(&login, Role::MunicipalStaff, Some(muni), permissions);
        let s = TestApp::handle(self);
        let csrf = s.login_as(&login, &pw).await;
        (s, csrf)
    }
}

fn texts(page: &str, css: &str) -> Vec<String> {
    select_text(&html(page), css)
}

#[tokio::test]
async fn utf8_bom_and_shift_jis_files_import_the_same_and_a_second_import_changes_nothing() {
    let app = spawn_app().await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("082040").await;
    let file = resident_csv(300, 1);

    let (status, page) = staff.import(&csrf, file.clone().into_bytes(), "auto").await;
    assert_eq!(status, "succeeded", "{page}");
    assert_eq!(texts(&page, "#inserted"), ["300"]);
    let (residents_before, tickets_before) = app.count_rows("082040");
    assert_eq!(residents_before, 340); // 40 demo residents + 300
    assert_eq!(tickets_before, 340);
    let sealed = app.sealed_rows("082040");

    // The same people in Shift_JIS (detected and chosen) and in UTF-8 with a
    // BOM decode to exactly the same values: nothing to update.
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend(file.as_bytes());
    for (bytes, enc) in [
        (shift_jis(&file), "auto"),
        (shift_jis(&file), "sjis"),
        (bom, "utf8"),
        (file.clone().into_bytes(), "utf8"),
    ] {
        let (status, page) = staff.import(&csrf, bytes, enc).await;
        assert_eq!(status, "succeeded", "{enc}: {page}");
        assert_eq!(texts(&page, "#inserted"), ["0"], "{enc}");
        assert_eq!(texts(&page, "#updated"), ["0"], "{enc}");
        assert_eq!(texts(&page, "#unchanged"), ["300"], "{enc}");
    }
    assert_eq!(app.count_rows("082040"), (residents_before, tickets_before));
    // Not one stored byte changed.
    assert_eq!(app.sealed_rows("082040"), sealed);

    // Shift_JIS read as UTF-8 is caught, not stored as mojibake.
    let (status, page) = staff.import(&csrf, shift_jis(&file), "utf8").await;
    assert_eq!(status, "rejected");
    assert!(page.contains("文字コード"), "{page}");

    // The journal keeps who, from where, the file's hash and the counts.
    let journal = staff.get("/residents/imports").await.text().await.unwrap();
    let rows = texts(&journal, "#journal tbody tr");
    assert_eq!(rows.len(), 6);
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(file.as_bytes()));
    assert!(journal.contains(&hash[..12]), "{journal}");
    assert!(journal.contains("082040-clerk") && journal.contains("127.0.0.1"));
    let mut conn = app.conn();
    let logged: i64 = audit_log::table
        .filter(audit_log::action.eq("residents.import"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(logged, 6);
}

#[tokio::test]
async fn one_bad_line_among_thousands_rejects_the_file_names_the_line_and_stores_nothing() {
    let app = spawn_app().await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("131016").await;
    let good = resident_csv(3000, 2);
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    // Line 2002 of the file (data line 2001): a wrong check digit.
    let numbers = my_numbers_of(3000, 2);
    let bad_number = {
        let n = &numbers[2000];
        let last = n.as_bytes()[11] - b'0';
        format!("{}{}", &n[..11], (last + 1) % 10)
    };
    lines[2001] = lines[2001].replace(&numbers[2000], &bad_number);
    let file = lines.join("\n") + "\n";
    let before = app.count_rows("131016");

    let (status, page) = staff.import(&csrf, file.into_bytes(), "auto").await;
    assert_eq!(status, "rejected");
    let cells = texts(&page, "#errors tbody td");
    assert_eq!(
        cells[..2],
        ["2002".to_string(), "個人番号".to_string()],
        "{cells:?}"
    );
    assert_eq!(texts(&page, "#errors tbody tr").len(), 1);
    // The page names the line, never the value.
    assert!(!page.contains(&bad_number));
    assert_eq!(app.count_rows("131016"), before);

    // Several bad cells on several lines are all listed, by line and column.
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    lines[10] = lines[10].replace("ヤマダ　タロウ", "やまだ");
    lines[20] = lines[20].replacen(",1,1", ",0,1", 1);
    lines.push(lines[5].clone()); // the same person twice
    let (status, page) = staff
        .import(&csrf, (lines.join("\n") + "\n").into_bytes(), "auto")
        .await;
    assert_eq!(status, "rejected");
    let rows = texts(&page, "#errors tbody tr");
    assert!(
        rows[0].starts_with("11") && rows[0].contains("氏名カナ"),
        "{rows:?}"
    );
    assert!(
        rows[1].starts_with("21") && rows[1].contains("券種"),
        "{rows:?}"
    );
    assert!(
        rows[2].starts_with("3002") && rows[2].contains("宛名番号"),
        "{rows:?}"
    );
    assert_eq!(app.count_rows("131016"), before);

    // A file without the required columns says which are missing.
    let (status, page) = staff
        .import(
            &csrf,
            "宛名番号,氏名\nA-1,山田\n".as_bytes().to_vec(),
            "auto",
        )
        .await;
    assert_eq!(status, "rejected");
    assert!(page.contains("氏名カナ") && page.contains("生年月日"));
}

#[tokio::test]
async fn an_import_asked_for_during_a_key_rotation_is_refused_with_a_clear_message() {
    let app = spawn_app().await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("082040").await;
    let before = app.count_rows("082040");
    let v =
        vrs::flows::keys::begin_rotation(&mut app.conn(), app.master(), code("082040")).unwrap();
    let res = staff
        .upload(&csrf, resident_csv(50, 1).into_bytes(), "auto")
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert!(page.contains("鍵を更新しています"), "{page}");
    assert_eq!(app.count_rows("082040"), before);
    vrs::flows::keys::reseal_pass(&mut app.conn(), app.master(), code("082040")).unwrap();
    vrs::flows::keys::finish_rotation(&mut app.conn(), code("082040"), v).unwrap();
    let (status, page) = staff
        .import(&csrf, resident_csv(50, 1).into_bytes(), "auto")
        .await;
    assert_eq!(status, "succeeded", "{page}");
    assert_eq!(app.count_rows("082040").0, before.0 + 50);
}

#[tokio::test]
async fn reimports_update_the_same_person_found_by_addressee_number() {
    let app = spawn_app().await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("082040").await;
    let file = resident_csv(20, 3);
    staff.import(&csrf, file.clone().into_bytes(), "auto").await;
    let before = app.count_rows("082040");

    let mut lines: Vec<String> = file.lines().map(str::to_string).collect();
    // A corrected name, and a new individual number for another person.
    lines[1] = lines[1].replace("山田　一郎", "山田　一朗");
    lines[2] = lines[2].replace(&my_numbers_of(20, 3)[1], &my_numbers_of(1, 93)[0]);
    let (status, page) = staff
        .import(&csrf, (lines.join("\n") + "\n").into_bytes(), "auto")
        .await;
    assert_eq!(status, "succeeded", "{page}");
    assert_eq!(texts(&page, "#inserted"), ["0"]);
    assert_eq!(texts(&page, "#updated"), ["2"]);
    assert_eq!(texts(&page, "#unchanged"), ["18"]);
    assert_eq!(app.count_rows("082040"), before);

    // Still one person under each 宛名番号.
    for addressee in ["A-3-000000", "A-3-000001"] {
        let page = staff.find_addressee(&csrf, addressee).await;
        assert_eq!(texts(&page, "#results tbody tr").len(), 1);
    }

    // An individual number already held by someone else is refused.
    let mut lines: Vec<String> = file.lines().map(str::to_string).collect();
    let numbers = my_numbers_of(20, 3);
    lines[4] = lines[4].replace(&numbers[3], &numbers[5]);
    let (status, page) = staff
        .import(&csrf, (lines.join("\n") + "\n").into_bytes(), "auto")
        .await;
    assert_eq!(status, "rejected");
    assert!(texts(&page, "#errors tbody tr")[0].contains("個人番号"));
}

pub fn resident_link(page: &str) -> String {
    let doc = html(page);
    let sel = scraper::Selector::parse("#results a").unwrap();
    doc.select(&sel)
        .next()
        .and_then(|a| a.value().attr("href"))
        .expect("a result")
        .to_string()
}

#[tokio::test]
async fn staff_find_correct_flag_and_reissue_and_every_step_is_logged() {
    let app = spawn_app().await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("082040").await;
    staff
        .import(&csrf, resident_csv(5, 4).into_bytes(), "auto")
        .await;
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let s = &staff;
        async move {
            s.client
                .post(s.url(&path))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    // By name and birth date, kana or kanji, spaces ignored.
    let page = post(
        "/residents/search".into(),
        vec![
            ("csrf", csrf.clone()),
            ("by", "name".into()),
            ("name", "ヤマダタロウ".into()),
            ("birth", "1931-02-02".into()),
        ],
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(texts(&page, "#results tbody tr").len(), 1, "{page}");
    let link = resident_link(&page);
    let page = staff.get(&link).await.text().await.unwrap();
    let ticket = texts(&page, "#tickets tbody tr code")[0].clone();
    assert_eq!(ticket.len(), 10);

    // By ticket number.
    let page = post(
        "/residents/search".into(),
        vec![
            ("csrf", csrf.clone()),
            ("by", "ticket".into()),
            ("ticket", ticket.clone()),
        ],
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(resident_link(&page), link);

    // A correction needs a reason; with one it lands in the history.
    let fix = |reason: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("name_kanji", "山田　五郎".to_string()),
            ("name_kana", "ヤマダ　ジロウ".to_string()),
            ("birth_date", "1931-02-02".to_string()),
            ("sex", "1".to_string()),
            ("address", "東京都千代田区一番町2-2".to_string()),
            ("reason", reason.to_string()),
        ]
    };
    let res = post(format!("{link}/correct"), fix("")).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("理由"));
    // A name that displays as something else (a right-to-left override, a
    // zero-width space) is refused, naming the field; nothing changes.
    for name in ["山田\u{202E}郎五", "山田\u{200B}五郎"] {
        let mut form = fix("本人からの届出");
        form[1].1 = name.to_string();
        let res = post(format!("{link}/correct"), form).await;
        assert_eq!(res.status(), 422, "{name:?}");
        let body = res.text().await.unwrap();
        assert!(body.contains("見えない書式文字"), "{name:?}");
    }
    let res = post(format!("{link}/correct"), fix("本人からの届出")).await;
    assert_eq!(res.status(), 303);
    let page = staff.get(&link).await.text().await.unwrap();
    assert!(texts(&page, "h1")[0].contains("山田　五郎"));
    let history = texts(&page, "#history tbody tr").join("\n");
    assert!(
        history.contains("本人からの届出") && history.contains("山田　二郎 → 山田　五郎"),
        "{history}"
    );

    // Reissue: the old ticket is invalidated, a new one is active.
    let res = post(
        format!("{link}/reissue"),
        vec![
            ("csrf", csrf.clone()),
            ("why", "lost".into()),
            ("reason", "紛失届".into()),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let page = staff.get(&link).await.text().await.unwrap();
    let rows = texts(&page, "#tickets tbody tr");
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .any(|r| r.contains(&ticket) && r.contains("無効")),
        "{rows:?}"
    );

    // The printable sheet carries the 18-digit OCR line and its QR code.
    let sheet = staff
        .get(&format!("{link}/ticket"))
        .await
        .text()
        .await
        .unwrap();
    let ocr = texts(&sheet, ".sticker__ocr")[0].clone();
    assert_eq!(ocr.len(), 18);
    assert!(ocr.starts_with("11082040"));
    assert!(sheet.contains("<svg"));

    // Deceased: the active ticket goes, and no new one can be issued.
    let res = post(
        format!("{link}/flag"),
        vec![
            ("csrf", csrf.clone()),
            ("flag", "deceased".into()),
            ("date", "2026-10-01".into()),
            ("reason", "死亡届".into()),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let page = staff.get(&link).await.text().await.unwrap();
    assert_eq!(texts(&page, "#deceased"), ["2026-10-01"]);
    assert!(
        texts(&page, "#tickets tbody tr")
            .iter()
            .all(|r| r.contains("無効"))
    );
    let res = post(
        format!("{link}/reissue"),
        vec![
            ("csrf", csrf.clone()),
            ("why", "lost".into()),
            ("reason", "再交付".into()),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert_eq!(staff.get(&format!("{link}/ticket")).await.status(), 404);

    // A value the page never sends is refused, not read as "off".
    let res = post(
        format!("{link}/protection"),
        vec![
            ("csrf", csrf.clone()),
            ("protected", "yes".into()),
            ("reason", "支援措置申出".into()),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("選択肢にない値です"));

    // Address protection on and off, each with a reason.
    for (on, reason) in [("on", "支援措置申出"), ("off", "支援措置終了")] {
        let res = post(
            format!("{link}/protection"),
            vec![
                ("csrf", csrf.clone()),
                ("protected", on.into()),
                ("from", vrs::clock::today_in_japan().to_string()),
                ("review", vrs::clock::today_in_japan().to_string()),
                ("reason", reason.into()),
            ],
        )
        .await;
        assert_eq!(res.status(), 303);
    }
    let page = staff.get(&link).await.text().await.unwrap();
    let history = texts(&page, "#history tbody tr").join("\n");
    assert!(history.contains("支援措置申出") && history.contains("支援措置終了"));

    let mut conn = app.conn();
    let actions: Vec<String> = audit_log::table
        .filter(audit_log::chain.eq("082040"))
        .select(audit_log::action)
        .load(&mut conn)
        .unwrap();
    for a in [
        "resident.search",
        "resident.view",
        "resident.correct",
        "ticket.reissue",
        "ticket.print",
        "resident.flag",
        "resident.protection",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not logged: {actions:?}"
        );
    }
}

#[tokio::test]
async fn a_flagged_resident_gets_no_ticket_from_a_reimport() {
    let app = spawn_app().await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("082040").await;
    let file = resident_csv(3, 5);
    staff.import(&csrf, file.clone().into_bytes(), "auto").await;
    let page = staff.find_addressee(&csrf, "A-5-000000").await;
    let link = resident_link(&page);
    let res = staff
        .client
        .post(staff.url(&format!("{link}/flag")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("flag", "moved_out"),
            ("date", "2026-09-30"),
            ("reason", "転出届"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    // The same file again: the person stays, gets no new ticket.
    let (status, page) = staff.import(&csrf, file.clone().into_bytes(), "auto").await;
    assert_eq!(status, "succeeded");
    assert!(page.contains("接種券を発行しなかった住民"), "{page}");
    let page = staff.get(&link).await.text().await.unwrap();
    assert!(
        texts(&page, "#tickets tbody tr")
            .iter()
            .all(|r| r.contains("無効"))
    );

    // A file that names a new ticket number for them is refused.
    let mut lines: Vec<String> = file.lines().map(str::to_string).collect();
    lines[1] = lines[1].replacen(",,1,1", ",5550000001,1,1", 1);
    let (status, page) = staff
        .import(&csrf, (lines.join("\n") + "\n").into_bytes(), "auto")
        .await;
    assert_eq!(status, "rejected");
    assert!(texts(&page, "#errors tbody tr")[0].contains("接種券番号"));
}

#[tokio::test]
async fn another_municipality_cannot_see_correct_print_or_export_these_residents() {
    let app = spawn_app().await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("082040").await;
    let (status, _) = staff
        .import(&csrf, resident_csv(10, 6).into_bytes(), "auto")
        .await;
    assert_eq!(status, "succeeded");
    let page = staff.find_addressee(&csrf, "A-6-000000").await;
    let link = resident_link(&page);
    let journal = staff.get("/residents/imports").await.text().await.unwrap();
    let job = {
        let doc = html(&journal);
        let sel = scraper::Selector::parse("#journal a").unwrap();
        doc.select(&sel)
            .next()
            .unwrap()
            .value()
            .attr("href")
            .unwrap()
            .to_string()
    };

    let (other, other_csrf) = app.staff_of("131016").await;
    for path in [
        link.clone(),
        format!("{link}/ticket"),
        job.clone(),
        format!("{job}/status"),
        format!("{job}/tickets"),
    ] {
        assert_eq!(other.get(&path).await.status(), 404, "{path}");
    }
    for action in ["correct", "flag", "protection", "reissue"] {
        let res = other
            .client
            .post(other.url(&format!("{link}/{action}")))
            .form(&[
                ("csrf", other_csrf.as_str()),
                ("name_kanji", "乗っ取り"),
                ("name_kana", "ノットリ"),
                ("birth_date", "1990-01-01"),
                ("sex", "1"),
                ("flag", "deceased"),
                ("date", "2026-01-01"),
                ("protected", "on"),
                ("why", "lost"),
                ("reason", "不正"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{action}");
    }
    let page = other.find_addressee(&other_csrf, "A-6-000000").await;
    assert!(page.contains("id=\"no-results\""));
    let csv = other.get("/exports/doses.csv").await.text().await.unwrap();
    assert!(!csv.contains("A-6-"));
    // The record is untouched.
    let page = staff.get(&link).await.text().await.unwrap();
    assert!(!page.contains("乗っ取り"));
    assert_eq!(texts(&page, "#deceased"), [""]);

    // Accounts without the residents permission reach none of it.
    let plain = app.create_account("082040-plain", Role::MunicipalStaff, Some("082040"), &[]);
    let p = TestApp::handle(&app);
    p.login_as("082040-plain", &plain).await;
    for path in [
        "/residents",
        "/residents/imports",
        link.as_str(),
        "/exports/doses.csv",
    ] {
        assert_eq!(p.get(path).await.status(), 403, "{path}");
    }
    let admin = TestApp::handle(&app);
    admin.login_as("082040-admin", DEMO_PASSWORD).await;
    assert_eq!(admin.get(&link).await.status(), 403);
}

#[tokio::test]
async fn limits_on_size_and_lines_give_a_clear_message() {
    let app = spawn_app_with(|a| {
        a.import_max_mib = 1;
        a.import_max_lines = 50;
    })
    .await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("082040").await;
    let big = resident_csv(51, 7);
    let (status, page) = staff.import(&csrf, big.into_bytes(), "auto").await;
    assert_eq!(status, "rejected");
    assert!(page.contains("50行"), "{page}");
    let huge = "x".repeat(1024 * 1024 + 1).into_bytes();
    let res = staff.upload(&csrf, huge, "auto").await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("大きすぎます"));
    assert_eq!(app.count_rows("082040").0, 40);
    // No spool file is left behind.
    let spool = app.data_dir().join("spool");
    assert_eq!(std::fs::read_dir(spool).map(|d| d.count()).unwrap_or(0), 0);
}

#[tokio::test]
async fn the_first_import_into_an_empty_municipality_still_finds_every_duplicate() {
    let app = spawn_app().await;
    app.seed_demo();
    // 札幌市中央区: enabled, no one registered yet.
    {
        let mut conn = app.conn();
        vrs::flows::municipalities::enable(&mut conn, app.master(), code("011011")).unwrap();
    }
    let (staff, csrf) = app.staff_of("011011").await;
    let file = resident_csv(2500, 9);
    let mut lines: Vec<String> = file.lines().map(str::to_string).collect();
    // Line 1502 names the person of line 4 again (another batch); line 2201
    // reuses the ticket number given on line 2200 (same batch).
    let again = lines[3].clone();
    lines[1501] = again;
    lines[2199] = lines[2199].replacen(",,1,1", ",4440000001,1,1", 1);
    lines[2200] = lines[2200].replacen(",,1,1", ",4440000001,1,1", 1);
    let (status, page) = staff
        .import(&csrf, (lines.join("\n") + "\n").into_bytes(), "auto")
        .await;
    assert_eq!(status, "rejected");
    let rows = texts(&page, "#errors tbody tr");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows[0].starts_with("1502") && rows[0].contains("宛名番号"),
        "{rows:?}"
    );
    assert!(
        rows[1].starts_with("2201") && rows[1].contains("接種券番号"),
        "{rows:?}"
    );
    assert_eq!(app.count_rows("011011"), (0, 0));

    // The clean file goes in whole, and again changes nothing.
    let (status, page) = staff.import(&csrf, file.clone().into_bytes(), "auto").await;
    assert_eq!(status, "succeeded", "{page}");
    assert_eq!(texts(&page, "#inserted"), ["2500"]);
    assert_eq!(app.count_rows("011011"), (2500, 2500));
    let (_, page) = staff.import(&csrf, file.into_bytes(), "auto").await;
    assert_eq!(texts(&page, "#unchanged"), ["2500"]);
    assert_eq!(app.count_rows("011011"), (2500, 2500));
}

#[tokio::test]
async fn the_sample_files_of_the_readme_import_in_both_encodings() {
    let app = spawn_app().await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("131016").await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let utf8 = std::fs::read(root.join("samples/residents-sample.csv")).unwrap();
    let sjis = std::fs::read(root.join("samples/residents-sample-sjis.csv")).unwrap();
    assert!(
        std::str::from_utf8(&sjis).is_err(),
        "the second sample is Shift_JIS"
    );
    let (status, page) = staff.import(&csrf, utf8, "auto").await;
    assert_eq!(status, "succeeded", "{page}");
    assert_eq!(texts(&page, "#inserted"), ["3"]);
    // The same people in Shift_JIS (with 髙, a CP932 extension character).
    let (status, page) = staff.import(&csrf, sjis, "auto").await;
    assert_eq!(status, "succeeded", "{page}");
    assert_eq!(texts(&page, "#unchanged"), ["3"]);
    let page = staff.find_addressee(&csrf, "0000123403").await;
    assert!(page.contains("渡邉　髙志"), "{page}");
}

/// A resident's stored address, opened with the municipality's key.
fn address_of(app: &TestApp, muni: &str, addressee: &str) -> Option<String> {
    use vrs::flows::residents::find_by_addressee;
    let mut conn = app.conn();
    let partition = vrs::tenancy::Partition::open(&mut conn, app.master(), code(muni)).unwrap();
    let addressee = vrs::domain::AddresseeNumber::parse(addressee).unwrap();
    partition
        .read(&mut conn, |scope, conn| {
            find_by_addressee(scope, conn, &addressee)
        })
        .unwrap()
        .expect("the resident is stored")
        .address
}

/// Each error of a job's page as (line, column, problem).
fn errors_of(page: &str) -> Vec<(String, String, String)> {
    texts(page, "#errors tbody td")
        .chunks(3)
        .map(|c| (c[0].clone(), c[1].clone(), c[2].clone()))
        .collect()
}

#[tokio::test]
async fn files_with_windows_or_old_mac_line_ends_name_the_bad_line_itself() {
    let app = spawn_app().await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("131016").await;
    let before = app.count_rows("131016");
    let good: Vec<String> = resident_csv(500, 3).lines().map(str::to_string).collect();
    for end in ["\r\n", "\r"] {
        let mut lines = good.clone();
        // Line 321 of the file: a birth date that is no date.
        let mut cells: Vec<&str> = lines[320].split(',').collect();
        cells[4] = "1950-02-30";
        lines[320] = cells.join(",");
        // Line 402: the last two cells are missing.
        let cells: Vec<&str> = good[401].split(',').collect();
        lines[401] = cells[..8].join(",");
        let file = lines.join(end) + end;
        let (status, page) = staff.import(&csrf, file.into_bytes(), "auto").await;
        assert_eq!(status, "rejected", "{end:?}");
        let errors = errors_of(&page);
        assert_eq!(errors.len(), 2, "{end:?}: {errors:?}");
        assert_eq!(errors[0].0, "321", "{end:?}: {errors:?}");
        assert_eq!(errors[0].1, "生年月日");
        assert_eq!(
            errors[1],
            (
                "402".to_string(),
                String::new(),
                "列の数が見出し行と合いません（見出し10列、この行8列）".to_string()
            ),
            "{end:?}"
        );
        assert_eq!(app.count_rows("131016"), before);
    }
}

#[tokio::test]
async fn a_last_line_cut_off_or_short_of_a_cell_changes_nobody() {
    let app = spawn_app().await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("082040").await;
    let file = resident_csv(50, 4);
    let (status, page) = staff.import(&csrf, file.clone().into_bytes(), "auto").await;
    assert_eq!(status, "succeeded", "{page}");
    let last = "A-4-000049";
    let stored = address_of(&app, "082040", last);
    assert!(
        stored
            .as_deref()
            .is_some_and(|a| a.len() > "東京都千代田区一番町".len())
    );
    let rows = app.count_rows("082040");

    // Cut off inside the last line's 住所: the rest of the line never came.
    let cut = file[..file.rfind("一番町").unwrap() + "一番町".len()].to_string();
    // The last line without its last cell (回数), line end and all.
    let short = file[..file.trim_end().rfind(',').unwrap()].to_string() + "\n";
    // A CRLF file without a line end after its last line.
    let unended = file.replace('\n', "\r\n").trim_end().to_string();
    for (what, body, problem) in [
        ("cut", cut, "ファイルの最後の行が途中で切れています"),
        (
            "short",
            short,
            "列の数が見出し行と合いません（見出し10列、この行9列）",
        ),
        ("unended", unended, "ファイルの最後の行が途中で切れています"),
    ] {
        let (status, page) = staff.import(&csrf, body.into_bytes(), "auto").await;
        assert_eq!(status, "rejected", "{what}: {page}");
        assert_eq!(
            errors_of(&page),
            [("51".to_string(), String::new(), problem.to_string())],
            "{what}"
        );
        assert_eq!(address_of(&app, "082040", last), stored, "{what}");
        assert_eq!(app.count_rows("082040"), rows, "{what}");
    }
}

/// The operation-log lines of one chain with this action: (outcome,
/// target, detail).
fn logged(
    app: &TestApp,
    chain: &str,
    action: &str,
) -> Vec<(String, Option<String>, Option<String>)> {
    vrs::audit::flush(&mut app.conn(), &app.state.audit).unwrap();
    audit_log::table
        .filter(audit_log::chain.eq(chain))
        .filter(audit_log::action.eq(action))
        .order(audit_log::seq)
        .select((audit_log::outcome, audit_log::target, audit_log::detail))
        .load(&mut app.conn())
        .unwrap()
}

#[tokio::test]
async fn a_file_with_individual_numbers_is_held_to_the_rules_of_the_lookup_by_number() {
    let app = spawn_app().await;
    app.seed_demo();
    // 082040 declares this machine's network; 131016 declares another.
    app.declare_lgwan("082040");
    app.declare_network("131016", "10.0.0.0/8");
    let (numbers_staff, numbers_csrf) = app.staff_of("082040").await;
    let file = resident_csv(6, 41);
    let (status, _) = numbers_staff
        .import(&numbers_csrf, file.clone().into_bytes(), "auto")
        .await;
    assert_eq!(status, "succeeded");
    let (_, target, detail) = logged(&app, "082040", "my_number.access").pop().unwrap();
    assert!(target.unwrap().starts_with("import:"));
    assert_eq!(detail.as_deref(), Some("channel=import lines=6"));

    // The residents permission alone, on an LG-WAN terminal: the same file
    // (numbers known and unknown alike) is refused naming the column, and
    // nothing changes.
    let (plain, plain_csrf) = app
        .staff_with("082040", "082040-plain", &["residents"])
        .await;
    let before = app.count_rows("082040");
    let mut probe = file.clone();
    probe.push_str(resident_csv(1, 42).lines().nth(1).unwrap());
    probe.push('\n');
    let (status, page) = plain.import(&plain_csrf, probe.into_bytes(), "auto").await;
    assert_eq!(status, "rejected");
    let errors = texts(&page, "#errors tbody tr");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("個人番号") && errors[0].contains("LG-WAN"),
        "{errors:?}"
    );
    assert!(texts(&page, "#inserted").is_empty() && texts(&page, "#updated").is_empty());
    assert_eq!(app.count_rows("082040"), before);
    let (outcome, _, detail) = logged(&app, "082040", "my_number.access").pop().unwrap();
    assert_eq!(
        (outcome.as_str(), detail.as_deref()),
        ("refused", Some("channel=import reason=role"))
    );
    // Without the column, the same person imports the file.
    let no_numbers: String = file
        .lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split(',').collect();
            cells.remove(1);
            cells.join(",") + "\n"
        })
        .collect();
    let (status, page) = plain
        .import(&plain_csrf, no_numbers.clone().into_bytes(), "auto")
        .await;
    assert_eq!(status, "succeeded", "{page}");
    assert_eq!(texts(&page, "#unchanged"), ["6"]);
    // A changed line without the column keeps the person's number.
    let moved = no_numbers.replacen("一番町1-1", "一番町1-1（転居）", 1);
    assert_ne!(moved, no_numbers);
    let (status, page) = plain.import(&plain_csrf, moved.into_bytes(), "auto").await;
    assert_eq!(status, "succeeded", "{page}");
    assert_eq!(texts(&page, "#updated"), ["1"]);
    let first = &my_numbers_of(6, 41)[0];
    assert!(numbers_staff.found_by_number(&numbers_csrf, first).await);

    // The individual-number permission, from outside the LG-WAN, also when
    // the request claims to come through it: refused.
    let (outside, outside_csrf) = app
        .staff_with("131016", "131016-numbers", &["residents", "my_number"])
        .await;
    let before = app.count_rows("131016");
    let form = reqwest::multipart::Form::new()
        .text("csrf", outside_csrf.clone())
        .text("encoding", "auto")
        .part(
            "file",
            reqwest::multipart::Part::bytes(resident_csv(3, 43).into_bytes())
                .file_name("r\u{202E}vsc.exe.csv"),
        );
    let res = outside
        .client
        .post(outside.url("/residents/imports"))
        .header("X-Forwarded-For", "10.1.2.3")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let job = res.headers()["location"].to_str().unwrap().to_string();
    let (status, page) = outside.finished(&job).await;
    assert_eq!(status, "rejected");
    // The file's name is shown without what would make it read otherwise.
    assert!(page.contains("rvsc.exe.csv") && !page.contains('\u{202E}'));
    assert_eq!(app.count_rows("131016"), before);
    let (outcome, _, detail) = logged(&app, "131016", "my_number.access").pop().unwrap();
    assert_eq!(
        (outcome.as_str(), detail.as_deref()),
        ("refused", Some("channel=import reason=network"))
    );

    // Entitled staff: a number held by a resident under another 宛名番号
    // is an error to resolve, never a re-filing of that person.
    let numbers = my_numbers_of(6, 41);
    let mut lines: Vec<String> = file.lines().map(str::to_string).collect();
    lines[1] = lines[1].replace("A-41-000000", "B-41-000000");
    let (status, page) = numbers_staff
        .import(
            &numbers_csrf,
            (lines.join("\n") + "\n").into_bytes(),
            "auto",
        )
        .await;
    assert_eq!(status, "rejected");
    let errors = texts(&page, "#errors tbody tr");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("個人番号") && errors[0].contains("別の住民"),
        "{errors:?}"
    );
    assert!(!errors[0].contains(&numbers[0]));
    let page = numbers_staff
        .find_addressee(&numbers_csrf, "A-41-000000")
        .await;
    assert_eq!(texts(&page, "#results tbody tr").len(), 1);
    let page = numbers_staff
        .find_addressee(&numbers_csrf, "B-41-000000")
        .await;
    assert!(page.contains("id=\"no-results\""));
}
