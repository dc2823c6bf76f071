//! `vrs keys …`: the master key, municipalities' data keys and the issuer
//! key rotated.

use super::*;

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Rotate the master key and/or municipalities' data keys.
    Rotate {
        /// Replace the master key: every wrapped key is re-wrapped under a
        /// new one, written to the key file (the old file is kept as .old).
        #[arg(long)]
        master: bool,
        /// When the master key comes from VRS_MASTER_KEY: file to write the new key to.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
        /// Re-key these municipalities (data key and index key), re-sealing all their rows.
        #[arg(long = "municipality", value_parser = parse_code)]
        municipalities: Vec<MunicipalityCode>,
        /// Re-key every enabled municipality.
        #[arg(long)]
        all_municipalities: bool,
        /// Seconds between a municipality's new key becoming active and the
        /// last pass over its rows: longer than any request of a running
        /// server takes, so what a request began with the old key is sealed
        /// again too. 0 when no server is running.
        #[arg(long, default_value_t = 60)]
        grace: u64,
    },
    /// Sign new certificates with a new issuer key. The old key stays
    /// published in the JWKS, so every card it signed still verifies.
    RotateIssuer,
}

pub(super) fn run(common: &Common, cmd: KeysCmd) -> anyhow::Result<()> {
    let (master, new_key_file, municipalities, all_municipalities, grace) = match cmd {
        KeysCmd::Rotate {
            master,
            new_key_file,
            municipalities,
            all_municipalities,
            grace,
        } => (
            master,
            new_key_file,
            municipalities,
            all_municipalities,
            std::time::Duration::from_secs(grace),
        ),
        KeysCmd::RotateIssuer => {
            let prepared = startup::prepare(common, 2)?;
            let mut conn = prepared.state.pool.get()?;
            let actor = crate::audit::Actor {
                account_id: None,
                login_id: Some("cli".into()),
                client_addr: None,
            };
            let (old, new) = flows::issuer::rotate(
                &mut conn,
                &prepared.state.master,
                &prepared.state.audit,
                &actor,
            )?;
            println!(
                "issuer key rotated: new cards are signed with {new}; {} stays published",
                old.as_deref().unwrap_or("no earlier key")
            );
            return Ok(());
        }
    };
    anyhow::ensure!(
        master || all_municipalities || !municipalities.is_empty(),
        "say what to rotate: --master, --municipality CODE or --all-municipalities"
    );
    let prepared = startup::prepare(common, 2)?;
    let mut conn = prepared.state.pool.get()?;
    let mut current = prepared.state.master.clone();
    if master {
        current = std::sync::Arc::new(rotate_master(&mut conn, &current, new_key_file)?);
    }
    let mut codes = municipalities;
    if all_municipalities {
        for t in crate::db::models::tenants::TenantRow::active(&mut conn)? {
            codes.push(MunicipalityCode::parse(&t.municipality_code)?);
        }
    }
    for code in codes {
        println!(
            "municipality {code}: sealing with a new key version; the server can keep running"
        );
        let r = flows::keys::rotate_tenant(&mut conn, &current, code, grace)?;
        println!(
            "municipality {code}: now key v{}, {} residents and {} other sealed values sealed again, old keys destroyed",
            r.version, r.residents, r.cells
        );
    }
    Ok(())
}

/// Writes the new key beside the old one first, re-wraps in one transaction,
/// then swaps the files, so a crash at any point leaves a key that opens the
/// database: before commit the old file, after it `master.key.new`.
fn rotate_master(
    conn: &mut crate::db::DbConn,
    old: &MasterKey,
    new_key_file: Option<PathBuf>,
) -> anyhow::Result<MasterKey> {
    match (&old.source, new_key_file) {
        (MasterKeySource::Env(var), None) => anyhow::bail!(
            "the master key comes from {var}: give --new-key-file PATH for the new key, then \
             put its content in {var}"
        ),
        (_, Some(path)) => {
            let new = MasterKey::generate(MasterKeySource::File(path.clone()));
            new.write_new_file(&path)?;
            let r = flows::keys::rotate_master(conn, old, &new)?;
            println!(
                "master key rotated: {} municipality keys and {} issuer keys re-wrapped; new key in {}",
                r.tenant_keys,
                r.issuer_keys,
                path.display()
            );
            Ok(new)
        }
        (MasterKeySource::File(path), None) => {
            let staged = path.with_extension("key.new");
            let new = MasterKey::generate(MasterKeySource::File(path.clone()));
            new.write_new_file(&staged)?;
            let r = flows::keys::rotate_master(conn, old, &new)?;
            let retired = path.with_extension("key.old");
            std::fs::rename(path, &retired)
                .with_context(|| format!("moving {} aside", path.display()))?;
            std::fs::rename(&staged, path)
                .with_context(|| format!("installing the new key as {}", path.display()))?;
            println!(
                "master key rotated: {} municipality keys and {} issuer keys re-wrapped; \
                 old key kept as {} (destroy it once backups made with it are gone)",
                r.tenant_keys,
                r.issuer_keys,
                retired.display()
            );
            Ok(new)
        }
    }
}
