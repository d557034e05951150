//! One cell (client × workload × concurrency) measured in a process of its own, so its CPU time
//! and peak RSS are the client's alone. The parent starts `slotcache-bench worker ...` and reads
//! one `RESULT` line from its standard output.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures_util::future::{Either, join_all, select};
use hdrhistogram::Histogram;
use slotcache_rt::NodeAddr;
use slotcache_tests::conformance::Rt;

use crate::clients::{self, BenchClient, ClientKind};
use crate::workloads::{Keyspace, TaskState, Workload};

/// Everything a worker needs to run one cell.
#[derive(Clone, Debug)]
pub(crate) struct CellSpec {
    pub(crate) client: ClientKind,
    pub(crate) workload: Workload,
    pub(crate) tasks: usize,
    pub(crate) warmup: Duration,
    pub(crate) window: Duration,
    pub(crate) keys: usize,
    pub(crate) seeds: Vec<NodeAddr>,
    pub(crate) server_pids: Vec<u32>,
}

/// What a cell measured.
#[derive(Clone, Debug, Default)]
pub(crate) struct CellResult {
    /// Operations completed inside the window.
    pub(crate) ops: u64,
    /// Keys those operations touched (100 per MGET).
    pub(crate) keys: u64,
    /// Operations that failed.
    pub(crate) errors: u64,
    /// Reads that found nothing.
    pub(crate) misses: u64,
    /// The window's length, seconds.
    pub(crate) secs: f64,
    /// Latency percentiles, microseconds (`None` where the tool does not report one).
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    pub(crate) p999_us: Option<f64>,
    /// The client process's CPU (user + system) during the window, seconds.
    pub(crate) cpu_s: f64,
    /// The servers' CPU during the window, seconds (10 ms resolution).
    pub(crate) server_cpu_s: f64,
    /// The client process's peak RSS, KiB.
    pub(crate) rss_kib: u64,
    /// The worker's RSS before the client existed (key list, runtime), KiB.
    pub(crate) rss_base_kib: u64,
}

impl CellResult {
    /// Operations per second.
    pub(crate) fn throughput(&self) -> f64 {
        if self.secs > 0.0 { self.ops as f64 / self.secs } else { 0.0 }
    }

    /// One line for the parent to parse.
    pub(crate) fn to_line(&self) -> String {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        format!(
            "RESULT ops={} keys={} errors={} misses={} secs={:.6} p50={} p99={} p999={} cpu={:.6} srvcpu={:.3} rss={} rssbase={}",
            self.ops,
            self.keys,
            self.errors,
            self.misses,
            self.secs,
            opt(self.p50_us),
            opt(self.p99_us),
            opt(self.p999_us),
            self.cpu_s,
            self.server_cpu_s,
            self.rss_kib,
            self.rss_base_kib
        )
    }

    /// Parses [`CellResult::to_line`].
    pub(crate) fn parse_line(line: &str) -> anyhow::Result<Self> {
        let rest = line.strip_prefix("RESULT ").context("not a RESULT line")?;
        let mut r = Self::default();
        for kv in rest.split_whitespace() {
            let (k, v) = kv.split_once('=').context("key=value")?;
            let f = || -> anyhow::Result<f64> { Ok(v.parse::<f64>()?) };
            let o = || -> anyhow::Result<Option<f64>> { if v == "-" { Ok(None) } else { Ok(Some(f()?)) } };
            match k {
                "ops" => r.ops = v.parse()?,
                "keys" => r.keys = v.parse()?,
                "errors" => r.errors = v.parse()?,
                "misses" => r.misses = v.parse()?,
                "secs" => r.secs = f()?,
                "p50" => r.p50_us = o()?,
                "p99" => r.p99_us = o()?,
                "p999" => r.p999_us = o()?,
                "cpu" => r.cpu_s = f()?,
                "srvcpu" => r.server_cpu_s = f()?,
                "rss" => r.rss_kib = v.parse()?,
                "rssbase" => r.rss_base_kib = v.parse()?,
                _ => {}
            }
        }
        Ok(r)
    }
}

/// This process's CPU seconds (user + system, every thread) and peak RSS in KiB.
pub(crate) fn self_usage() -> (f64, u64) {
    usage(nix::sys::resource::UsageWho::RUSAGE_SELF)
}

/// CPU seconds and largest RSS (KiB) of the children this process has waited for.
pub(crate) fn children_usage() -> (f64, u64) {
    usage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
}

fn usage(who: nix::sys::resource::UsageWho) -> (f64, u64) {
    match nix::sys::resource::getrusage(who) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            (tv(u.user_time()) + tv(u.system_time()), u64::try_from(u.max_rss()).unwrap_or(0))
        }
        Err(_) => (0.0, 0),
    }
}

/// CPU seconds the given processes have used so far (from `/proc/PID/stat`, in 10 ms ticks).
pub(crate) fn procs_cpu(pids: &[u32]) -> f64 {
    // USER_HZ is 100 on Linux whatever the kernel's own tick.
    const TICKS: f64 = 100.0;
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|s| {
            // Fields after the command name (which may hold spaces) start after the last ')'.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the whole line: 11 and 12 of `rest`.
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / TICKS)
        })
        .sum()
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// How long tasks may take to finish their last operation after the window.
const DRAIN: Duration = Duration::from_secs(20);

/// Latencies a task buffers before merging them into the shared histogram under its lock.
const FLUSH: usize = 512;

