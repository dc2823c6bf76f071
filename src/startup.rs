//! Builds the application: opens the database, applies migrations, finds or
//! creates the keys, and binds the HTTP server (port 0 in tests).

use crate::config::{Common, ConfigError, ServeArgs};
use crate::crypto::MasterKey;
use crate::db;
use crate::db::models::issuer_keys::IssuerKeyRow;
use crate::db::models::tenants::TenantKeyRow;
use crate::flows::{self, AppState, JOB_LEASE};
use actix_web::dev::Server;
use anyhow::Context;
use std::sync::Arc;

/// This server's runner name (see `AppState::runner`), made on first start.
fn runner_name(data_dir: &std::path::Path) -> anyhow::Result<Arc<str>> {
    let path = data_dir.join("runner-id");
    if let Ok(name) = std::fs::read_to_string(&path) {
        let name = name.trim();
        if !name.is_empty() {
            return Ok(name.into());
        }
    }
    crate::private_dir::create(data_dir)?;
    let name = uuid::Uuid::new_v4().to_string();
    std::fs::write(&path, &name).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(name.into())
}

/// The state plus what start-up did, so `serve` can say it.
pub struct Prepared {
    pub state: AppState,
    pub created_master_key: bool,
    pub created_issuer_key: bool,
    pub migrations_applied: usize,
    pub rls_bypassed: bool,
    /// Whether a commit is on disk when it returns, and the settings.
    pub durability: db::Durability,
    /// The server's PostgreSQL role owns tables (it could lift the wall).
    pub owns_tables: bool,
    /// Login and one-time password of the first operator, when created now.
    pub bootstrap_operator: Option<(String, crate::domain::NewPassword)>,
}

/// Applies pending migrations: as the tables' owner when one is configured
/// (`--migration-database-url`), granting the server's role (that of `conn`)
/// what it needs; otherwise as the server's own role.
pub fn migrate(common: &Common, conn: &mut db::DbConn) -> anyhow::Result<usize> {
    let Some(owner_url) = &common.migration_database_url else {
        let applied = db::migrate(conn)?;
        db::settle_counts(conn)?;
        return Ok(applied);
    };
    let mut owner = db::Manager::new(owner_url.clone()).establish()?;
    let applied = db::migrate(&mut owner)?;
    let owner_role = db::current_role(&mut owner)?;
    if let Some(role) = db::current_role(conn)?
        && Some(&role) != owner_role.as_ref()
    {
        db::grant_server_role(&mut owner, &role)?;
    }
    // After the grant: a server already running records with the new
    // tables while the counts are settled.
    db::settle_counts(&mut owner)?;
    Ok(applied)
}

/// The tables' owner's connection when one is configured, for the few
/// operator commands that remove what the server's role may not (erasing a
/// municipality's provision records).
pub fn owner_connection(common: &Common) -> anyhow::Result<Option<db::DbConn>> {
    Ok(match &common.migration_database_url {
        Some(url) => Some(db::Manager::new(url.clone()).establish()?),
        None => None,
    })
}

