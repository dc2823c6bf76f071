use diesel::Connection;
use diesel::connection::SimpleConnection;
use std::net::SocketAddr;
use std::path::PathBuf;
use vrs::config::{Common, ServeArgs};
use vrs::crypto::MasterKey;
use vrs::db::{DatabaseUrl, DbConn, PooledConn};
use vrs::startup::{self, AppState, Application};

/// A database of one's own for one test: a SQLite file in a temp dir, or a
/// fresh schema in the PostgreSQL that TEST_DATABASE_URL names (dropped
/// when the test ends).
pub struct TestDb {
    pub url: DatabaseUrl,
    pg: Option<(String, String)>,
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
                let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
                TestDb {
                    url: DatabaseUrl::parse(&url).expect("valid url"),
                    pg: Some((base, schema)),
                }
            }
            None => TestDb {
                url: DatabaseUrl::Sqlite(dir.join("vrs.db")),
                pg: None,
            },
        }
    }

    /// A direct connection, outside the application's pool.
    pub fn connect(&self) -> DbConn {
        vrs::db::Manager::new(self.url.clone())
            .establish()
            .expect("connect")
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
    /// Holds the data folder (master key, SQLite file) for the test's life.
    _dir: tempfile::TempDir,
}

pub fn common_for(dir: &std::path::Path, db: &TestDb) -> Common {
    Common {
        data_dir: dir.join("data"),
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
        workers: Some(1),
    }
}

/// Builds the real application on a free port with a fresh database, as
/// `vrs serve` would on a first run.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new(dir.path());
    let common = common_for(dir.path(), &db);
    let c2 = common.clone();
    let prepared = tokio::task::spawn_blocking(move || startup::prepare(&c2, 4))
        .await
        .unwrap()
        .expect("prepare");
    let state = prepared.state.clone();
    let app = Application::build(prepared.state, &serve_args(None)).expect("build");
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
        _dir: dir,
    }
}

impl TestApp {
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

    /// Fills the demo municipalities, as `vrs demo` does.
    pub fn seed_demo(&self) {
        let mut conn = self.conn();
        vrs::demo::seed(&mut conn, self.master()).expect("demo seed");
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
