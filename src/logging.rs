//! The process's log: one line per event on stderr, colour only on a
//! terminal (escape codes in a log file are bytes nobody reads), and a
//! count of the bytes written, which the benchmarks report per dose.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use tracing_subscriber::fmt::MakeWriter;

static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Bytes the log has written since the process started.
pub fn bytes_written() -> u64 {
    WRITTEN.load(Ordering::Relaxed)
}

/// Starts the log at the level `VRS_LOG` names (default `info`).
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("VRS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(Counted)
        .try_init();
}

struct Counted;

impl<'a> MakeWriter<'a> for Counted {
    type Writer = CountedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        CountedStderr(std::io::stderr())
    }
}

struct CountedStderr(std::io::Stderr);

impl Write for CountedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        WRITTEN.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
