//! A power cut while doses are recorded: the server's data directory and
//! SQLite database live on [`LazyFs`], which keeps every write that was
//! not synced only in its "page cache". The server is killed in the middle
//! of the load and the file system is cut, dropping whatever was not
//! synced; every dose the API acknowledged must be in what is left. The
//! same run with fsync ignored must lose acknowledged doses — otherwise
//! the method could not see a loss. PostgreSQL keeps its own files (its
//! settings are checked in `backends::every_pooled_connection_commits_durably`),
//! so this runs on SQLite.

use crate::helpers::*;
use crate::lazyfs::{LazyFs, SyncMode};
use diesel::prelude::*;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use vrs::bench::record::{add_lot, fill_municipality, site_tablet, ticket_number};

/// 大阪市: not a demo municipality, filled here with tickets of its own.
const CITY: &str = "271004";
const TICKETS: usize = 3000;
/// Concurrent recording clients: a busy site's moment.
const CLIENTS: usize = 8;

/// What one run saw: doses acknowledged, how many of them are in the
/// database after the cut, and the cut's report.
struct Outcome {
    acknowledged: usize,
    found: usize,
    report: crate::lazyfs::CutReport,
    copy: tempfile::TempDir,
}

/// Dose ids in the database a cut left (none when the cut left no table).
fn stored_dose_ids(copy: &std::path::Path) -> HashSet<String> {
    let path = copy.join("vrs.db");
    let Ok(mut conn) = diesel::SqliteConnection::establish(&path.to_string_lossy()) else {
        return HashSet::new();
    };
    vrs::db::schema::doses::table
        .select(vrs::db::schema::doses::id)
        .load::<String>(&mut conn)
        .map(|ids| ids.into_iter().collect())
        .unwrap_or_default()
}

async fn record_then_cut(mode: SyncMode) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let fs = LazyFs::mount(&mnt, mode).expect("mount the test file system (root and /dev/fuse)");
    let db = TestDb::new(&mnt);

    // The city's residents, tickets and a site tablet, written before the
    // server starts (and synced by SQLite as every commit is).
    let (login, password) = {
        let app = TestApp::attach(String::new(), &mnt, &db);
        let mut conn = app.conn();
        add_lot(&mut conn).unwrap();
        fill_municipality(&mut conn, app.master(), code(CITY), TICKETS).unwrap();
        site_tablet(&mut conn, &app.state.audit, code(CITY)).unwrap()
    };
    let server = ServerProcess::start(vrs_cmd(&mnt, &db).args(["serve", "--bind", "127.0.0.1:0"]));
    let site = TestApp::attach(server.base_url(), &mnt, &db);
    let token = site.api_token(&login, &password).await;

    // Clients record until the server is gone; each keeps the dose ids it
    // was answered with.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let date = (vrs::clock::today_in_japan() - chrono::Duration::days(1)).to_string();
    let mut clients = Vec::new();
    for k in 0..CLIENTS {
        let (client, url, token, date) = (
            site.client.clone(),
            site.url("/api/v1/doses"),
            token.clone(),
            date.clone(),
        );
        let acknowledged = acknowledged.clone();
        clients.push(tokio::spawn(async move {
            for i in (k..TICKETS).step_by(CLIENTS) {
                let body = serde_json::json!({
                    "ticket": format!("{CITY}{}", ticket_number(i)),
                    "administered_on": date,
                    "product_code": "PFZ_JN1_12P",
                    "lot_number": "FA1000",
                });
                let Ok(res) = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("Idempotency-Key", format!("power-cut-{i:012}"))
                    .json(&body)
                    .send()
                    .await
                else {
                    return;
                };
                if !res.status().is_success() {
                    let status = res.status();
                    let text = res.text().await.unwrap_or_default();
                    eprintln!("client {k}: {status} {text}");
                    return;
                }
                let Ok(answer) = res.json::<serde_json::Value>().await else {
                    return;
                };
                if let Some(id) = answer["dose_id"].as_str() {
                    acknowledged.lock().unwrap().push(id.to_string());
                }
            }
        }));
    }
    // The cut comes in the middle of the load.
    let started = std::time::Instant::now();
    while acknowledged.lock().unwrap().len() < TICKETS / 4
        && started.elapsed() < std::time::Duration::from_secs(60)
        && clients.iter().any(|c| !c.is_finished())
    {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let _ = server.stop();
    for c in clients {
        let _ = c.await;
    }
    drop(site);
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() < TICKETS,
        "the load ended before the cut"
    );

    let copy = tempfile::tempdir().unwrap();
    let report = fs.cut(copy.path()).expect("cut");
    let stored = stored_dose_ids(copy.path());
    let found = acknowledged
        .iter()
        .filter(|id| stored.contains(*id))
        .count();
    Outcome {
        acknowledged: acknowledged.len(),
        found,
        report,
        copy,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_dose_survives_a_power_cut() {
    if on_postgres() {
        return;
    }
    let cut = record_then_cut(SyncMode::Honour).await;
    eprintln!(
        "power cut: {} doses acknowledged, {} found; {:?}",
        cut.acknowledged, cut.found, cut.report
    );
    assert!(cut.acknowledged > 0);
    assert_eq!(
        cut.found, cut.acknowledged,
        "acknowledged doses lost in the cut"
    );

    // What the cut left is a database the server opens and whose
    // operation log verifies.
    let db = TestDb::new(cut.copy.path());
    let verify = vrs_cmd(cut.copy.path(), &db)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "audit verify after the cut: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let server = ServerProcess::start(vrs_cmd(cut.copy.path(), &db).args([
        "serve",
        "--bind",
        "127.0.0.1:0",
    ]));
    let health = reqwest::get(format!("{}/health", server.base_url()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // The control: with every sync ignored, the cut loses acknowledged
    // doses, so the check above can fail.
    let lost = record_then_cut(SyncMode::Ignore).await;
    eprintln!(
        "power cut, fsync ignored: {} doses acknowledged, {} found; {:?}",
        lost.acknowledged, lost.found, lost.report
    );
    assert!(lost.acknowledged > 0);
    assert!(
        lost.found < lost.acknowledged,
        "ignoring fsync lost nothing: the cut does not drop unsynced writes"
    );
    assert!(lost.report.dropped_bytes > 0);
}
