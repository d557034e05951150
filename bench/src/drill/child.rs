//! Drill 7's client side: one client in a process of its own (`slotcache drill-worker`), so
//! its peak RSS is its own. It connects, says `READY`, starts an open-loop load on `GO` (a
//! request started every period, whatever the ones before are doing, each bounded by the
//! drill's guard), counts outcomes per shard in 10 ms bins of fixed size (the worker's own
//! memory does not grow with the run), samples its RSS every 100 ms, and on `STOP` (or the end
//! of its standard input) lets the requests in flight finish and prints what it counted.
//!
//! Protocol on standard output, one item a line: `READY`; then `BIN shard bin ok errors` for
//! every bin with something in it, `RSS ms KiB`, `HWM KiB`, `WRONG n`, `INFLIGHT n` (the most
//! requests in flight at once), `ERR n message`, `UNSCHED start_us len_us` for every time the
//! process did not run (see `ticker`), and `END`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use slotcache_core::NodeAddr;

use super::load;
use super::ticker::{Gap, Ticker};
use crate::clients::{self, BenchClient, Budgets};

/// Width of a bin.
pub(crate) const BIN_MS: u64 = 10;

/// What the parent tells a worker to do.
#[derive(Clone, Debug)]
pub struct ChildArgs {
    /// `slotcache`, `redis-rs` or `fred`.
    pub client: String,
    /// The seeds.
    pub seeds: Vec<NodeAddr>,
    /// A file of `shard<TAB>key` lines (every key preloaded).
    pub keys: PathBuf,
    /// A request is started every this many microseconds.
    pub every_us: u64,
    /// The drill's bound on one request, ms.
    pub guard_ms: u64,
    /// The client's request budget, ms.
    pub request_ms: u64,
    /// The client's connect budget, ms.
    pub connect_ms: u64,
    /// The longest run expected, ms (the bins are sized for it; later requests land in the
    /// last bin).
    pub max_ms: u64,
}

/// Shared between the request tasks: fixed-size counters.
struct Counts {
    /// Per shard, per bin: successes and errors.
    ok: Vec<Vec<AtomicU32>>,
    err: Vec<Vec<AtomicU32>>,
    wrong: AtomicU64,
    inflight: AtomicUsize,
    inflight_peak: AtomicUsize,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Counts {
    fn new(shards: usize, bins: usize) -> Self {
        let grid = || (0..shards).map(|_| (0..bins).map(|_| AtomicU32::new(0)).collect()).collect();
        Self {
            ok: grid(),
            err: grid(),
            wrong: AtomicU64::new(0),
            inflight: AtomicUsize::new(0),
            inflight_peak: AtomicUsize::new(0),
            errors: Mutex::new(BTreeMap::new()),
        }
    }

    fn bin(&self, t0: Instant) -> usize {
        let b = (t0.elapsed().as_millis() / u128::from(BIN_MS)) as usize;
        b.min(self.ok.first().map_or(1, Vec::len) - 1)
    }
}

/// RSS of this process now, KiB (`/proc/self/statm`).
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4
}

/// Peak RSS of this process, KiB (`VmHWM`).
fn hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn read_keys(path: &PathBuf) -> anyhow::Result<Vec<(u8, Bytes)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .map(|l| {
            let (s, k) = l.split_once('\t').context("want shard<TAB>key")?;
            Ok((s.parse()?, Bytes::from(k.to_owned())))
        })
        .collect()
}

/// One request, counted.
async fn one<C: BenchClient>(
    mut c: C,
    shard: u8,
    key: Bytes,
    seq: u64,
    guard: Duration,
    t0: Instant,
    n: Arc<Counts>,
) {
    let res = if seq.is_multiple_of(2) {
        let v = load::value(&key, seq);
        tokio::time::timeout(guard, c.set(&key, &v)).await.map(|r| r.map(|()| true))
    } else {
        tokio::time::timeout(guard, c.get_value(&key))
            .await
            .map(|r| r.map(|v| v.is_some_and(|v| load::seq_of(&key, &v).is_some())))
    };
    let b = n.bin(t0);
    let s = usize::from(shard);
    match res {
        Ok(Ok(true)) => {
            n.ok[s][b].fetch_add(1, Ordering::Relaxed);
        }
        Ok(Ok(false)) => {
            n.wrong.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Err(e)) => {
            n.err[s][b].fetch_add(1, Ordering::Relaxed);
            *n.errors.lock().unwrap_or_else(PoisonError::into_inner).entry(load::short(&e)).or_default() += 1;
        }
        Err(_) => {
            n.err[s][b].fetch_add(1, Ordering::Relaxed);
            *n.errors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry("the drill's guard timed the request out".into())
                .or_default() += 1;
        }
    }
    n.inflight.fetch_sub(1, Ordering::Relaxed);
}

