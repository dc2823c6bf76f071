//! `vrs audit …`: the operation log's chains checked against their MACs and
//! the witness files.

use super::*;

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check every line of every chain against its MACs, and every chain's
    /// length against the witness file(s); exits non-zero if a line was
    /// changed, removed or reordered, a chain was cut short or deleted, or a
    /// witness line does not verify.
    Verify {
        /// Witness files to check against (default: the server's,
        /// --audit-witness); give the copies shipped elsewhere.
        #[arg(long)]
        witness: Vec<std::path::PathBuf>,
    },
    /// Write the heads of every chain to the witness file now (the server
    /// does so every minute).
    Witness,
}

/// `vrs audit verify`: every chain against its MACs and against what the
/// witness files saw; one line per chain, a non-zero exit on any finding.
pub(super) fn verify(
    conn: &mut crate::db::DbConn,
    key: &crate::audit::AuditKey,
    files: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    let mut all = crate::audit::witness::Witnessed::default();
    let mut findings = 0;
    for file in files {
        let w = crate::audit::witness::read(file, key)?;
        for line in &w.bad_lines {
            findings += 1;
            println!(
                "witness {}: line {line} does not verify (changed, or not written by this deployment)",
                file.display()
            );
        }
        all.merge(w);
    }
    for r in crate::audit::verify(conn, key, None, Some(&all.heads))? {
        let witnessed = r
            .witnessed
            .map(|w| format!(", witnessed up to line {w}"))
            .unwrap_or_default();
        if r.intact() {
            println!("{}: {} lines, intact{witnessed}", r.chain, r.lines);
            continue;
        }
        findings += 1;
        if let Some(seq) = r.broken_at {
            println!(
                "{}: BROKEN at line {seq} (changed, removed or reordered); intact up to line {}",
                r.chain,
                r.vouched()
            );
        } else if r.missing {
            println!(
                "{}: MISSING: an active municipality with no operation-log line at all",
                r.chain
            );
        } else {
            println!(
                "{}: TRUNCATED: the witness saw line {}, which the log no longer holds as it was ({} lines now); the witness vouches up to line {}",
                r.chain,
                r.witnessed.unwrap_or_default(),
                r.lines,
                r.confirmed.unwrap_or_default()
            );
        }
    }
    anyhow::ensure!(
        findings == 0,
        "{findings} finding(s) in the operation log or its witness"
    );
    Ok(())
}