/// Opens everything a command needs. Outside production, a first run creates
/// the SQLite database, the master key file (mode 600) and the issuer key.
pub fn prepare(common: &Common, pool_size: u32) -> anyhow::Result<Prepared> {
    let found = common.find_master_key()?;
    let url = common.database_url();
    let pool = db::connect(&url, pool_size)?;
    let mut conn = pool.get().context("database pool")?;
    let migrations_applied = migrate(common, &mut conn)?;
    let rls_bypassed = db::role_bypasses_rls(&mut conn)?;
    let owns_tables = db::role_owns_tables(&mut conn)?;
    let durability = db::durability(&mut conn)?;

    let mut wrapped_ids: Vec<String> = TenantKeyRow::all(&mut conn)?
        .into_iter()
        .map(|k| k.master_key_id)
        .chain(
            IssuerKeyRow::all(&mut conn)?
                .into_iter()
                .map(|k| k.master_key_id),
        )
        .collect();
    wrapped_ids.sort();
    wrapped_ids.dedup();

    let (master, created_master_key) = match found {
        Some(k) => (k, false),
        None => {
            let path = common.master_key_path();
            if let Some(id) = wrapped_ids.first() {
                anyhow::bail!(
                    "the database {url} holds keys wrapped by master key {id}, but there is no \
                     master key file at {} and {} is not set",
                    path.display(),
                    crate::config::MASTER_KEY_ENV
                );
            }
            let k = MasterKey::generate(common.new_master_key_source());
            k.write_new_file(&path).map_err(ConfigError::from)?;
            (k, true)
        }
    };
    if let Some(other) = wrapped_ids.iter().find(|id| **id != master.key_id()) {
        anyhow::bail!(
            "the master key ({}, key id {}) is not the one that wrapped this database's keys \
             (key id {other})",
            master.source,
            master.key_id()
        );
    }
    let (_, created_issuer_key) = flows::issuer::ensure_issuer_key(&mut conn, &master)?;
    let audit = crate::audit::AuditKey::load_or_create(&mut conn, &master)?;
    flows::vaccines::seed(&mut conn)?;
    // Made now, so the first login with an unknown name is not slower.
    crate::crypto::password::decoy_hash();
    let bootstrap_operator = if common.production {
        None
    } else {
        flows::accounts::bootstrap_operator(&mut conn, &audit)?
    };
    drop(conn);
    let commits = commit_group(&pool)?;
    Ok(Prepared {
        state: AppState {
            pool,
            master: Arc::new(master),
            audit: audit.clone(),
            spool_dir: common.data_dir.join("spool"),
            import_limits: crate::flows::imports::Limits::default(),
            transfer: crate::flows::transfer::Settings::default(),
            issuer_url: String::from("http://localhost:8080"),
            stats_min_cell: crate::flows::statistics::DEFAULT_MIN_CELL,
            runner: runner_name(&common.data_dir)?,
            witness: Arc::new(crate::audit::witness::Witness::open(
                &common.audit_witness_path(),
                &audit,
            )?),
            commits,
        },
        bootstrap_operator,
        created_master_key,
        created_issuer_key,
        migrations_applied,
        rls_bypassed,
        owns_tables,
        durability,
    })
}

/// The commit group of a SQLite database (see `db::commit_group`).
pub fn commit_group(
    pool: &db::Pool,
) -> std::io::Result<Option<Arc<db::commit_group::CommitGroup>>> {
    let sqlite = pool
        .get()
        .map(|c| matches!(*c, db::DbConn::Sqlite(_)))
        .unwrap_or(false);
    if !sqlite {
        return Ok(None);
    }
    Ok(Some(Arc::new(db::commit_group::CommitGroup::start(
        pool.clone(),
    )?)))
}

/// How often the log writer chains the operation-log lines written to be
/// chained later (`audit::append_later`).
const LOG_WRITER_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// How often the heads of the operation log's chains are written to its
/// witness file (see `audit::witness`).
const WITNESS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Chains what an earlier run left waiting and witnesses the chains' heads,
/// then starts the thread that chains waiting lines every moment, and
/// witnesses the heads every minute, until `alive` is gone.
fn log_writer(
    state: actix_web::web::Data<AppState>,
    alive: std::sync::Weak<()>,
) -> anyhow::Result<()> {
    let flush = move |state: &AppState| -> anyhow::Result<usize> {
        let mut conn = state.pool.get()?;
        Ok(crate::audit::flush(&mut conn, &state.audit)?)
    };
    let witness = move |state: &AppState| -> anyhow::Result<usize> {
        let mut conn = state.pool.get()?;
        Ok(state.witness.record(&mut conn, &state.audit)?)
    };
    flush(&state)?;
    witness(&state)?;
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            let mut witnessed = std::time::Instant::now();
            while alive.strong_count() > 0 {
                std::thread::sleep(LOG_WRITER_EVERY);
                if alive.strong_count() == 0 {
                    break;
                }
                if let Err(e) = flush(&state) {
                    tracing::warn!(
                        error = %crate::domain::mask_number_like(&e.to_string()),
                        "operation-log lines could not be chained yet"
                    );
                }
                if witnessed.elapsed() >= WITNESS_EVERY {
                    witnessed = std::time::Instant::now();
                    if let Err(e) = witness(&state) {
                        tracing::error!(error = %e, "the operation log's witness could not be written");
                    }
                }
            }
            // The last heads, as the server stops.
            let _ = flush(&state).and_then(|_| witness(&state));
        })?;
    Ok(())
}

