//! Typed settings: one flag and one environment variable per setting, with
//! defaults that make a bare `vrs serve` work on a fresh machine.

use crate::crypto::{MasterKey, MasterKeySource};
use crate::db::DatabaseUrl;
use clap::Args;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Settings every command shares.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Folder for the embedded database and the master key file.
    #[arg(long, env = "VRS_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,

    /// sqlite://PATH or postgres://USER:PASSWORD@HOST/DB (default: sqlite://DATA_DIR/vrs.db).
    #[arg(long, env = "VRS_DATABASE_URL", value_parser = DatabaseUrl::parse, global = true)]
    pub database_url: Option<DatabaseUrl>,

    /// postgres://OWNER:PASSWORD@HOST/DB: the role that owns the tables,
    /// used for migrations only (and to grant the server's role what it
    /// needs); the server then runs as VRS_DATABASE_URL's role, which owns
    /// nothing. Without it, migrations run as the server's role.
    #[arg(long, env = "VRS_MIGRATION_DATABASE_URL", value_parser = DatabaseUrl::parse, global = true)]
    pub migration_database_url: Option<DatabaseUrl>,

    /// File holding the master key (default: DATA_DIR/master.key). The key
    /// can instead be given in VRS_MASTER_KEY (base64 or hex).
    #[arg(long, env = "VRS_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,

    /// Production mode: nothing is created implicitly; the master key must be
    /// given explicitly (VRS_MASTER_KEY or --master-key-file).
    #[arg(long, env = "VRS_PRODUCTION", global = true)]
    pub production: bool,

    /// The operation log's witness file, outside the database (default:
    /// DATA_DIR/audit-witness.log); keep a copy where the database's users
    /// cannot write.
    #[arg(long, env = "VRS_AUDIT_WITNESS", global = true)]
    pub audit_witness: Option<PathBuf>,
}

/// Settings of `vrs serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free port).
    #[arg(long, env = "VRS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// PEM certificate chain; with --tls-key, serve HTTPS.
    #[arg(long, env = "VRS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "VRS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Folder of static files (CSS, scripts, vendored libraries).
    #[arg(long, env = "VRS_STATIC_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/static"))]
    pub static_dir: PathBuf,

    /// Fill three real municipalities with demo residents (never in production).
    #[arg(long)]
    pub demo: bool,

    /// Reverse proxies whose X-Forwarded-For is believed (comma-separated
    /// CIDRs). Without one, the client address is the socket's.
    #[arg(long = "trusted-proxy", env = "VRS_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Worker threads of the HTTP server (default: one per core).
    #[arg(long, env = "VRS_WORKERS")]
    pub workers: Option<usize>,

    /// Largest resident file accepted for import, in MiB.
    #[arg(long, env = "VRS_IMPORT_MAX_MIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub import_max_mib: u64,

    /// Most data lines accepted in one resident file.
    #[arg(long, env = "VRS_IMPORT_MAX_LINES", default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub import_max_lines: u64,

    /// Transfer inquiries one account may send in an hour (window and API).
    #[arg(long, env = "VRS_INQUIRY_RATE_ACCOUNT", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub inquiry_rate_account: u32,

    /// Transfer inquiries one municipality may send in an hour (window and API).
    #[arg(long, env = "VRS_INQUIRY_RATE_MUNICIPALITY", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub inquiry_rate_municipality: u32,

    /// A transfer inquiry is answered no sooner than this many milliseconds
    /// after it arrived, match or not (later when the recent inquiries'
    /// 99th percentile of working time, with a margin, is later).
    #[arg(long, env = "VRS_INQUIRY_ANSWER_MS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub inquiry_answer_ms: u64,

    /// The certificate issuer's URL (`iss` of every card; keys are served
    /// under it at /.well-known/jwks.json). Default: this server's own
    /// address. Must be https in production.
    #[arg(long, env = "VRS_ISSUER_URL", value_parser = parse_issuer_url)]
    pub issuer_url: Option<String>,

    /// Statistics show and publish no count smaller than this (a smaller
    /// cell could single a person out): it is marked suppressed instead.
    #[arg(long, env = "VRS_STATS_MIN_CELL", default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub stats_min_cell: i64,

    /// Which requests get an access-log line: `all`, `errors` (4xx and
    /// 5xx only), `off`, or `1/N` (every error and one in N of the rest).
    #[arg(long, env = "VRS_ACCESS_LOG", default_value = "all", value_parser = AccessLog::parse)]
    pub access_log: AccessLog,
}

/// An http(s) URL with a host and no trailing slash, query or fragment, as
/// SMART Health Cards require of `iss`.
fn parse_issuer_url(s: &str) -> Result<String, String> {
    let s = s.trim().trim_end_matches('/');
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| format!("{s:?} must start with https://"))?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) || rest.starts_with('/') {
        return Err(format!(
            "{s:?} is not a URL of the form https://host[/path]"
        ));
    }
    Ok(s.to_string())
}

