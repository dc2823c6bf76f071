//! Long jobs next to live traffic: a large resident import never makes
//! another municipality's tablet, login or search wait or fail, stays
//! invisible until all of it is stored, and after a crash at any moment
//! the municipality holds all of the file or none of it, and the job page
//! and the operation log say which.

use crate::helpers::*;
use crate::residents::{Status, my_numbers_of, resident_csv};
use diesel::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use vrs::db::schema::{audit_log, tickets};
use vrs::demo::DEMO_PASSWORD;
use vrs::tenancy::Partition;

/// Tickets of `muni` as a site types them (code + number).
fn ticket_numbers(app: &TestApp, muni: &str) -> Vec<String> {
    let mut conn = app.conn();
    conn.transaction(|c| {
        vrs::db::set_transaction_municipality(c, muni).unwrap();
        tickets::table
            .filter(tickets::municipality_code.eq(muni))
            .filter(tickets::status.eq("active"))
            .order(tickets::ticket_number)
            .select(tickets::ticket_number)
            .load::<String>(c)
    })
    .unwrap()
    .into_iter()
    .map(|t| format!("{muni}{t}"))
    .collect()
}

/// The operation-log lines of one job (its action and outcome).
fn job_log_lines(app: &TestApp, muni: &str, job_id: &str) -> Vec<(String, String)> {
    vrs::audit::flush(&mut app.conn(), &app.state.audit).unwrap();
    audit_log::table
        .filter(audit_log::chain.eq(muni))
        .filter(audit_log::target.eq(format!("import:{job_id}")))
        // The job's own lines (its file's individual numbers are logged
        // as a use of them too).
        .filter(audit_log::action.ne("my_number.access"))
        .select((audit_log::action, audit_log::outcome))
        .load(&mut app.conn())
        .unwrap()
}

impl TestApp {
    async fn job_status(&self, job: &str) -> Status {
        self.get(&format!("{job}/status"))
            .await
            .json()
            .await
            .unwrap()
    }
}

/// Failures seen by the concurrent clients, for one message at the end.
type Failures = Arc<std::sync::Mutex<Vec<String>>>;

fn fail(f: &Failures, what: String) {
    f.lock().unwrap().push(what);
}