/// The open loop, from `GO` to `stop`.
async fn drive<C: BenchClient>(
    c: C,
    keys: Vec<(u8, Bytes)>,
    a: &ChildArgs,
    stop: Arc<AtomicBool>,
    n: Arc<Counts>,
    t0: Instant,
) {
    let guard = Duration::from_millis(a.guard_ms);
    let mut tick = tokio::time::interval(Duration::from_micros(a.every_us.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut i: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let (shard, key) = keys[(i as usize) % keys.len()].clone();
        // Each key alternates SET and GET (`i / len` is its own count of requests).
        let seq = i / keys.len() as u64 + 1;
        i += 1;
        let now = n.inflight.fetch_add(1, Ordering::Relaxed) + 1;
        n.inflight_peak.fetch_max(now, Ordering::Relaxed);
        tokio::spawn(one(c.clone(), shard, key, seq, guard, t0, n.clone()));
    }
    // The requests in flight end within the guard.
    let deadline = Instant::now() + guard + Duration::from_secs(1);
    while n.inflight.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn print_results(
    out: &mut impl std::io::Write,
    n: &Counts,
    rss: &[(u64, u64)],
    unscheduled: &[Gap],
) -> std::io::Result<()> {
    for (s, (oks, errs)) in n.ok.iter().zip(&n.err).enumerate() {
        for (b, (ok, err)) in oks.iter().zip(errs).enumerate() {
            let (ok, err) = (ok.load(Ordering::Relaxed), err.load(Ordering::Relaxed));
            if ok + err > 0 {
                writeln!(out, "BIN {s} {b} {ok} {err}")?;
            }
        }
    }
    for (t, k) in rss {
        writeln!(out, "RSS {t} {k}")?;
    }
    writeln!(out, "HWM {}", hwm_kib())?;
    writeln!(out, "WRONG {}", n.wrong.load(Ordering::Relaxed))?;
    writeln!(out, "INFLIGHT {}", n.inflight_peak.load(Ordering::Relaxed))?;
    for (m, c) in n.errors.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        writeln!(out, "ERR {c} {}", m.replace('\n', " "))?;
    }
    for g in unscheduled {
        writeln!(out, "UNSCHED {} {}", g.start_us, g.len_us)?;
    }
    writeln!(out, "END")?;
    out.flush()
}

async fn serve<C: BenchClient>(c: C, keys: Vec<(u8, Bytes)>, a: &ChildArgs) -> anyhow::Result<()> {
    let shards = keys.iter().map(|k| usize::from(k.0) + 1).max().context("no keys")?;
    let bins = usize::try_from(a.max_ms / BIN_MS + 1)?;
    let n = Arc::new(Counts::new(shards, bins));
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY")?;
    out.flush()?;
    drop(out);
    // Standard input: `GO`, then `STOP` (or its end: the parent is gone).
    let (go_tx, go_rx) = tokio::sync::oneshot::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    std::thread::spawn(move || {
        let mut go = Some(go_tx);
        for line in std::io::stdin().lock().lines() {
            match line.as_deref().map(str::trim) {
                Ok("GO") => {
                    if let Some(g) = go.take() {
                        let _ = g.send(());
                    }
                }
                Ok("STOP") | Err(_) => break,
                Ok(_) => {}
            }
        }
        st.store(true, Ordering::Relaxed);
    });
    if go_rx.await.is_err() {
        bail!("standard input closed before GO");
    }
    let t0 = Instant::now();
    let ticker = Ticker::start(t0);
    let rss = Arc::new(Mutex::new(Vec::with_capacity(usize::try_from(a.max_ms / 100 + 2)?)));
    let (r2, s2) = (rss.clone(), stop.clone());
    let sampler = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        while !s2.load(Ordering::Relaxed) {
            tick.tick().await;
            let t = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
            r2.lock().unwrap_or_else(PoisonError::into_inner).push((t, rss_kib()));
        }
    });
    drive(c, keys, a, stop, n.clone(), t0).await;
    let _ = sampler.await;
    let unscheduled = ticker.stop();
    let rss = rss.lock().unwrap_or_else(PoisonError::into_inner).clone();
    print_results(&mut std::io::stdout().lock(), &n, &rss, &unscheduled)?;
    Ok(())
}

/// The `drill-worker` process: runs one client of drill 7 until told to stop.
///
/// # Errors
/// Bad arguments, the keys file, or the client could not connect.
pub fn child_main(a: &ChildArgs) -> anyhow::Result<()> {
    let keys = read_keys(&a.keys)?;
    if keys.is_empty() {
        bail!("no keys in {}", a.keys.display());
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let b = Budgets {
        request: Duration::from_millis(a.request_ms),
        connect: Duration::from_millis(a.connect_ms),
    };
    rt.block_on(async {
        let bound = Duration::from_secs(15);
        match a.client.as_str() {
            "slotcache" => {
                let rt = Arc::new(slotcache_tokio::TokioRuntime);
                let c = tokio::time::timeout(
                    bound,
                    clients::slotcache_budgets(rt, &a.seeds, "slotcache-drill", b),
                )
                .await
                .context("connect timed out")??;
                serve(c, keys, a).await
            }
            "redis-rs" => {
                let c = tokio::time::timeout(bound, clients::redis_rs_budgets(&a.seeds, b))
                    .await
                    .context("connect timed out")??;
                serve(c, keys, a).await
            }
            "fred" => {
                let c = tokio::time::timeout(bound, clients::fred_budgets(&a.seeds, b))
                    .await
                    .context("connect timed out")??;
                serve(c, keys, a).await
            }
            other => bail!("unknown client {other} (slotcache, redis-rs, fred)"),
        }
    })
}