fn new_histogram() -> Histogram<u64> {
    // 1 ns .. 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

fn flush(buf: &mut Vec<u64>, hist: &Mutex<Histogram<u64>>) {
    if let Ok(mut h) = hist.lock() {
        for &ns in buf.iter() {
            h.saturating_record(ns);
        }
    }
    buf.clear();
}

struct TaskOut {
    ops: u64,
    keys: u64,
    errors: u64,
    misses: u64,
}

async fn task_loop<C: BenchClient>(
    mut client: C,
    workload: Workload,
    ks: Arc<Keyspace>,
    phase: Arc<AtomicU8>,
    hist: Arc<Mutex<Histogram<u64>>>,
    seed: u64,
) -> TaskOut {
    let mut state = TaskState::new(seed);
    // One histogram per task would cost ~400 KiB each (1 ns .. 60 s at 3 digits): 100 MiB at
    // 256 tasks, which would swamp the clients' own memory. Buffer and merge instead.
    let mut buf = Vec::with_capacity(FLUSH);
    let mut out = TaskOut { ops: 0, keys: 0, errors: 0, misses: 0 };
    let mut last_error: Option<Instant> = None;
    loop {
        if phase.load(Ordering::Relaxed) == STOP {
            flush(&mut buf, &hist);
            return out;
        }
        let r = match workload.setup(&mut client, &ks, &mut state).await {
            Ok(()) => None,
            Err(e) => Some(Err(e)),
        };
        let t0 = Instant::now();
        let r = match r {
            Some(failed) => failed,
            None => workload.op(&mut client, &ks, &mut state).await,
        };
        let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if phase.load(Ordering::Relaxed) != MEASURE {
            continue;
        }
        match r {
            Ok(o) => {
                buf.push(ns.max(1));
                if buf.len() == FLUSH {
                    flush(&mut buf, &hist);
                }
                out.ops += 1;
                out.keys += o.keys;
                out.misses += o.misses;
            }
            Err(e) => {
                out.errors += 1;
                if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    eprintln!("slotcache-bench worker: operation failed: {e:#}");
                    last_error = Some(Instant::now());
                }
            }
        }
    }
}

/// This process's resident set now, KiB.
fn rss_now() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn drive<C: BenchClient>(
    rt: Rt,
    client: C,
    ks: Arc<Keyspace>,
    spec: &CellSpec,
) -> anyhow::Result<CellResult> {
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let hist = Arc::new(Mutex::new(new_histogram()));
    let handles: Vec<_> = (0..spec.tasks)
        .map(|i| {
            let task =
                task_loop(client.clone(), spec.workload, ks.clone(), phase.clone(), hist.clone(), i as u64);
            rt.spawn(task)
        })
        .collect();
    rt.sleep(spec.warmup).await;
    let (cpu0, _) = self_usage();
    let srv0 = procs_cpu(&spec.server_pids);
    let t0 = Instant::now();
    phase.store(MEASURE, Ordering::Relaxed);
    rt.sleep(spec.window).await;
    phase.store(STOP, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, _) = self_usage();
    let srv1 = procs_cpu(&spec.server_pids);
    let outs = match select(Box::pin(join_all(handles)), Box::pin(rt.sleep(DRAIN))).await {
        Either::Left((outs, _)) => outs,
        Either::Right(_) => bail!("tasks did not finish within {DRAIN:?} after the window"),
    };
    let (_, rss) = self_usage();
    let hist = hist.lock().map_err(|_| anyhow::anyhow!("a task panicked"))?.clone();
    let mut r = CellResult {
        secs,
        cpu_s: cpu1 - cpu0,
        server_cpu_s: srv1 - srv0,
        rss_kib: rss,
        ..CellResult::default()
    };
    for o in outs {
        r.ops += o.ops;
        r.keys += o.keys;
        r.errors += o.errors;
        r.misses += o.misses;
    }
    if r.ops > 0 {
        let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        r.p50_us = Some(us(0.50));
        r.p99_us = Some(us(0.99));
        r.p999_us = Some(us(0.999));
    }
    Ok(r)
}

/// Runs one cell in this process and returns its figures.
pub(crate) fn run(spec: &CellSpec) -> anyhow::Result<CellResult> {
    let ks = Arc::new(Keyspace::new(spec.keys));
    let base = rss_now();
    let r = match spec.client {
        ClientKind::SlotcacheTokio => cell_slotcache(Rt::Tokio, ks, spec),
        ClientKind::SlotcacheSmol => cell_slotcache(Rt::Smol, ks, spec),
        ClientKind::SlotcacheAsyncStd => cell_slotcache(Rt::AsyncStd, ks, spec),
        ClientKind::RedisRs => Rt::Tokio.block_on(async {
            let c = clients::redis_rs(&spec.seeds).await?;
            drive(Rt::Tokio, c, ks, spec).await
        }),
        ClientKind::Fred => Rt::Tokio.block_on(async {
            let c = clients::fred(&spec.seeds).await?;
            drive(Rt::Tokio, c, ks, spec).await
        }),
        ClientKind::RedisBenchmarkP16 | ClientKind::RedisBenchmarkP1 => {
            bail!("redis-benchmark runs as its own program, not in a worker")
        }
    };
    r.map(|r| CellResult { rss_base_kib: base, ..r })
}

fn cell_slotcache(rt: Rt, ks: Arc<Keyspace>, spec: &CellSpec) -> anyhow::Result<CellResult> {
    rt.block_on(async {
        let c = clients::slotcache(rt.runtime(), &spec.seeds, spec.workload.is_cache()).await?;
        let r = drive(rt, c.clone(), ks, spec).await;
        c.close().await;
        r
    })
}