fn parse_proxy(s: &str) -> Result<ipnet::IpNet, String> {
    s.trim()
        .parse::<ipnet::IpNet>()
        .or_else(|_| s.trim().parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not an address or CIDR network"))
}

pub const MASTER_KEY_ENV: &str = "VRS_MASTER_KEY";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "production mode needs an explicit master key: set {MASTER_KEY_ENV} or --master-key-file \
         (VRS_MASTER_KEY_FILE) to an existing key file"
    )]
    ProductionNeedsKey,
    #[error("--demo cannot be used in production mode")]
    DemoInProduction,
    #[error(
        "production mode needs --issuer-url (VRS_ISSUER_URL) with https://: certificates name their issuer by it"
    )]
    IssuerUrlInProduction,
    #[error(transparent)]
    MasterKey(#[from] crate::crypto::master::MasterKeyError),
    #[error("{0}")]
    Tls(String),
}

impl Common {
    pub fn database_url(&self) -> DatabaseUrl {
        self.database_url
            .clone()
            .unwrap_or_else(|| DatabaseUrl::Sqlite(self.data_dir.join("vrs.db")))
    }

    pub fn audit_witness_path(&self) -> PathBuf {
        self.audit_witness
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit-witness.log"))
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// Finds the master key: the environment variable, else the key file.
    /// `Ok(None)` means neither exists and the caller may create one (never
    /// in production).
    pub fn find_master_key(&self) -> Result<Option<MasterKey>, ConfigError> {
        if let Ok(v) = std::env::var(MASTER_KEY_ENV) {
            return Ok(Some(MasterKey::parse(
                &v,
                MasterKeySource::Env(MASTER_KEY_ENV),
            )?));
        }
        let path = self.master_key_path();
        if path.exists() {
            return Ok(Some(MasterKey::load_file(&path)?));
        }
        if self.production {
            return Err(ConfigError::ProductionNeedsKey);
        }
        Ok(None)
    }

    pub fn new_master_key_source(&self) -> MasterKeySource {
        MasterKeySource::File(self.master_key_path())
    }
}

/// Loads a PEM certificate chain and key into a rustls server config.
pub fn load_tls(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ConfigError> {
    let read = |p: &Path, what: &str| {
        std::fs::read(p).map_err(|e| ConfigError::Tls(format!("{what} {}: {e}", p.display())))
    };
    let cert_pem = read(cert, "TLS certificate (--tls-cert)")?;
    let key_pem = read(key, "TLS key (--tls-key)")?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| {
            ConfigError::Tls(format!(
                "TLS certificate (--tls-cert) {}: {e}",
                cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(ConfigError::Tls(format!(
            "TLS certificate (--tls-cert) {}: no PEM certificate found",
            cert.display()
        )));
    }
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| ConfigError::Tls(format!("TLS key (--tls-key) {}: {e}", key.display())))?
        .ok_or_else(|| {
            ConfigError::Tls(format!(
                "TLS key (--tls-key) {}: no PEM private key found",
                key.display()
            ))
        })?;
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| ConfigError::Tls(format!("TLS certificate and key do not match: {e}")))
}

/// Which requests get a line in the access log. Errors (5xx) also get
/// their own line with the cause, whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLog {
    /// One line per request.
    All,
    /// Every request that failed or was refused (4xx, 5xx), and one in
    /// `n` of the others.
    Sample(u64),
    /// Only requests that failed or were refused.
    Errors,
    Off,
}

impl AccessLog {
    /// `all`, `errors`, `off`, or `1/N` (one in N of the requests that
    /// succeeded).
    pub fn parse(input: &str) -> Result<AccessLog, String> {
        match input.trim() {
            "all" => Ok(AccessLog::All),
            "errors" => Ok(AccessLog::Errors),
            "off" => Ok(AccessLog::Off),
            other => other
                .strip_prefix("1/")
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|n| *n >= 1)
                .map(AccessLog::Sample)
                .ok_or_else(|| {
                    format!("{other:?}: expected all, errors, off or 1/N (N a whole number ≥ 1)")
                }),
        }
    }

    pub fn wants(&self, status: u16) -> bool {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEEN: AtomicU64 = AtomicU64::new(0);
        match self {
            AccessLog::All => true,
            AccessLog::Off => false,
            _ if status >= 400 => true,
            AccessLog::Errors => false,
            AccessLog::Sample(n) => SEEN.fetch_add(1, Ordering::Relaxed).is_multiple_of(*n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_log_setting_is_parsed_and_sampled() {
        assert_eq!(AccessLog::parse("all"), Ok(AccessLog::All));
        assert_eq!(AccessLog::parse("1/100"), Ok(AccessLog::Sample(100)));
        for bad in ["", "1/0", "1/x", "some", "2/3"] {
            assert!(AccessLog::parse(bad).is_err(), "{bad}");
        }
        assert!(AccessLog::Errors.wants(404) && !AccessLog::Errors.wants(200));
        assert!(!AccessLog::Off.wants(500));
        let sample = AccessLog::Sample(4);
        let kept = (0..400).filter(|_| sample.wants(200)).count();
        assert_eq!(kept, 100);
        assert!((0..10).all(|_| sample.wants(503)));
    }
}
