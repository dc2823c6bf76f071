//! The load generator: wrk's scripts, its runs and what is read from its
//! report.

use super::*;

/// One wrk run, from its own report and the script's `done` line.
#[derive(Debug, Clone, Default)]
pub(crate) struct WrkRun {
    pub(crate) requests: u64,
    pub(crate) secs: f64,
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) non_2xx: u64,
    /// connect, read, write, timeout.
    pub(crate) socket_errors: [u64; 4],
    /// Requests a thread could not make because its tickets ran out.
    pub(crate) exhausted: u64,
    pub(crate) output: String,
}

impl WrkRun {
    pub(crate) fn socket_error_total(&self) -> u64 {
        self.socket_errors.iter().sum()
    }
}

/// Fails with the way to get wrk when it is not installed.
pub(crate) fn require_wrk() -> anyhow::Result<()> {
    let found = Command::new("wrk")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wrk"))
        .unwrap_or(false);
    anyhow::ensure!(
        found,
        "the HTTP load generator wrk is not installed: apt-get install -y wrk"
    );
    Ok(())
}

/// The part of the script both runs share: thread numbering, and a last
/// line with exact figures (latencies in µs) for the bench to read.
pub(crate) const LUA_COMMON: &str = r#"
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

exhausted = 0

function done(summary, latency, requests)
  local ex = 0
  for _, t in ipairs(threads) do
    ex = ex + (tonumber(t:get("exhausted")) or 0)
  end
  io.write(string.format(
    "vrs-bench: requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d status_errors=%d exhausted=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status, ex))
end
"#;

/// Each request records a dose for the thread's next ticket (thread k of T
/// takes lines k+1, k+1+T, k+1+2T, … of the file, so no two requests share
/// one) under a key of its own (thread number and counter).
pub(crate) const LUA_RECORD: &str = r#"
local tickets_path = [==[@TICKETS@]==]
local token = "@TOKEN@"
local date = "@DATE@"
local nthreads = @THREADS@
local tickets = {}
local counter = 0

function init(args)
  for line in io.lines(tickets_path) do
    tickets[#tickets + 1] = line
  end
end

function request()
  local t = tickets[counter * nthreads + id + 1]
  counter = counter + 1
  if t == nil then
    exhausted = exhausted + 1
    wrk.thread:stop()
    return wrk.format("GET", "/health")
  end
  local body = '{"ticket":"' .. t .. '","administered_on":"' .. date ..
    '","product_code":"@PRODUCT@","lot_number":"@LOT@"}'
  return wrk.format("POST", "/api/v1/doses", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("bench-%d-%012d", id, counter),
  }, body)
end
"#;

/// Runs wrk and reads its report.
pub(super) fn run_wrk(
    connections: usize,
    seconds: u64,
    script: &Path,
    url: &str,
) -> anyhow::Result<WrkRun> {
    collect_wrk(spawn_wrk(connections, seconds, script, url)?)
}

/// Starts wrk; it runs for `seconds`, or until it is sent SIGINT (it then
/// stops and reports what it did).
pub(crate) fn spawn_wrk(
    connections: usize,
    seconds: u64,
    script: &Path,
    url: &str,
) -> anyhow::Result<std::process::Child> {
    Command::new("wrk")
        .arg(format!("-t{WRK_THREADS}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        // Far above any latency seen: a slow answer stays in the
        // percentiles instead of being dropped as a timeout.
        .arg("--timeout")
        .arg("30s")
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running wrk")
}

/// Waits for wrk to end and reads its report.
pub(crate) fn collect_wrk(child: std::process::Child) -> anyhow::Result<WrkRun> {
    let out = child.wait_with_output().context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "wrk failed ({}): {}{}",
        out.status,
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wrk(&text)
}
