//! Named points where a test stops the server process at once, as a power
//! cut or `kill -9` would, to check what a job leaves behind at exactly that
//! moment. `VRS_CRASH_AT=<point>` (for a counted point, `<point>:<n>`, the
//! n-th time it is reached) arms one; unset, a point costs one comparison.
//!
//! The same points can hold a job instead, so that a test acts while it
//! waits there: `VRS_PAUSE_AT=<point>@<file>` creates `<file>` when the
//! point is reached and goes on once the test has removed it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The armed point and how many times it must be reached first.
fn armed() -> Option<&'static (String, u64)> {
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var("VRS_CRASH_AT").ok()?;
            Some(match v.rsplit_once(':') {
                Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
                None => (v, 1),
            })
        })
        .as_ref()
}

/// Stops the process here if this point is armed.
fn crash_point(name: &str) {
    static REACHED: AtomicU64 = AtomicU64::new(0);
    if let Some((armed, nth)) = armed()
        && armed == name
        && REACHED.fetch_add(1, Ordering::SeqCst) + 1 == *nth
    {
        eprintln!("VRS_CRASH_AT: stopping at {name}");
        std::process::abort();
    }
}

/// Stops the process here if this point is armed to crash; waits here if
/// it is armed to pause (see the module's comment).
pub fn point(name: &str) {
    crash_point(name);
    pause_point(name);
}

fn pause_point(name: &str) {
    static ARMED: OnceLock<Option<(String, std::path::PathBuf)>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        let v = std::env::var("VRS_PAUSE_AT").ok()?;
        let (point, file) = v.split_once('@')?;
        Some((point.to_string(), file.into()))
    });
    let Some((point, file)) = armed else { return };
    if point != name || std::fs::write(file, name).is_err() {
        return;
    }
    eprintln!(
        "VRS_PAUSE_AT: waiting at {name} until {} is removed",
        file.display()
    );
    // A test that never removes the file does not hold the job for ever.
    for _ in 0..6000 {
        if !file.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
