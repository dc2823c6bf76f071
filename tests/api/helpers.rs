use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use vrs::config::{Common, ServeArgs};
use vrs::crypto::MasterKey;
use vrs::db::{DatabaseUrl, DbConn, PooledConn};
use vrs::flows::AppState;
use vrs::startup::{self, Application};

/// A database of one's own for one test: a SQLite file in a temp dir, or a
/// fresh schema in the PostgreSQL that TEST_DATABASE_URL names (dropped
/// when the test ends).
pub struct TestDb {
    /// The server's connection: on PostgreSQL with `TEST_SERVER_ROLE` set,
    /// a role that owns nothing.
    pub url: DatabaseUrl,
    /// The tables' owner, which migrates (PostgreSQL with two roles).
    pub owner_url: Option<DatabaseUrl>,
    pg: Option<(String, String)>,
}

/// The server's role for PostgreSQL tests (`user:password` in
/// `TEST_SERVER_ROLE`); without it the server runs as the owner.
fn server_role() -> Option<(String, String)> {
    let v = std::env::var("TEST_SERVER_ROLE").ok()?;
    let (user, password) = v.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// `url` with another user and password.
fn as_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}:{password}@{host}")
}

pub fn pg_base_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

pub fn on_postgres() -> bool {
    pg_base_url().is_some()
}

impl TestDb {
    pub fn new(dir: &std::path::Path) -> TestDb {
        match pg_base_url() {
            Some(base) => {
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                let mut c =
                    diesel::PgConnection::establish(&base).expect("connect to TEST_DATABASE_URL");
                c.batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .expect("create schema");
                let sep = if base.contains('?') { '&' } else { '?' };
                // Named after the schema, so a test can find its own
                // application's server processes among all the others.
                let url = format!(
                    "{base}{sep}options=-csearch_path%3D{schema}&application_name={schema}"
                );
                let owner = DatabaseUrl::parse(&url).expect("valid url");
                match server_role() {
                    Some((user, password)) => TestDb {
                        url: DatabaseUrl::parse(&as_user(&url, &user, &password))
                            .expect("valid url"),
                        owner_url: Some(owner),
                        pg: Some((base, schema)),
                    },
                    None => TestDb {
                        url: owner,
                        owner_url: None,
                        pg: Some((base, schema)),
                    },
                }
            }
            None => TestDb {
                url: DatabaseUrl::Sqlite(dir.join("vrs.db")),
                owner_url: None,
                pg: None,
            },
        }
    }

    /// A direct connection, outside the application's pool.
    /// A connection as the tables' owner (the server's own where there is
    /// one role): what someone with the database's keys could do.
    pub fn owner_conn(&self) -> DbConn {
        vrs::db::Manager::new(self.owner_url.clone().unwrap_or_else(|| self.url.clone()))
            .establish()
            .expect("connect as owner")
    }

    /// A copy naming the same database, for another handle.
    pub fn same(&self) -> TestDb {
        TestDb {
            url: self.url.clone(),
            owner_url: self.owner_url.clone(),
            pg: None,
        }
    }

