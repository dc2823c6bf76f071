//! `vrs bench …`: the benchmarks and their options.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Sealing + blind-indexing a resident vs raw AES-256-GCM.
    Seal {
        /// Residents to seal.
        #[arg(long, default_value_t = 200_000)]
        n: usize,
    },
    /// Importing a resident file vs the plain insert of the same rows.
    Import {
        /// Lines in the generated file.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// A scratch PostgreSQL database to measure on (a schema is created
        /// and dropped); without it, a temporary SQLite file.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// A municipality's daily work: a change file (異動) and a dose batch of
    /// `rows` lines each vs the resident import of as many, and the
    /// rendering of reminder notices.
    Daily {
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// Letters to render as print pages.
        #[arg(long, default_value_t = 10_000)]
        notices: usize,
        /// As for `bench import`.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Recording doses through the HTTP API under load (wrk) vs GET /health.
    Record {
        /// Length of the measured run.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Open connections of the load generator (wrk -c).
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Tickets to prepare, spread over four municipalities: each request
        /// uses a ticket of its own, so this bounds the requests of a run.
        #[arg(long, default_value_t = 120_000)]
        tickets: usize,
        /// Length of the GET /health baseline run.
        #[arg(long, default_value_t = 15)]
        health_seconds: u64,
        /// HTTP workers of the server (default: one per core, as `vrs serve`).
        #[arg(long)]
        workers: Option<usize>,
        /// As for `bench import`.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Every page of the route table opened by a city's staff, administrator
    /// and site tablet, in a municipality of a city's size.
    Pages {
        /// Residents of the municipality, each with an active ticket.
        #[arg(long, default_value_t = 1_000_000)]
        residents: usize,
        /// Doses spread over them.
        #[arg(long, default_value_t = 3_000_000)]
        doses: usize,
        /// Timed requests per page.
        #[arg(long, default_value_t = 100)]
        requests: usize,
        /// As for `bench import`.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// A large resident import of one municipality next to doses recorded
    /// for others' tickets (wrk), each against itself alone.
    Contention {
        /// The long job next to the tablets.
        #[arg(long, value_enum, default_value_t = crate::bench::contention::Job::Import)]
        job: crate::bench::contention::Job,
        /// Lines of the resident file imported; residents of the municipality
        /// whose keys rotate; doses recounted.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Length of the recording run with no import.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Open connections of the load generator (wrk -c): tablets.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Pause of each connection between two recordings, in ms.
        #[arg(long, default_value_t = 50)]
        pause_ms: u64,
        /// Tickets prepared, spread over three municipalities: each
        /// recording uses one, so this bounds the recordings of both runs.
        #[arg(long, default_value_t = 300_000)]
        tickets: usize,
        /// HTTP workers of the server (default: one per core, as `vrs serve`).
        #[arg(long)]
        workers: Option<usize>,
        /// As for `bench import`.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Transfer inquiries (window and bulk) with a large municipality asked.
    Transfer {
        /// Residents of the municipality asked.
        #[arg(long, default_value_t = 1_000_000)]
        residents: usize,
        /// Of them, movers (two doses each): the bulk file's lines.
        #[arg(long, default_value_t = 100_000)]
        movers: usize,
        /// Window inquiries timed, of each kind (match, miss).
        #[arg(long, default_value_t = 2000)]
        inquiries: usize,
        /// As for `bench import`.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Issuing SMART Health Cards (bundle, DEFLATE, ES256, QR) vs the bare signature.
    Cards {
        /// Cards to issue in each measured run.
        #[arg(long, default_value_t = 20_000)]
        n: usize,
        /// Doses on each card.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=8))]
        doses: u8,
    },
    /// The national statistics dashboard over many doses vs counting them directly.
    Statistics {
        /// Doses in the database.
        #[arg(long, default_value_t = 10_000_000)]
        doses: usize,
        /// Dashboard requests timed, of each kind.
        #[arg(long, default_value_t = 50)]
        requests: usize,
        /// As for `bench import`.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Streaming the ledger CSV vs reading the same rows plainly.
    Export {
        /// Doses in the municipality.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// As for `bench import`.
        #[arg(long)]
        postgres: Option<String>,
    },
}

/// Runs one benchmark and prints its report.
pub(super) fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Seal { n } => {
            print!("{}", crate::bench::seal(n));
            Ok(())
        }
        BenchCmd::Import { rows, postgres } => {
            print!("{}", crate::bench::import(rows, postgres.as_deref())?);
            Ok(())
        }
        BenchCmd::Daily {
            rows,
            notices,
            postgres,
        } => {
            print!(
                "{}",
                crate::bench::daily(rows, notices, postgres.as_deref())?
            );
            Ok(())
        }
        BenchCmd::Record {
            seconds,
            connections,
            tickets,
            health_seconds,
            workers,
            postgres,
        } => {
            let opts = crate::bench::record::Options {
                seconds,
                connections,
                tickets,
                health_seconds,
                workers,
            };
            print!("{}", crate::bench::record::run(&opts, postgres.as_deref())?);
            Ok(())
        }
        BenchCmd::Pages {
            residents,
            doses,
            requests,
            postgres,
        } => {
            let opts = crate::bench::pages::Options {
                residents,
                doses,
                requests,
            };
            print!("{}", crate::bench::pages::run(&opts, postgres.as_deref())?);
            Ok(())
        }
        BenchCmd::Transfer {
            residents,
            movers,
            inquiries,
            postgres,
        } => {
            let opts = crate::bench::transfer::Options {
                residents,
                movers,
                inquiries,
            };
            print!(
                "{}",
                crate::bench::transfer::run(&opts, postgres.as_deref())?
            );
            Ok(())
        }
        BenchCmd::Contention {
            job,
            rows,
            seconds,
            connections,
            pause_ms,
            tickets,
            workers,
            postgres,
        } => {
            let opts = crate::bench::contention::Options {
                job,
                rows,
                seconds,
                connections,
                pause_ms,
                tickets,
                workers,
            };
            print!(
                "{}",
                crate::bench::contention::run(&opts, postgres.as_deref())?
            );
            Ok(())
        }
        BenchCmd::Cards { n, doses } => {
            print!("{}", crate::bench::cards::run(n, doses.into()));
            Ok(())
        }
        BenchCmd::Statistics {
            doses,
            requests,
            postgres,
        } => {
            print!(
                "{}",
                crate::bench::statistics::run(doses, requests.max(5), postgres.as_deref())?
            );
            Ok(())
        }
        BenchCmd::Export { rows, postgres } => {
            print!("{}", crate::bench::export(rows, postgres.as_deref())?);
            Ok(())
        }
    }
}