/// How often the server purges provision records past retention.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
/// How often the server looks for jobs whose process stopped.
const REAP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The scheduled purge of provision records past retention (at start, then
/// every hour) and the search for jobs whose server stopped (every few
/// seconds), while `alive` lasts.
fn housekeeping(
    state: actix_web::web::Data<AppState>,
    alive: std::sync::Weak<()>,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("housekeeping".into())
        .spawn(move || {
            let mut last: Option<std::time::Instant> = None;
            let mut reaped = std::time::Instant::now();
            while alive.strong_count() > 0 {
                if reaped.elapsed() >= REAP_EVERY {
                    reaped = std::time::Instant::now();
                    if let Err(e) = flows::import_jobs::reap(&state, false, JOB_LEASE) {
                        tracing::warn!(error = %e, "jobs of stopped servers could not be closed yet");
                    }
                }
                if last.is_none_or(|l| l.elapsed() >= PURGE_EVERY) {
                    last = Some(std::time::Instant::now());
                    let purged = state
                        .pool
                        .get()
                        .map_err(anyhow::Error::from)
                        .and_then(|mut c| {
                            Ok(flows::provisions::purge_expired(
                                &mut c,
                                &state.master,
                                &state.audit,
                                &crate::audit::Actor::default(),
                                "schedule",
                                crate::clock::now(),
                            )?)
                        });
                    let swept = state
                        .pool
                        .get()
                        .map_err(anyhow::Error::from)
                        .and_then(|mut c| Ok(flows::log_review::sweep_volumes(&mut c, &state.master)?));
                    match swept {
                        Ok(n) if n > 0 => tracing::info!(notices = n, "accounts above their daily threshold"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "daily volumes could not be checked"),
                    }
                    match purged {
                        Ok(p) if !p.is_empty() => {
                            tracing::info!(
                                municipalities = p.len(),
                                "provision records past retention purged"
                            )
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(
                            error = %crate::domain::mask_number_like(&e.to_string()),
                            "provision records past retention could not be purged"
                        ),
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        })?;
    Ok(())
}

/// A bound, not yet running, HTTP server.
pub struct Application {
    port: u16,
    scheme: &'static str,
    server: Server,
}

impl Application {
    pub fn build(mut state: AppState, serve: &ServeArgs) -> anyhow::Result<Application> {
        state.import_limits = crate::flows::imports::Limits {
            max_bytes: serve.import_max_mib.saturating_mul(1024 * 1024),
            max_lines: serve.import_max_lines,
        };
        state.transfer = crate::flows::transfer::Settings {
            rates: crate::flows::transfer::RateLimits {
                per_account_hour: serve.inquiry_rate_account,
                per_municipality_hour: serve.inquiry_rate_municipality,
            },
            answer_floor: Arc::new(crate::flows::transfer::AnswerFloor::new(
                std::time::Duration::from_millis(serve.inquiry_answer_ms),
            )),
        };
        state.stats_min_cell = serve.stats_min_cell;
        let static_dir = serve.static_dir.clone();
        let tls = match (&serve.tls_cert, &serve.tls_key) {
            (Some(c), Some(k)) => Some(crate::config::load_tls(c, k)?),
            _ => None,
        };
        let secure = tls.is_some();
        let transport = actix_web::web::Data::new(crate::web::Transport {
            secure,
            trusted_proxies: serve.trusted_proxies.clone(),
        });
        let access_log = actix_web::web::Data::new(serve.access_log);
        // Bound first: the issuer URL defaults to the address it gets.
        let listener = std::net::TcpListener::bind(serve.bind)
            .with_context(|| format!("cannot listen on {} (--bind / VRS_BIND)", serve.bind))?;
        let port = listener.local_addr()?.port();
        let scheme = if secure { "https" } else { "http" };
        state.issuer_url = match &serve.issuer_url {
            Some(url) => url.clone(),
            None => {
                let ip = serve.bind.ip();
                let host = if ip.is_unspecified() {
                    "localhost".to_string()
                } else if ip.is_ipv6() {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                format!("{scheme}://{host}:{port}")
            }
        };
        let app_state = actix_web::web::Data::new(state);
        // The log writer runs while the server's application factory lives:
        // the factory holds `alive`, and goes with the server.
        let alive = Arc::new(());
        log_writer(app_state.clone(), Arc::downgrade(&alive))?;
        housekeeping(app_state.clone(), Arc::downgrade(&alive))?;
        let factory = move || {
            let _held = &alive;
            actix_web::App::new()
                .app_data(app_state.clone())
                .configure(|cfg| {
                    crate::web::configure(cfg, &static_dir, transport.clone(), access_log.clone())
                })
        };
        let mut http = actix_web::HttpServer::new(factory);
        if let Some(w) = serve.workers {
            http = http.workers(w.max(1));
        }
        let http = match tls {
            Some(cfg) => http.listen_rustls_0_23(listener, cfg)?,
            None => http.listen(listener)?,
        };
        Ok(Application {
            port,
            scheme,
            server: http.run(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    pub fn into_server(self) -> Server {
        self.server
    }
}