    /// Ends every server process of this database's connections but the
    /// caller's own, as a restart or failover of the server would, and says
    /// how many it ended (PostgreSQL only).
    pub fn terminate_connections(&self) -> usize {
        let Some((base, schema)) = &self.pg else {
            return 0;
        };
        #[derive(diesel::QueryableByName)]
        struct Ended {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut c = diesel::PgConnection::establish(base).expect("connect");
        let ended: Ended = diesel::sql_query(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind::<diesel::sql_types::Text, _>(schema)
        .get_result(&mut c)
        .expect("terminate");
        ended.n as usize
    }

    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match &self.url {
            DatabaseUrl::Sqlite(p) => Some(p.clone()),
            DatabaseUrl::Postgres(_) => None,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = &self.pg
            && let Ok(mut c) = diesel::PgConnection::establish(base)
        {
            let _ = c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub db: TestDb,
    /// The first operator's login and one-time password.
    pub operator: (String, String),
    /// Holds the data folder (master key, SQLite file) for the test's life.
    _dir: tempfile::TempDir,
}

pub fn common_for(dir: &std::path::Path, db: &TestDb) -> Common {
    Common {
        data_dir: dir.join("data"),
        audit_witness: None,
        migration_database_url: db.owner_url.clone(),
        database_url: Some(db.url.clone()),
        master_key_file: Some(dir.join("data/master.key")),
        production: false,
    }
}

pub fn serve_args(static_dir: Option<PathBuf>) -> ServeArgs {
    ServeArgs {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        tls_cert: None,
        tls_key: None,
        static_dir: static_dir
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/static"))),
        demo: false,
        trusted_proxies: Vec::new(),
        workers: Some(1),
        import_max_mib: 64,
        import_max_lines: 100_000,
        inquiry_rate_account: 60,
        inquiry_rate_municipality: 1000,
        inquiry_answer_ms: 15,
        issuer_url: None,
        stats_min_cell: 10,
        access_log: vrs::config::AccessLog::All,
    }
}

/// Builds the real application on a free port with a fresh database, as
/// `vrs serve` would on a first run.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The same, with changed serve settings (e.g. a trusted proxy).
pub async fn spawn_app_with(adjust: impl FnOnce(&mut ServeArgs)) -> TestApp {
    install_tls_provider();
    // VRS_TEST_LOG=warn (a tracing filter) shows what the server logs.
    if let Ok(filter) = std::env::var("VRS_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new(dir.path());
    let common = common_for(dir.path(), &db);
    let c2 = common.clone();
    let prepared = tokio::task::spawn_blocking(move || startup::prepare(&c2, 4))
        .await
        .unwrap()
        .expect("prepare");
    let state = prepared.state.clone();
    let operator = prepared
        .bootstrap_operator
        .as_ref()
        .map(|(l, p)| (l.clone(), p.as_str().to_string()))
        .expect("first start creates the operator");
    let mut args = serve_args(None);
    adjust(&mut args);
    let app = Application::build(prepared.state, &args).expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.into_server());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    TestApp {
        base,
        client,
        state,
        db,
        operator,
        _dir: dir,
    }
}

impl TestApp {
    /// A handle on a `vrs serve` process (`ServerProcess`) whose data
    /// folder is `dir/data`, with the same database and keys, for reading
    /// what it stored. `db` stays owned by the caller.
    pub fn attach(base: String, dir: &std::path::Path, db: &TestDb) -> TestApp {
        install_tls_provider();
        let prepared = startup::prepare(&common_for(dir, db), 4).expect("prepare");
        TestApp {
            base,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .build()
                .unwrap(),
            state: prepared.state,
            db: db.same(),
            operator: (String::new(), String::new()),
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The data folder of this app (master key, SQLite file).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }

    /// Another handle on the same running app with a fresh cookie jar (the
    /// database stays owned by `app`).
    pub fn handle(app: &TestApp) -> TestApp {
        install_tls_provider();
        TestApp {
            base: app.base.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_store(true)
                .build()
                .unwrap(),
            state: app.state.clone(),
            db: app.db.same(),
            operator: app.operator.clone(),
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub fn conn(&self) -> PooledConn {
        self.state.pool.get().expect("pooled connection")
    }

    pub fn master(&self) -> &MasterKey {
        &self.state.master
    }

    /// The resident of `muni` holding an individual number, if any, found
    /// through the partition's blind index.
    pub fn holder_of(&self, muni: &str, number: &str) -> Option<vrs::flows::residents::Resident> {
        let mut conn = self.conn();
        let p = vrs::tenancy::Partition::open(&mut conn, self.master(), code(muni)).unwrap();
        let n = vrs::domain::MyNumber::parse(number).unwrap();
        p.read(&mut conn, |s, c| {
            vrs::flows::residents::find_by_my_number(
                s,
                c,
                &n,
                vrs::flows::residents::MyNumberPurpose::TransferInquiry,
            )
        })
        .unwrap()
    }

    /// Creates an account directly (as an administrator would), with a known
    /// password that need not be changed. Returns the password.
    pub fn create_account(
        &self,
        login: &str,
        role: vrs::domain::Role,
        municipality: Option<&str>,
        permissions: &[&str],
    ) -> String {
        let password = format!("pw for {login} 2026");
        let mut conn = self.conn();
        vrs::flows::accounts::create(
            &mut conn,
            &self.state.audit,
            &vrs::audit::Actor::default(),
            vrs::flows::accounts::NewAccount {
                login_id: vrs::domain::LoginId::parse(login).unwrap(),
                role,
                municipality: municipality.map(code),
                prefecture_code: None,
                display_name: format!("テスト {login}"),
                permissions: permissions.iter().map(|p| p.to_string()).collect(),
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

    /// Declares the loopback as one of a municipality's LG-WAN networks, so
    /// that this machine's requests count as from its terminals.
    pub fn declare_lgwan(&self, muni: &str) {
        self.declare_network(muni, "127.0.0.0/8");
    }

    /// Declares `cidr` as one of a municipality's LG-WAN networks.
    pub fn declare_network(&self, muni: &str, cidr: &str) {
        vrs::flows::networks::add(
            &mut self.conn(),
            &self.state.audit,
            &vrs::audit::Actor::default(),
            code(muni),
            vrs::domain::Network::parse(cidr).unwrap(),
            "庁舎",
        )
        .unwrap();
    }

    /// Fills the demo municipalities, as `vrs demo` does.
    /// Registers a certificate channel client as the operator would;
    /// returns its id and secret.
    pub fn register_channel_client(
        &self,
        name: &str,
        channel: vrs::flows::certificates::Channel,
        networks: &[&str],
    ) -> (vrs::flows::certificates::Client, String) {
        let networks: Vec<vrs::domain::Network> = networks
            .iter()
            .map(|n| vrs::domain::Network::parse(n).unwrap())
            .collect();
        vrs::flows::certificates::register_client(
            &mut self.conn(),
            &self.state.audit,
            &vrs::audit::Actor::default(),
            name,
            channel,
            &networks,
        )
        .unwrap()
    }

    /// An administrator of `muni` enables certificate channels on the
    /// channels page (`fields`: the form's checkboxes, e.g. `("app", "1")`).
    pub async fn enable_certificate_channels(&self, muni: &str, fields: &[(&str, &str)]) {
        let admin = TestApp::handle(self);
        let csrf = admin
            .login_as(&format!("{muni}-admin"), vrs::demo::DEMO_PASSWORD)
            .await;
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let res = admin
            .client
            .post(admin.url("/admin/certificate-channels"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
    }

    pub fn seed_demo(&self) {
        let mut conn = self.conn();
        vrs::demo::seed(&mut conn, self.master(), &self.state.audit).expect("demo seed");
    }
}

pub fn html(body: &str) -> scraper::Html {
    scraper::Html::parse_document(body)
}

pub fn select_text(doc: &scraper::Html, css: &str) -> Vec<String> {
    let sel = scraper::Selector::parse(css).expect("selector");
    doc.select(&sel)
        .map(|e| e.text().collect::<String>().trim().to_string())
        .collect()
}

pub fn code(s: &str) -> vrs::domain::MunicipalityCode {
    vrs::domain::MunicipalityCode::parse(s).expect("valid code")
}

impl TestDb {
    /// The URL as the binary takes it on its command line or environment.
    pub fn url_string(&self) -> String {
        match &self.url {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(u) => u.clone(),
        }
    }
}

/// The `vrs` binary with its data folder under `dir` and the test database.
pub fn vrs_cmd(dir: &std::path::Path, db: &TestDb) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_vrs"));
    c.current_dir(dir)
        .env_remove("VRS_MASTER_KEY")
        .env_remove("VRS_MASTER_KEY_FILE")
        .env_remove("VRS_PRODUCTION")
        .env_remove("VRS_DATA_DIR")
        .env_remove("VRS_CRASH_AT")
        .env("VRS_DATABASE_URL", db.url_string())
        .env("VRS_LOG", "info");
    if let Some(DatabaseUrl::Postgres(owner)) = &db.owner_url {
        c.env("VRS_MIGRATION_DATABASE_URL", owner);
    }
    c
}

/// A real `vrs serve` process, started by [`ServerProcess::start`]; killed
/// when dropped, so a failed assertion never leaves it running.
pub struct ServerProcess {
    child: std::process::Child,
    /// The port from the "listening on http://127.0.0.1:PORT/" line.
    pub port: String,
    /// What the process printed on stdout up to and including that line.
    pub printed: String,
    stdout_rest: std::sync::mpsc::Receiver<String>,
    stdout: Option<std::thread::JoinHandle<()>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl ServerProcess {
    /// Spawns `cmd` (a `vrs … serve --bind 127.0.0.1:0 …` command) with
    /// stdout and stderr piped and reads stdout until the server names its
    /// address. Both pipes are drained in the background from then on, so a
    /// chatty server never blocks on a full pipe.
    pub fn start(cmd: &mut std::process::Command) -> ServerProcess {
        use std::io::{BufRead, BufReader, Read};
        use std::process::Stdio;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vrs serve");
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut logged = Vec::new();
            let _ = err.read_to_end(&mut logged);
            String::from_utf8_lossy(&logged).into_owned()
        });
        let mut server = ServerProcess {
            child,
            port: String::new(),
            printed: String::new(),
            stdout_rest: lines,
            stdout: Some(stdout),
            stderr: Some(stderr),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        for _ in 0..50 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = server.stdout_rest.recv_timeout(left) else {
                break;
            };
            server.printed.push_str(&line);
            server.printed.push('\n');
            if let Some(rest) = line.split("127.0.0.1:").nth(1) {
                server.port = rest.split('/').next().unwrap_or_default().to_string();
                break;
            }
        }
        if server.port.is_empty() {
            let printed = std::mem::take(&mut server.printed);
            let (_, logged) = server.stop();
            panic!("no address printed: {printed}\nstderr: {logged}");
        }
        server
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits up to `timeout` for the process to end by itself (a crash
    /// point); whether it did.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }

    /// Kills the process and returns what it printed on stdout after the
    /// address line, and everything it wrote on stderr.
    pub fn stop(mut self) -> (String, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(h) = self.stdout.take() {
            let _ = h.join();
        }
        let rest: Vec<String> = self.stdout_rest.try_iter().collect();
        let logged = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (rest.join("\n"), logged)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// reqwest is built with rustls but no default crypto provider: choose ring,
/// as the application does.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The value of a form's hidden (or any) input by name.
pub fn hidden(body: &str, name: &str) -> String {
    let doc = html(body);
    let sel = scraper::Selector::parse(&format!("input[name={name}]")).unwrap();
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("value"))
        .unwrap_or_default()
        .to_string()
}