#[tokio::test]
async fn a_large_import_runs_while_other_municipalities_record_log_in_and_search() {
    let app = spawn_app_with(|a| a.workers = Some(4)).await;
    app.seed_demo();
    let (importer, csrf) = app.staff_of("082040").await;
    let (searcher, search_csrf) = app.staff_of("131016").await;
    let site = TestApp::handle(&app);
    let token = site.api_token("131016-tablet", DEMO_PASSWORD).await;
    let mut tickets = ticket_numbers(&app, "131016");
    tickets.extend(ticket_numbers(&app, "012025"));
    let demo_addressee = vrs::demo::demo_resident(code("131016"), 3)
        .addressee_number
        .as_str()
        .to_string();
    let lines = 30_000;
    let file = resident_csv(lines, 7);
    let last = format!("A-7-{:06}", lines - 1);
    let before = app.count_rows("082040");

    let res = importer
        .upload(&csrf, file.clone().into_bytes(), "auto")
        .await;
    assert_eq!(res.status(), 303);
    let job = res.headers()["location"].to_str().unwrap().to_string();

    let done = Arc::new(AtomicBool::new(false));
    let failures: Failures = Arc::default();
    // Requests answered while the job was still running, per kind.
    let during = Arc::new(std::sync::Mutex::new([0usize; 4]));

    // A tablet records doses for tickets of other municipalities.
    let recording = {
        let (done, failures, during) = (done.clone(), failures.clone(), during.clone());
        let site = TestApp::handle(&site);
        let tickets = tickets.clone();
        tokio::spawn(async move {
            let mut recorded = 0usize;
            for (i, ticket) in tickets.iter().cycle().enumerate() {
                if done.load(Ordering::SeqCst) || i >= 400 {
                    break;
                }
                let (status, body) = site
                    .api_dose(
                        &token,
                        &format!("contention-{i:08}-key"),
                        serde_json::json!({"ticket": ticket,
                            "administered_on": vrs::clock::today_in_japan().to_string(),
                            "product_code": "PFZ_JN1_12P", "lot_number": "FA1000"}),
                    )
                    .await;
                // A second dose on the same day is refused (409 or 422 with
                // a reason) once every ticket was used: a rule, not a stall.
                if status >= 500
                    || !(status == 201 || status == 200 || status == 409 || status == 422)
                {
                    fail(&failures, format!("dose {ticket}: {status} {body}"));
                }
                if status == 201 {
                    recorded += 1;
                }
                if !done.load(Ordering::SeqCst) {
                    during.lock().unwrap()[0] += 1;
                }
            }
            recorded
        })
    };
    // Another municipality's administrator logs in, again and again.
    let logins = {
        let (done, failures, during) = (done.clone(), failures.clone(), during.clone());
        let app = TestApp::handle(&app);
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let a = TestApp::handle(&app);
                let res = a.post_login("012025-admin", DEMO_PASSWORD).await;
                if res.status() != 303 {
                    fail(&failures, format!("login: {}", res.status()));
                }
                if !done.load(Ordering::SeqCst) {
                    during.lock().unwrap()[1] += 1;
                }
            }
        })
    };
    // Another municipality's staff search their residents.
    let searches = {
        let (done, failures, during) = (done.clone(), failures.clone(), during.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let page = searcher.find_addressee(&search_csrf, &demo_addressee).await;
                if select_text(&html(&page), "#results tbody tr").len() != 1 {
                    fail(
                        &failures,
                        "search of another municipality found nothing".into(),
                    );
                }
                if !done.load(Ordering::SeqCst) {
                    during.lock().unwrap()[2] += 1;
                }
            }
        })
    };
    // The importing municipality's own staff look for the file's last
    // person: not there until the job says it succeeded, there after.
    let own = {
        let (done, failures, during) = (done.clone(), failures.clone(), during.clone());
        let (staff, csrf) = app.staff_of_named("082040", "082040-looker").await;
        let (job, last) = (job.clone(), last.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let before = staff.job_status(&job).await.status;
                let page = staff.find_addressee(&csrf, &last).await;
                let after = staff.job_status(&job).await.status;
                let found = select_text(&html(&page), "#results tbody tr").len() == 1;
                if before == "succeeded" && !found {
                    fail(
                        &failures,
                        "the import said it succeeded but its rows were missing".into(),
                    );
                }
                if after != "succeeded" && found {
                    fail(
                        &failures,
                        format!("a row of the import was visible while it was {after}"),
                    );
                }
                if after != "succeeded" {
                    during.lock().unwrap()[3] += 1;
                }
            }
        })
    };

    let mut finished = None;
    for _ in 0..3000 {
        let s = importer.job_status(&job).await;
        if s.done {
            finished = Some(s.status);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    done.store(true, Ordering::SeqCst);
    let recorded = recording.await.unwrap();
    logins.await.unwrap();
    searches.await.unwrap();
    own.await.unwrap();
    assert_eq!(finished.as_deref(), Some("succeeded"));
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{failures:#?}");
    // Each kind of request really ran while the import did.
    let during = *during.lock().unwrap();
    assert!(
        during.iter().all(|n| *n > 0),
        "requests during the import: {during:?}"
    );
    assert!(recorded > 0);

    // All of the file is there now, once.
    let page = importer.find_addressee(&csrf, &last).await;
    assert_eq!(select_text(&html(&page), "#results tbody tr").len(), 1);
    assert_eq!(
        app.count_rows("082040"),
        (before.0 + lines as i64, before.1 + lines as i64)
    );
}

/// How an import's server stops: at a named point (`VRS_CRASH_AT`), or
/// killed (SIGKILL) from outside once the job has read some lines.
#[derive(Debug, Clone, Copy)]
enum Stop {
    At(&'static str),
    KilledWhileWriting,
}

/// Starts `vrs serve` on the test database, uploads `file` as 082040's
/// staff, stops the server as `stop` says, starts it again and returns the
/// new server, a handle on it (logged in), the job's path and the
/// municipality's rows before the upload.
async fn crash_during_import(
    dir: &std::path::Path,
    db: &TestDb,
    file: &str,
    stop: Stop,
) -> (ServerProcess, TestApp, String, String, (i64, i64)) {
    let mut cmd = vrs_cmd(dir, db);
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--demo"]);
    if let Stop::At(point) = stop {
        cmd.env("VRS_CRASH_AT", point);
    }
    let mut server = ServerProcess::start(&mut cmd);
    let app = TestApp::attach(server.base_url(), dir, db);
    app.declare_lgwan("082040");
    let before = app.count_rows("082040");
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let job = match app
        .try_upload(&csrf, file.as_bytes().to_vec(), "auto")
        .await
    {
        Ok(res) => {
            assert_eq!(res.status(), 303, "{stop:?}");
            res.headers()["location"].to_str().unwrap().to_string()
        }
        // The job may reach the point where the server stops before the
        // answer to the upload is out: the job was stored first, and is
        // found in the database.
        Err(e) if matches!(stop, Stop::At(_)) => {
            let mut conn = app.conn();
            let p = vrs::tenancy::Partition::open(&mut conn, app.master(), code("082040")).unwrap();
            let jobs = p
                .read(&mut conn, |_, c| {
                    vrs::db::models::import_jobs::ImportJobRow::recent(c, "residents", 1)
                })
                .unwrap();
            let job = jobs.first().unwrap_or_else(|| panic!("{stop:?}: {e}"));
            format!("/residents/imports/{}", job.id)
        }
        Err(e) => panic!("{stop:?}: {e}"),
    };
    match stop {
        Stop::At(point) => assert!(
            server.wait_exit(std::time::Duration::from_secs(120)),
            "the server did not stop at {point}"
        ),
        Stop::KilledWhileWriting => {
            let mut seen = false;
            for _ in 0..1200 {
                let page = app.get(&job).await.text().await.unwrap();
                let lines: u64 = select_text(&html(&page), "#lines")
                    .first()
                    .and_then(|l| l.trim().parse().ok())
                    .unwrap_or(0);
                if lines > 0 {
                    seen = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(seen, "the import never started");
            let _ = server.stop();
            server =
                ServerProcess::start(vrs_cmd(dir, db).args(["serve", "--bind", "127.0.0.1:0"]));
            let app = TestApp::attach(server.base_url(), dir, db);
            let _ = app.login_as("082040-staff", DEMO_PASSWORD).await;
            return (server, app, job, csrf, before);
        }
    }
    drop(server);
    let server = ServerProcess::start(vrs_cmd(dir, db).args(["serve", "--bind", "127.0.0.1:0"]));
    let app = TestApp::attach(server.base_url(), dir, db);
    app.declare_lgwan("082040");
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    (server, app, job, csrf, before)
}

#[tokio::test]
async fn a_crash_at_any_moment_of_an_import_leaves_all_of_the_file_or_none_and_says_which() {
    // Written in batches of 1,000 lines, in one or more transactions.
    let lines = 12_000;
    let file = resident_csv(lines, 9);
    let last = format!("A-9-{:06}", lines - 1);
    for stop in [
        Stop::At("import.started"),
        Stop::At("import.batch:1"),
        Stop::At("import.before_outcome"),
        Stop::At("import.after_outcome"),
        Stop::KilledWhileWriting,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new(dir.path());
        let (server, app, job, _, before) = crash_during_import(dir.path(), &db, &file, stop).await;
        let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
        let job_id = job.rsplit('/').next().unwrap().to_string();
        let status = app.job_status(&job).await;
        assert!(
            status.done,
            "{stop:?}: the job still says {}",
            status.status
        );
        let page = app.get(&job).await.text().await.unwrap();
        let found = select_text(
            &html(&app.find_addressee(&csrf, &last).await),
            "#results tbody tr",
        )
        .len();
        let rows = app.count_rows("082040");
        let (kept, counted) = app.current_residents("082040");
        assert_eq!(kept, counted, "{stop:?}: the kept count of residents");
        let logged = job_log_lines(&app, "082040", &job_id);
        if status.status == "succeeded" {
            // All of it: every resident and ticket, found, logged once.
            assert_eq!(
                rows,
                (before.0 + lines as i64, before.1 + lines as i64),
                "{stop:?}"
            );
            assert_eq!(found, 1, "{stop:?}");
            assert_eq!(select_text(&html(&page), "#inserted"), [lines.to_string()]);
            assert_eq!(
                logged,
                [("residents.import".to_string(), "ok".to_string())],
                "{stop:?}"
            );
        } else {
            // None of it, and the page says so truthfully.
            assert_eq!(status.status, "failed", "{stop:?}");
            assert!(page.contains("何も保存されていません"), "{stop:?}: {page}");
            assert_eq!(rows, before, "{stop:?}: rows left behind");
            assert_eq!(found, 0, "{stop:?}");
            assert_eq!(
                logged,
                [("residents.import".to_string(), "failed".to_string())],
                "{stop:?}"
            );
            // The same file imports again, with a ticket for everyone.
            let (status, page) = app.import(&csrf, file.clone().into_bytes(), "auto").await;
            assert_eq!(status, "succeeded", "{stop:?}: {page}");
            assert_eq!(select_text(&html(&page), "#inserted"), [lines.to_string()]);
            assert_eq!(
                app.count_rows("082040"),
                (before.0 + lines as i64, before.1 + lines as i64)
            );
            let (kept, counted) = app.current_residents("082040");
            assert_eq!(
                kept, counted,
                "{stop:?}: the kept count after the second import"
            );
        }
        match stop {
            Stop::At("import.after_outcome") => assert_eq!(status.status, "succeeded"),
            Stop::At(_) => assert_eq!(status.status, "failed"),
            Stop::KilledWhileWriting => {}
        }
        drop(server);
    }
}

/// Provision records of `muni` written for one bulk job.
fn job_provisions(app: &TestApp, muni: &str, job_id: &str) -> i64 {
    use vrs::db::schema::provision_records;
    let mut conn = app.conn();
    conn.transaction(|c| {
        vrs::db::set_transaction_municipality(c, muni).unwrap();
        provision_records::table
            .filter(provision_records::municipality_code.eq(muni))
            .filter(provision_records::job_id.eq(job_id))
            .count()
            .get_result::<i64>(c)
    })
    .unwrap()
}

#[tokio::test]
async fn a_bulk_inquiry_stopped_halfway_keeps_what_it_sent_on_both_sides_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let mut server = ServerProcess::start(
        vrs_cmd(dir.path(), &db)
            .env("VRS_CRASH_AT", "transfer.batch:1")
            .args(["serve", "--bind", "127.0.0.1:0", "--demo"]),
    );
    let app = TestApp::attach(server.base_url(), dir.path(), &db);
    app.declare_lgwan("131016");
    let csrf = app.login_as("131016-staff", DEMO_PASSWORD).await;
    // Movers already registered here, asked about in one file of three
    // batches (2,000 lines each at most).
    let movers = 4500;
    let (status, page) = app
        .import(&csrf, resident_csv(movers, 5).into_bytes(), "auto")
        .await;
    assert_eq!(status, "succeeded", "{page}");
    let mut file = String::from("宛名番号,個人番号,転出元市区町村コード,本人同意,本人確認書類\n");
    for (i, number) in crate::residents::my_numbers_of(movers, 5)
        .iter()
        .enumerate()
    {
        file.push_str(&format!("A-5-{i:06},{number},082040,1,個人番号カード\n"));
    }
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .text("purpose", "ticket_issuance")
        .text("encoding", "auto")
        .part(
            "file",
            reqwest::multipart::Part::bytes(file.into_bytes()).file_name("movers.csv"),
        );
    let res = app
        .client
        .post(app.url("/transfers/bulk"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let job = res.headers()["location"].to_str().unwrap().to_string();
    let job_id = job.rsplit('/').next().unwrap().to_string();
    let mut stopped = false;
    for _ in 0..600 {
        if server.wait_exit(std::time::Duration::from_millis(200)) {
            stopped = true;
            break;
        }
        let Ok(res) = app
            .client
            .get(app.url(&format!("{job}/status")))
            .send()
            .await
        else {
            continue;
        };
        let s: Status = res.json().await.unwrap();
        assert!(
            !s.done,
            "the job ended ({}) instead of stopping: {}",
            s.status,
            app.get(&job).await.text().await.unwrap()
        );
    }
    assert!(stopped, "the server did not stop after the first batch");
    drop(server);

    let server =
        ServerProcess::start(vrs_cmd(dir.path(), &db).args(["serve", "--bind", "127.0.0.1:0"]));
    let app = TestApp::attach(server.base_url(), dir.path(), &db);
    app.login_as("131016-staff", DEMO_PASSWORD).await;
    let status = app.job_status(&job).await;
    assert_eq!((status.status.as_str(), status.done), ("failed", true));
    // Exactly the first batch was sent: recorded on both sides, in the
    // result file, and the page says how far the job got.
    assert_eq!(job_provisions(&app, "131016", &job_id), 2000);
    assert_eq!(job_provisions(&app, "082040", &job_id), 2000);
    let page = app.get(&job).await.text().await.unwrap();
    let doc = html(&page);
    assert_eq!(select_text(&doc, "#lines-total"), ["4500"], "{page}");
    assert_eq!(select_text(&doc, "#lines-done"), ["2000"]);
    assert_eq!(select_text(&doc, "#unmatched"), ["2000"]);
    let csv = app
        .get(&format!("{job}/result.csv"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 2001);
    let logged = job_log_lines(&app, "131016", &job_id);
    assert_eq!(
        logged
            .iter()
            .filter(|(a, _)| a == "transfer.bulk")
            .collect::<Vec<_>>(),
        [&("transfer.bulk".to_string(), "failed".to_string())],
        "{logged:?}"
    );
    drop(server);
}

/// Rows of `resident_next` of a municipality: attributes imports gave that
/// are not yet moved into their residents' rows.
fn waiting_attributes(app: &TestApp, muni: &str) -> i64 {
    use vrs::db::schema::resident_next;
    let mut conn = app.conn();
    conn.transaction(|c| {
        vrs::db::set_transaction_municipality(c, muni).unwrap();
        resident_next::table
            .filter(resident_next::municipality_code.eq(muni))
            .count()
            .get_result::<i64>(c)
    })
    .unwrap()
}

#[tokio::test]
async fn what_an_import_changed_is_what_everyone_reads_before_it_is_moved_into_place() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let serve = |crash: Option<&str>, demo: bool| {
        let mut cmd = vrs_cmd(dir.path(), &db);
        cmd.args(["serve", "--bind", "127.0.0.1:0"]);
        if demo {
            cmd.arg("--demo");
        }
        if let Some(point) = crash {
            cmd.env("VRS_CRASH_AT", point);
        }
        ServerProcess::start(&mut cmd)
    };
    let file = resident_csv(50, 4);
    let server = serve(None, true);
    let app = TestApp::attach(server.base_url(), dir.path(), &db);
    app.declare_lgwan("082040");
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let (status, _) = app.import(&csrf, file.clone().into_bytes(), "auto").await;
    assert_eq!(status, "succeeded");
    drop(server);

    // A new individual number for the first person and a new address for
    // the second; the server stops right after the import's success is
    // committed, before the new attributes move into place.
    let mut lines: Vec<String> = file.lines().map(str::to_string).collect();
    let (old_number, new_number) = (&my_numbers_of(1, 4)[0], &my_numbers_of(1, 94)[0]);
    lines[1] = lines[1].replace(old_number.as_str(), new_number);
    let old_address = lines[2].split(',').nth(6).unwrap().to_string();
    lines[2] = lines[2].replace(&old_address, &format!("{old_address}（転居）"));
    let changed = lines.join("\n") + "\n";
    let mut server = serve(Some("import.after_outcome"), false);
    let app = TestApp::attach(server.base_url(), dir.path(), &db);
    app.declare_lgwan("082040");
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let res = app
        .upload(&csrf, changed.clone().into_bytes(), "auto")
        .await;
    assert_eq!(res.status(), 303);
    let job = res.headers()["location"].to_str().unwrap().to_string();
    assert!(server.wait_exit(std::time::Duration::from_secs(120)));
    drop(server);

    let server = serve(None, false);
    let app = TestApp::attach(server.base_url(), dir.path(), &db);
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    assert_eq!(app.job_status(&job).await.status, "succeeded");
    assert_eq!(
        waiting_attributes(&app, "082040"),
        2,
        "nothing is left to read through"
    );
    assert!(app.found_by_number(&csrf, new_number).await);
    assert!(!app.found_by_number(&csrf, old_number).await);
    let page = app.find_addressee(&csrf, "A-4-000001").await;
    let doc = html(&page);
    let link = doc
        .select(&scraper::Selector::parse("#results a").unwrap())
        .next()
        .and_then(|a| a.value().attr("href"))
        .unwrap()
        .to_string();
    let record = app.get(&link).await.text().await.unwrap();
    assert!(record.contains("（転居）"), "{record}");

    // The next import moves them into place first, and finds nothing new.
    let (status, page) = app.import(&csrf, changed.into_bytes(), "auto").await;
    assert_eq!(status, "succeeded");
    assert_eq!(select_text(&html(&page), "#unchanged"), ["50"]);
    assert_eq!(waiting_attributes(&app, "082040"), 0);
    assert!(app.found_by_number(&csrf, new_number).await);
    drop(server);
}

#[tokio::test]
async fn staff_cannot_issue_a_second_active_ticket_beside_a_running_imports_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let serve = |crash: Option<&str>, demo: bool| {
        let mut cmd = vrs_cmd(dir.path(), &db);
        cmd.args(["serve", "--bind", "127.0.0.1:0"]);
        if demo {
            cmd.arg("--demo");
        }
        if let Some(point) = crash {
            cmd.env("VRS_CRASH_AT", point);
        }
        ServerProcess::start(&mut cmd)
    };
    let file = resident_csv(20, 6);
    let server = serve(None, true);
    let app = TestApp::attach(server.base_url(), dir.path(), &db);
    app.declare_lgwan("082040");
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let (status, _) = app.import(&csrf, file.clone().into_bytes(), "auto").await;
    assert_eq!(status, "succeeded");
    drop(server);

    // The next file gives the first person a ticket number of its own,
    // replacing the one issued; its server stops with the file written
    // but not yet published (the import is still running, as far as the
    // database knows).
    let mut lines: Vec<String> = file.lines().map(str::to_string).collect();
    lines[1] = lines[1].replace(",,1,1", ",7777700001,1,1");
    let mut server = serve(Some("import.before_outcome"), false);
    let app = TestApp::attach(server.base_url(), dir.path(), &db);
    app.declare_lgwan("082040");
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let res = app
        .upload(&csrf, (lines.join("\n") + "\n").into_bytes(), "auto")
        .await;
    assert_eq!(res.status(), 303);
    assert!(server.wait_exit(std::time::Duration::from_secs(120)));
    drop(server);

    // Staff reissue that person's ticket meanwhile: refused, and nothing
    // of the reissue is kept (the ticket they see stays active).
    let p = Partition::open(&mut app.conn(), app.master(), code("082040")).unwrap();
    let addressee = vrs::domain::AddresseeNumber::parse("A-6-000000").unwrap();
    let reissued = p.run(&mut app.conn(), |s, c| {
        let person = vrs::flows::residents::find_by_addressee(s, c, &addressee)?.unwrap();
        let before = vrs::flows::tickets::of_resident(s, c, &person.id)?;
        let r = vrs::flows::tickets::reissue(
            s,
            c,
            &person.id,
            vrs::flows::tickets::ReissueReason::Lost,
            &vrs::domain::ChangeReason::parse("紛失の届出").unwrap(),
            "test",
        );
        Ok::<_, vrs::flows::residents::ResidentError>((person.id, before, r))
    });
    let (person, before, r) = reissued.unwrap();
    assert!(
        matches!(
            r,
            Err(vrs::flows::residents::ResidentError::TicketFromRunningImport)
        ),
        "{r:?}"
    );
    let after = p
        .run(&mut app.conn(), |s, c| {
            vrs::flows::tickets::of_resident(s, c, &person)
        })
        .unwrap();
    assert_eq!(after, before);

    // Once the import has ended (here: closed as interrupted at start),
    // the reissue goes through.
    let server = serve(None, false);
    let app = TestApp::attach(server.base_url(), dir.path(), &db);
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let res = app
        .client
        .post(app.url(&format!("/residents/{person}/reissue")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("why", "lost"),
            ("reason", "紛失の届出"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn a_resident_flagged_while_an_import_runs_gets_no_active_ticket_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let pause = dir.path().join("paused");
    let serve = |pause_at: Option<&std::path::Path>, demo: bool| {
        let mut cmd = vrs_cmd(dir.path(), &db);
        cmd.args(["serve", "--bind", "127.0.0.1:0"]);
        if demo {
            cmd.arg("--demo");
        }
        if let Some(file) = pause_at {
            cmd.env(
                "VRS_PAUSE_AT",
                format!("import.before_outcome@{}", file.display()),
            );
        }
        ServerProcess::start(&mut cmd)
    };
    let file = resident_csv(20, 8);
    let server = serve(None, true);
    let app = TestApp::attach(server.base_url(), dir.path(), &db);
    app.declare_lgwan("082040");
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let (status, _) = app.import(&csrf, file.clone().into_bytes(), "auto").await;
    assert_eq!(status, "succeeded");
    drop(server);

    // The next file replaces the first person's ticket; it waits, written
    // but not published, while staff record the person's death.
    let mut lines: Vec<String> = file.lines().map(str::to_string).collect();
    lines[1] = lines[1].replace(",,1,1", ",7777700002,1,1");
    let server = serve(Some(&pause), false);
    let app = TestApp::attach(server.base_url(), dir.path(), &db);
    app.declare_lgwan("082040");
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let res = app
        .upload(&csrf, (lines.join("\n") + "\n").into_bytes(), "auto")
        .await;
    assert_eq!(res.status(), 303);
    let job = res.headers()["location"].to_str().unwrap().to_string();
    for _ in 0..1200 {
        if pause.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(pause.exists(), "the import never reached its outcome");
    let link = crate::residents::resident_link(&app.find_addressee(&csrf, "A-8-000000").await);
    let res = app
        .client
        .post(app.url(&format!("{link}/flag")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("flag", "deceased"),
            ("date", "2026-10-01"),
            ("reason", "死亡届の受理"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    std::fs::remove_file(&pause).unwrap();
    for _ in 0..600 {
        if app.job_status(&job).await.done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.job_status(&job).await.status, "succeeded");

    // The import's ticket for them is published invalid, as the flag
    // made the one before it; the person has no active ticket.
    let page = app.get(&link).await.text().await.unwrap();
    let rows = select_text(&html(&page), "#tickets tbody tr");
    assert!(rows.iter().any(|r| r.contains("7777700002")), "{rows:?}");
    assert!(rows.iter().all(|r| r.contains("無効")), "{rows:?}");
}

/// Uploads `file` to a job's page at `path` (a change file, a dose batch)
/// and returns the job's path without waiting for it.
async fn start_job(app: &TestApp, csrf: &str, path: &str, file: String) -> String {
    let res = app
        .client
        .post(app.url(path))
        .multipart(
            reqwest::multipart::Form::new()
                .text("csrf", csrf.to_string())
                .text("encoding", "auto")
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(file.into_bytes()).file_name("daily.csv"),
                ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{path}");
    res.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn a_dose_batch_and_a_change_file_run_while_other_municipalities_record_and_log_in() {
    let app = spawn_app_with(|a| a.workers = Some(4)).await;
    app.seed_demo();
    let (staff, csrf) = app.staff_of("082040").await;
    let lines = 12_000;
    let (status, page) = staff
        .import(&csrf, resident_csv(lines, 8).into_bytes(), "auto")
        .await;
    assert_eq!(status, "succeeded", "{page}");
    let site = TestApp::handle(&app);
    let token = site.api_token("131016-tablet", DEMO_PASSWORD).await;
    let others = ticket_numbers(&app, "131016");
    let day = (vrs::clock::today_in_japan() - chrono::Duration::days(1)).to_string();
    let mut batch = String::from("接種券,接種日,製品コード,ロット番号,医療機関,回数\n");
    for t in ticket_numbers(&app, "082040").iter().take(lines) {
        batch.push_str(&format!(
            "{t},{day},PFZ_JN1_12P,FA1000,デモ集団接種会場,1\n"
        ));
    }
    let mut changes = String::from("宛名番号,異動事由,異動日,住所\n");
    for i in 0..lines {
        let kind = if i % 2 == 0 { "転居" } else { "転出" };
        let address = if i % 2 == 0 { "古河市新町1" } else { "" };
        changes.push_str(&format!("A-8-{i:06},{kind},{day},{address}\n"));
    }
    for (path, file) in [("/doses/batches", batch), ("/residents/changes", changes)] {
        let job = start_job(&staff, &csrf, path, file).await;
        let done = Arc::new(AtomicBool::new(false));
        let failures: Failures = Arc::default();
        let during = Arc::new(std::sync::Mutex::new([0usize; 2]));
        let recording = {
            let (done, failures, during) = (done.clone(), failures.clone(), during.clone());
            let (site, token, others) = (TestApp::handle(&site), token.clone(), others.clone());
            let path = path.to_string();
            tokio::spawn(async move {
                for (i, ticket) in others.iter().cycle().enumerate() {
                    if done.load(Ordering::SeqCst) || i >= 300 {
                        break;
                    }
                    let (status, body) = site
                        .api_dose(
                            &token,
                            &format!("daily-{}-{i:08}-key", path.len()),
                            serde_json::json!({"ticket": ticket,
                                "administered_on": vrs::clock::today_in_japan().to_string(),
                                "product_code": "PFZ_JN1_12P", "lot_number": "FA1000"}),
                        )
                        .await;
                    if status >= 500 {
                        fail(&failures, format!("dose {ticket}: {status} {body}"));
                    }
                    if !done.load(Ordering::SeqCst) {
                        during.lock().unwrap()[0] += 1;
                    }
                }
            })
        };
        let logins = {
            let (done, failures, during) = (done.clone(), failures.clone(), during.clone());
            let app = TestApp::handle(&app);
            tokio::spawn(async move {
                while !done.load(Ordering::SeqCst) {
                    let a = TestApp::handle(&app);
                    let res = a.post_login("012025-admin", DEMO_PASSWORD).await;
                    if res.status() != 303 {
                        fail(&failures, format!("login: {}", res.status()));
                    }
                    if !done.load(Ordering::SeqCst) {
                        during.lock().unwrap()[1] += 1;
                    }
                }
            })
        };
        let mut finished = None;
        for _ in 0..3000 {
            let s = staff.job_status(&job).await;
            if s.done {
                finished = Some(s.status);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        done.store(true, Ordering::SeqCst);
        recording.await.unwrap();
        logins.await.unwrap();
        assert_eq!(finished.as_deref(), Some("succeeded"), "{path}");
        let failures = failures.lock().unwrap().clone();
        assert!(failures.is_empty(), "{path}: {failures:#?}");
        let during = *during.lock().unwrap();
        assert!(
            during.iter().all(|n| *n > 0),
            "{path}: requests during the job: {during:?}"
        );
    }
}

#[tokio::test]
async fn a_crash_in_the_middle_of_a_change_file_leaves_none_of_it_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path());
    let serve = |crash: bool| {
        let mut cmd = vrs_cmd(dir.path(), &db);
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--demo"]);
        if crash {
            // The first write batch of the next staged job commits, then
            // the process dies as at a power cut.
            cmd.env("VRS_CRASH_AT", "import.batch:1");
        }
        ServerProcess::start(&mut cmd)
    };
    let lines = 6_000;
    let server = serve(false);
    let app = TestApp::attach(server.base_url(), dir.path(), &db);
    app.declare_lgwan("082040");
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let (status, _) = app
        .import(&csrf, resident_csv(lines, 6).into_bytes(), "auto")
        .await;
    assert_eq!(status, "succeeded");
    drop(server);
    let before = app.count_rows("082040");
    let counted_before = app.current_residents("082040");

    let mut crashing = serve(true);
    let app = TestApp::attach(crashing.base_url(), dir.path(), &db);
    let csrf = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let day = (vrs::clock::today_in_japan() - chrono::Duration::days(1)).to_string();
    let mut file = String::from("宛名番号,異動事由,異動日,氏名,氏名カナ,生年月日,性別\n");
    for i in 0..lines {
        file.push_str(&format!("A-6-{i:06},転出,{day},,,,\n"));
    }
    file.push_str(&format!(
        "N-6-000000,転入,{day},新井　一,アライ　ハジメ,1990-01-01,1\n"
    ));
    let job = start_job(&app, &csrf, "/residents/changes", file).await;
    assert!(
        crashing.wait_exit(std::time::Duration::from_secs(120)),
        "the server did not stop in the change file"
    );

    let server = serve(false);
    let app = TestApp::attach(server.base_url(), dir.path(), &db);
    let _ = app.login_as("082040-staff", DEMO_PASSWORD).await;
    let status = app.job_status(&job).await;
    assert!(status.done);
    assert_eq!(status.status, "failed");
    let page = app.get(&job).await.text().await.unwrap();
    assert!(page.contains("何も保存されていません"), "{page}");
    // None of it: nobody moved out, nobody arrived, counts as before.
    assert_eq!(app.count_rows("082040"), before);
    assert_eq!(app.current_residents("082040"), counted_before);
    let moved: i64 = {
        let mut conn = app.conn();
        conn.transaction(|c| {
            vrs::db::set_transaction_municipality(c, "082040").unwrap();
            vrs::db::schema::residents::table
                .filter(vrs::db::schema::residents::municipality_code.eq("082040"))
                .filter(vrs::db::schema::residents::moved_out_on.is_not_null())
                .count()
                .get_result(c)
        })
        .unwrap()
    };
    assert_eq!(moved, 0);
    assert_eq!(
        job_log_lines(&app, "082040", job.rsplit('/').next().unwrap()),
        [("residents.changes".to_string(), "failed".to_string())]
    );
    drop(server);
}
