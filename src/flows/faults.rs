//! Named points where a test stops the server process at once, as a power
//! cut or `kill -9` would, to check what a job leaves behind at exactly that
//! moment. `VRS_CRASH_AT=<point>` (for a counted point, `<point>:<n>`, the
//! n-th time it is reached) arms one; unset, a point costs one comparison.

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
pub fn crash_point(name: &str) {
    static REACHED: AtomicU64 = AtomicU64::new(0);
    if let Some((armed, nth)) = armed()
        && armed == name
        && REACHED.fetch_add(1, Ordering::SeqCst) + 1 == *nth
    {
        eprintln!("VRS_CRASH_AT: stopping at {name}");
        std::process::abort();
    }
}
