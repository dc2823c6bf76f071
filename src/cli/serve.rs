//! `vrs serve`: the server started on its settings, with what it prints for
//! the person who started it.

use super::*;

impl ServeArgs {
    pub(super) fn default_args() -> ServeArgs {
        // Parsing an empty argument list applies every default and env var.
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            s: ServeArgs,
        }
        Wrap::parse_from(["vrs"]).s
    }
}

pub(super) fn serve(common: &Common, args: ServeArgs) -> anyhow::Result<()> {
    if args.demo && common.production {
        return Err(crate::config::ConfigError::DemoInProduction.into());
    }
    // A server that holds the owner's URL could lift the wall it runs
    // behind: in production the owner migrates (`vrs migrate`) apart.
    anyhow::ensure!(
        !(common.production && common.migration_database_url.is_some()),
        "in production the server does not take --migration-database-url: run `vrs migrate` \
         with the tables' owner's URL first, then serve with the server's role alone"
    );
    let prepared = startup::prepare(common, 16)?;
    if common.production
        && !args
            .issuer_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    {
        return Err(crate::config::ConfigError::IssuerUrlInProduction.into());
    }
    let interrupted = prepared.state.recover_interrupted_jobs()?;
    if interrupted > 0 {
        println!("{interrupted} import job(s) interrupted by the last stop were marked failed.");
    }
    if prepared.created_master_key {
        println!(
            "Created a new master key at {} (readable only by you). Back it up: without it no \
             municipality's data can be read.",
            common.master_key_path().display()
        );
    }
    if prepared.created_issuer_key {
        println!("Created the certificate issuer signing key.");
    }
    if let Some((login, password)) = &prepared.bootstrap_operator {
        println!(
            "Created the platform operator account: log in as `{login}` with the one-time \
             password {} (you will be asked to change it).",
            password.as_str()
        );
    }
    if common.migration_database_url.is_some() {
        tracing::warn!(
            "the server holds the tables' owner's URL (--migration-database-url): in production \
             run `vrs migrate` with it, then serve without it"
        );
    }
    if prepared.owns_tables {
        tracing::warn!(
            "the server's PostgreSQL role owns the tables, so it could lift row-level security \
             or change a policy; give the owner's URL as --migration-database-url and run the \
             server as a role that owns nothing (see README, \"Two database roles\")"
        );
    }
    if !prepared.durability.durable {
        tracing::warn!(
            settings = %prepared.durability.settings,
            "the database does not put a commit on disk before it returns: a power cut can lose \
             doses already answered as recorded; run PostgreSQL with fsync=on, \
             synchronous_commit=on and full_page_writes=on (README, \"Durability\")"
        );
    }
    if prepared.rls_bypassed {
        tracing::warn!(
            "the PostgreSQL role bypasses row-level security (superuser or BYPASSRLS); \
             run the application as an ordinary role so the database enforces partitions"
        );
    }
    if args.demo {
        let mut conn = prepared.state.pool.get()?;
        print!(
            "{}",
            demo::seed(&mut conn, &prepared.state.master, &prepared.state.audit)?
        );
    }
    let app = Application::build(prepared.state, &args)?;
    let host = match args.bind.ip() {
        ip if ip.is_unspecified() => "localhost".to_string(),
        ip if ip.is_ipv6() => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    println!(
        "VRS is listening on {}://{}:{}/ (database {})",
        app.scheme(),
        host,
        app.port(),
        common.database_url()
    );
    println!(
        "Operator tasks run from this command line: `vrs municipality enable CODE`, \
         `vrs keys rotate`, `vrs --help`."
    );
    actix_web::rt::System::new()
        .block_on(app.run_until_stopped())
        .context("server stopped")
}
