//! `redis-benchmark --cluster` (Debian's redis-tools) as the server's ceiling on this machine.
//!
//! It has no duration flag, so the request count is sized from the rate seen in the previous
//! repetition (or a guess) to last about one measurement window. It prints throughput and p50 /
//! p99 (no p999). Its CPU time comes from `getrusage(RUSAGE_CHILDREN)` around the wait, its
//! peak RSS from polling `/proc/PID/status` (`VmHWM`) while it runs.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use slotcache_rt::NodeAddr;

use crate::worker::{CellResult, children_usage, procs_cpu};
use crate::workloads::{VALUE_LEN, Workload};

/// Whether `redis-benchmark` is on the `PATH`.
pub(crate) fn available() -> bool {
    Command::new("redis-benchmark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The longest a run may take before it is killed.
const LIMIT: Duration = Duration::from_secs(60);

/// One run: `-t get|set -c tasks [-P pipeline] -n requests -r keys -d 64`.
pub(crate) fn run(
    seed: &NodeAddr,
    workload: Workload,
    tasks: usize,
    pipeline: usize,
    requests: u64,
    keys: usize,
    server_pids: &[u32],
    stop: &AtomicBool,
) -> anyhow::Result<CellResult> {
    let test = match workload {
        Workload::Get => "get",
        Workload::Set => "set",
        _ => bail!("redis-benchmark runs GET and SET only"),
    };
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["--cluster", "-h", seed.host(), "-p", &seed.port().to_string(), "-t", test])
        .args(["-c", &tasks.to_string(), "-n", &requests.to_string(), "-r", &keys.to_string()])
        .args(["-d", &VALUE_LEN.to_string(), "-P", &pipeline.to_string(), "--csv"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (before, _) = children_usage();
    let srv0 = procs_cpu(server_pids);
    let t0 = Instant::now();
    let mut child = cmd.spawn().context("starting redis-benchmark")?;
    let pid = child.id();
    let mut hwm = 0;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        hwm = hwm.max(vm_hwm(pid));
        if t0.elapsed() > LIMIT || stop.load(Ordering::Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("redis-benchmark killed (ran past {LIMIT:?} or the run was interrupted)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let srv1 = procs_cpu(server_pids);
    let cpu = children_usage().0 - before;
    let mut out = String::new();
    child.stdout.take().context("stdout")?.read_to_string(&mut out)?;
    let mut err = String::new();
    child.stderr.take().context("stderr")?.read_to_string(&mut err)?;
    if !status.success() {
        bail!("redis-benchmark failed ({status}): {err}{out}");
    }
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    let line = out
        .lines()
        .find(|l| l.to_ascii_uppercase().starts_with(&format!("\"{}\"", test.to_ascii_uppercase())))
        .with_context(|| format!("no {test} line in redis-benchmark's output: {out}"))?;
    let f: Vec<f64> =
        line.split(',').skip(1).map(|s| s.trim_matches('"').parse().unwrap_or(f64::NAN)).collect();
    let rps = *f.first().context("rps")?;
    if rps.is_nan() || rps <= 0.0 {
        bail!("redis-benchmark reported no throughput: {line}");
    }
    let secs = requests as f64 / rps;
    Ok(CellResult {
        ops: requests,
        keys: requests,
        errors: 0,
        misses: 0,
        secs,
        p50_us: f.get(3).map(|ms| ms * 1000.0),
        p99_us: f.get(5).map(|ms| ms * 1000.0),
        p999_us: None,
        // The whole run's CPU (connecting included), over the whole run's requests.
        cpu_s: cpu,
        server_cpu_s: srv1 - srv0,
        rss_kib: hwm,
        rss_base_kib: 0,
    })
}

fn vm_hwm(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
