//! Does a burst of logins starve ordinary pages? Starts the real application
//! (SQLite in a temp dir, real HTTP on loopback), measures the latency of the
//! top page alone (baseline), then again while 20 clients log in
//! continuously (each login is a full argon2id verification).
//!
//!     cargo bench --bench login_load
//!
//! Bounded: a fixed number of page requests per phase, loopback only.

use std::time::{Duration, Instant};
use vrs::config::{Common, ServeArgs};
use vrs::db::DatabaseUrl;

const PAGE_REQUESTS: usize = 400;
const LOGIN_CLIENTS: usize = 20;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn page_latencies(client: &reqwest::Client, url: &str) -> Vec<Duration> {
    let mut out = Vec::with_capacity(PAGE_REQUESTS);
    for _ in 0..PAGE_REQUESTS {
        let t = Instant::now();
        let r = client.get(url).send().await.expect("page");
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
        out.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    out.sort();
    out
}

async fn login_once(base: &str) -> bool {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let Ok(page) = client.get(format!("{base}/login")).send().await else {
        return false;
    };
    let body = page.text().await.unwrap_or_default();
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("")
        .to_string();
    let res = client
        .post(format!("{base}/login"))
        .form(&[
            ("login_id", "082040-staff"),
            ("password", vrs::demo::DEMO_PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await;
    matches!(res, Ok(r) if r.status() == 303)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let common = Common {
        data_dir: dir.path().join("data"),
        audit_witness: None,
        migration_database_url: None,
        database_url: Some(DatabaseUrl::Sqlite(dir.path().join("data/vrs.db"))),
        master_key_file: None,
        production: false,
    };
    let prepared = vrs::startup::prepare(&common, 16).expect("prepare");
    {
        let mut conn = prepared.state.pool.get().expect("conn");
        vrs::demo::seed(&mut conn, &prepared.state.master, &prepared.state.audit).expect("demo");
    }
    let args = ServeArgs {
        bind: "127.0.0.1:0".parse().expect("addr"),
        tls_cert: None,
        tls_key: None,
        static_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/static").into(),
        demo: false,
        trusted_proxies: Vec::new(),
        workers: None,
        import_max_mib: 1024,
        import_max_lines: 5_000_000,
        inquiry_rate_account: 60,
        inquiry_rate_municipality: 1000,
        inquiry_answer_ms: 15,
        issuer_url: None,
        stats_min_cell: 10,
        access_log: vrs::config::AccessLog::All,
    };
    let app = vrs::startup::Application::build(prepared.state, &args).expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        tokio::spawn(app.into_server());
        let client = reqwest::Client::new();
        let url = format!("{base}/");
        // Warm up, then the baseline: pages alone.
        page_latencies(&client, &url).await;
        let alone = page_latencies(&client, &url).await;

        // Pages while 20 clients log in over and over.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut logins = Vec::new();
        for _ in 0..LOGIN_CLIENTS {
            let (base, stop) = (base.clone(), stop.clone());
            logins.push(tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if login_once(&base).await {
                        n += 1;
                    }
                }
                n
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let loaded = page_latencies(&client, &url).await;
        let elapsed = started.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut done = 0;
        for l in logins {
            done += l.await.unwrap_or(0);
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        println!("login_load: top page, {PAGE_REQUESTS} requests per phase, {cores} cores, SQLite");
        println!(
            "  pages alone:                  p50 {:.1} ms, p99 {:.1} ms",
            ms(percentile(&alone, 0.5)),
            ms(percentile(&alone, 0.99))
        );
        println!(
            "  pages during {LOGIN_CLIENTS} logins at once: p50 {:.1} ms, p99 {:.1} ms ({done} logins completed in {:.1} s, {:.0} ms each on average)",
            ms(percentile(&loaded, 0.5)),
            ms(percentile(&loaded, 0.99)),
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0 / done.max(1) as f64
        );
        println!(
            "  ratio p99 loaded/alone: {:.1}x; target p99 < 100 ms under load: {}",
            ms(percentile(&loaded, 0.99)) / ms(percentile(&alone, 0.99)),
            if percentile(&loaded, 0.99) < Duration::from_millis(100) { "met" } else { "NOT met" }
        );
    });
}
