//! An operation-log line as the pages show it (the administrator's log
//! and the operator's), in Japan's time.

use crate::audit::Recorded;

pub struct LogLine {
    pub seq: i64,
    pub at: String,
    pub login_id: String,
    pub addr: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
}

pub fn log_line(r: &Recorded) -> LogLine {
    LogLine {
        seq: r.seq,
        at: crate::clock::jst(r.at),
        login_id: r.login_id.clone().unwrap_or_default(),
        addr: r.client_addr.clone().unwrap_or_default(),
        action: r.action.clone(),
        target: r.target.clone().unwrap_or_default(),
        outcome: r.outcome.clone(),
    }
}
