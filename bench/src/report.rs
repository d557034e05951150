//! Aggregation across repetitions, and the report: markdown, raw CSV and an SVG plot.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use crate::clients::ClientKind;
use crate::settings::{Cell, Settings};
use crate::worker::CellResult;
use crate::workloads::{MGET_KEYS, Workload};

/// Every repetition's figures, per cell.
pub(crate) type Samples = BTreeMap<Cell, Vec<CellResult>>;

/// Facts about the run.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub(crate) started: SystemTime,
    pub(crate) elapsed: Duration,
    pub(crate) load_start: [f64; 3],
    pub(crate) load_end: [f64; 3],
    pub(crate) settings: Settings,
    pub(crate) failures: Vec<String>,
    pub(crate) interrupted: bool,
    pub(crate) server_version: String,
    pub(crate) commit: String,
}

/// One cell's figures over its repetitions.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Agg {
    /// Operations per second: median, min, max.
    pub(crate) thr: f64,
    pub(crate) thr_min: f64,
    pub(crate) thr_max: f64,
    /// Median of each repetition's percentile, microseconds.
    pub(crate) p50: Option<f64>,
    pub(crate) p99: Option<f64>,
    pub(crate) p999: Option<f64>,
    /// Client CPU seconds per million operations (median).
    pub(crate) cpu_per_mop: f64,
    /// Server CPU seconds per million operations (median).
    pub(crate) srv_per_mop: f64,
    /// Largest peak RSS, MiB.
    pub(crate) rss_mib: f64,
    /// Peak RSS less the worker's own baseline (key list, runtime) before the client existed,
    /// MiB (largest of the repetitions).
    pub(crate) rss_client_mib: f64,
    pub(crate) errors: u64,
    pub(crate) misses: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn median_opt(v: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = v.flatten().collect();
    if v.is_empty() { None } else { Some(median(v)) }
}

/// Aggregates one cell's repetitions.
pub(crate) fn aggregate(rs: &[CellResult]) -> Agg {
    let thr: Vec<f64> = rs.iter().map(CellResult::throughput).collect();
    let per_mop = |x: f64, ops: u64| if ops > 0 { x / ops as f64 * 1e6 } else { f64::NAN };
    Agg {
        thr: median(thr.clone()),
        thr_min: thr.iter().copied().fold(f64::INFINITY, f64::min),
        thr_max: thr.iter().copied().fold(0.0, f64::max),
        p50: median_opt(rs.iter().map(|r| r.p50_us)),
        p99: median_opt(rs.iter().map(|r| r.p99_us)),
        p999: median_opt(rs.iter().map(|r| r.p999_us)),
        cpu_per_mop: median(rs.iter().map(|r| per_mop(r.cpu_s, r.ops)).collect()),
        srv_per_mop: median(rs.iter().map(|r| per_mop(r.server_cpu_s, r.ops)).collect()),
        rss_mib: rs.iter().map(|r| r.rss_kib as f64 / 1024.0).fold(0.0, f64::max),
        rss_client_mib: rs
            .iter()
            .map(|r| r.rss_kib.saturating_sub(r.rss_base_kib) as f64 / 1024.0)
            .fold(0.0, f64::max),
        errors: rs.iter().map(|r| r.errors).sum(),
        misses: rs.iter().map(|r| r.misses).sum(),
    }
}

/// `(year, month, day)` of a UNIX day number (Howard Hinnant's civil-from-days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD HH:MM UTC`.
pub(crate) fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", s / 3600, s % 3600 / 60)
}

pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn fmt_rate(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn fmt_us(x: Option<f64>) -> String {
    match x {
        None => "–".into(),
        Some(v) if v >= 10_000.0 => format!("{:.1} ms", v / 1000.0),
        Some(v) if v >= 1000.0 => format!("{:.2} ms", v / 1000.0),
        Some(v) => format!("{v:.0} µs"),
    }
}

fn fmt_ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 { format!("{:.2}×", a / b) } else { "–".into() }
}

/// Writes `results.md`, `raw.csv` and `throughput.svg` into `dir`; returns their paths.
pub(crate) fn write(dir: &Path, meta: &Meta, samples: &Samples) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let aggs: BTreeMap<Cell, Agg> = samples.iter().map(|(c, v)| (*c, aggregate(v))).collect();
    let md = dir.join("results.md");
    std::fs::write(&md, markdown(meta, &aggs)).with_context(|| format!("writing {}", md.display()))?;
    let csv = dir.join("raw.csv");
    std::fs::write(&csv, raw_csv(samples))?;
    let svg = dir.join("throughput.svg");
    std::fs::write(&svg, plot(meta, &aggs))?;
    Ok(vec![md, csv, svg])
}

fn raw_csv(samples: &Samples) -> String {
    let mut s = String::from(
        "workload,tasks,client,rep,ops,keys,errors,misses,secs,ops_per_s,p50_us,p99_us,p999_us,cpu_s,server_cpu_s,rss_kib\n",
    );
    let o = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.1}"));
    for (c, rs) in samples {
        for (i, r) in rs.iter().enumerate() {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{:.4},{:.1},{},{},{},{:.4},{:.3},{}",
                c.workload.name(),
                c.tasks,
                c.client.name(),
                i + 1,
                r.ops,
                r.keys,
                r.errors,
                r.misses,
                r.secs,
                r.throughput(),
                o(r.p50_us),
                o(r.p99_us),
                o(r.p999_us),
                r.cpu_s,
                r.server_cpu_s,
                r.rss_kib
            );
        }
    }
    s
}

fn get(aggs: &BTreeMap<Cell, Agg>, workload: Workload, tasks: usize, client: ClientKind) -> Option<Agg> {
    aggs.get(&Cell { workload, tasks, client }).copied()
}

fn markdown(meta: &Meta, aggs: &BTreeMap<Cell, Agg>) -> String {
    let s = &meta.settings;
    let mut m = String::new();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let _ = writeln!(m, "# slotcache benchmark: {}\n", timestamp(meta.started));
    if meta.interrupted {
        m.push_str("**Interrupted before the end: incomplete.**\n\n");
    }
    if s.quick {
        m.push_str("**Quick mode (CI smoke): windows far too short for the figures to mean anything.**\n\n");
    }
    let _ = writeln!(
        m,
        "- Machine: {cores} cores ({}), shared by the client under test and the 3 `valkey-server` \
         processes of the cluster (and by whatever else ran on the machine).",
        cpu_model()
    );
    let _ = writeln!(
        m,
        "- Load average (1/5/15 min) at the start {:.2} / {:.2} / {:.2}, at the end {:.2} / {:.2} / {:.2}.",
        meta.load_start[0],
        meta.load_start[1],
        meta.load_start[2],
        meta.load_end[0],
        meta.load_end[1],
        meta.load_end[2]
    );
    let _ = writeln!(
        m,
        "- Cluster: 3 masters, no replicas, `{}`, local loopback, started by `slotcache_tests::ClusterBuilder`.",
        meta.server_version
    );
    let _ = writeln!(
        m,
        "- Clients: slotcache `{}` (default config: 1 connection per node, RESP3); redis 1.8.1 \
         (cluster-async, tokio); fred 10.1.0 (tokio, clustered, default config); redis-benchmark 7.0 \
         (Debian redis-tools).",
        meta.commit
    );
    let _ = writeln!(
        m,
        "- {} repetitions of {:.1} s windows after {} ms of warm-up; {} keys preloaded; concurrency \
         {:?} tasks (redis-benchmark: {:?} connections, GET and SET only). Every cell in a fresh \
         process; order rotated per repetition. Whole run: {:.1} min.",
        s.reps,
        s.window.as_secs_f64(),
        s.warmup.as_millis(),
        s.keys,
        s.tasks,
        s.rb_tasks,
        meta.elapsed.as_secs_f64() / 60.0
    );
    m.push('\n');
    if !meta.failures.is_empty() {
        m.push_str("## Failed cells\n\n");
        for f in &meta.failures {
            let _ = writeln!(m, "- {f}");
        }
        m.push('\n');
    }

    // Ratios.
    let sc = ClientKind::SlotcacheTokio;
    m.push_str("## slotcache (tokio) against the others\n\nMedian throughput of slotcache-tokio divided by the other client's, same cell, same run.\n\n");
    m.push_str("| workload | tasks | vs redis-rs | vs fred | vs redis-benchmark -P16 | vs redis-benchmark | slotcache-smol vs redis-rs | slotcache-async-std vs redis-rs |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for &w in &s.workloads {
        for &t in &s.tasks {
            let Some(a) = get(aggs, w, t, sc) else { continue };
            if w.is_cache() {
                // slotcache only: its runtimes are compared in the workload's own table.
                continue;
            }
            let r =
                |c: ClientKind| get(aggs, w, t, c).map_or_else(|| "–".into(), |b| fmt_ratio(a.thr, b.thr));
            let o = |c: ClientKind| match (get(aggs, w, t, c), get(aggs, w, t, ClientKind::RedisRs)) {
                (Some(x), Some(y)) => fmt_ratio(x.thr, y.thr),
                _ => "–".into(),
            };
            let _ = writeln!(
                m,
                "| {} | {t} | {} | {} | {} | {} | {} | {} |",
                w.name(),
                r(ClientKind::RedisRs),
                r(ClientKind::Fred),
                r(ClientKind::RedisBenchmarkP16),
                r(ClientKind::RedisBenchmarkP1),
                o(ClientKind::SlotcacheSmol),
                o(ClientKind::SlotcacheAsyncStd),
            );
        }
    }
    m.push('\n');

    // Targets.
    m.push_str(
        "## Targets (goals from the issue, not tests)\n\n| target | measured | met |\n|---|---|---|\n",
    );
    let mut target = |name: &str, value: Option<(f64, String)>, goal: f64, higher_better: bool| {
        let (met, text) = match value {
            Some((v, text)) if v.is_finite() => {
                let ok = if higher_better { v >= goal } else { v <= goal };
                (if ok { "yes" } else { "**no**" }, text)
            }
            _ => ("–", "not measured".into()),
        };
        let _ = writeln!(m, "| {name} | {text} | {met} |");
    };
    let ratio = |w: Workload, t: usize, c: ClientKind| -> Option<(f64, String)> {
        let (a, b) = (get(aggs, w, t, sc)?, get(aggs, w, t, c)?);
        Some((a.thr / b.thr, format!("{} vs {} = {:.2}×", fmt_rate(a.thr), fmt_rate(b.thr), a.thr / b.thr)))
    };
    target("GET, 64 tasks ≥ 1.5× redis-rs", ratio(Workload::Get, 64, ClientKind::RedisRs), 1.5, true);
    target("GET, 64 tasks ≥ 1.2× fred", ratio(Workload::Get, 64, ClientKind::Fred), 1.2, true);
    target(
        "GET, 64 tasks ≥ 60% of redis-benchmark -P16",
        ratio(Workload::Get, 64, ClientKind::RedisBenchmarkP16),
        0.6,
        true,
    );
    let cpu = (|| {
        let (a, b) = (get(aggs, Workload::Get, 64, sc)?, get(aggs, Workload::Get, 64, ClientKind::RedisRs)?);
        let r = a.cpu_per_mop / b.cpu_per_mop;
        Some((r, format!("{:.2} s vs {:.2} s per 1M GETs = {r:.2}×", a.cpu_per_mop, b.cpu_per_mop)))
    })();
    target("client CPU per op ≤ 0.6× redis-rs (GET, 64 tasks)", cpu, 0.6, false);
    let p99 = (|| {
        let (a, b) = (get(aggs, Workload::Get, 64, sc)?, get(aggs, Workload::Get, 64, ClientKind::RedisRs)?);
        let (x, y) = (a.p99?, b.p99?);
        Some((x / y, format!("{} vs {} = {:.2}×", fmt_us(Some(x)), fmt_us(Some(y)), x / y)))
    })();
    target("p99 at 64 tasks ≤ redis-rs (GET)", p99, 1.0, false);
    target(
        "MGET of 100 keys ≥ 1.5× redis-rs (64 tasks)",
        ratio(Workload::Mget, 64, ClientKind::RedisRs),
        1.5,
        true,
    );
    m.push('\n');

    // Full tables.
    for &w in &s.workloads {
        let _ = writeln!(m, "## {}\n", w.title());
        let unit = if w == Workload::Mget { "MGETs/s" } else { "ops/s" };
        let _ = writeln!(
            m,
            "| tasks | client | {unit} (median) | min – max | p50 | p99 | p99.9 | client CPU s / 1M ops | server CPU s / 1M ops | peak RSS MiB (over baseline) |{}\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|{}",
            if w == Workload::Mget { " keys/s |" } else { "" },
            if w == Workload::Mget { "---:|" } else { "" }
        );
        for &t in s.tasks.iter() {
            for c in ClientKind::ALL {
                let Some(a) = get(aggs, w, t, c) else { continue };
                let flag = if a.errors > 0 || a.misses > 0 {
                    format!(" ({} errors, {} misses)", a.errors, a.misses)
                } else {
                    String::new()
                };
                let _ = write!(
                    m,
                    "| {t} | {}{flag} | {} | {} – {} | {} | {} | {} | {:.2} | {:.2} | {:.1} ({:.1}) |",
                    c.name(),
                    fmt_rate(a.thr),
                    fmt_rate(a.thr_min),
                    fmt_rate(a.thr_max),
                    fmt_us(a.p50),
                    fmt_us(a.p99),
                    fmt_us(a.p999),
                    a.cpu_per_mop,
                    a.srv_per_mop,
                    a.rss_mib,
                    a.rss_client_mib
                );
                if w == Workload::Mget {
                    let _ = write!(m, " {} |", fmt_rate(a.thr * MGET_KEYS as f64));
                }
                m.push('\n');
            }
        }
        m.push('\n');
    }
    m.push_str(NOTES);
    m
}

const NOTES: &str = "## How it was measured\n\n\
- One process per cell: `slotcache-bench worker` connects its client, starts N tasks that each run \
one operation after another (closed loop), warms up, then counts the operations that complete in the \
window. Latency is per operation (`hdrhistogram`, 3 significant digits), percentiles are the median \
of the repetitions' percentiles. Client CPU is `getrusage(RUSAGE_SELF)` user+system over the window \
divided by the operations; server CPU is the 3 servers' `/proc/PID/stat` ticks (10 ms resolution) \
over the same window. Peak RSS is the worker's `ru_maxrss`; in brackets, that less the worker's RSS \
just before the client was created (key list, histogram), which is the same for every client. \
redis-benchmark's is its own `VmHWM`.\n\
- Keys: `key:` + 12 digits (16 bytes), drawn uniformly from the preloaded key space; values 64 \
bytes. GETs hit. The mix draws GET or SET per operation (90/10).\n\
- MGET: 100 random keys, so about 100 slots. slotcache splits per slot itself and writes each \
node's part in one go; redis-rs gets one `MGET` command and splits it with its own cluster routing \
(its users' way); fred does not split, so its cell groups keys by slot (CRC16) and sends the \
per-slot MGETs in one fred pipeline, then puts the values back in order (its users' way).\n\
- Cache workloads (slotcache only, the others have no cache layer): a provider with default \
settings and a namespace of raw byte values. The tagged set picks two different tags of 1,000 per \
write (a SET with the entry's tag tokens and the two tag memberships). The invalidation cycle: each \
task writes 4 entries of its own under a tag of its own with one `bulk_set` (untimed), then \
`invalidate_by_tags` of that tag (timed); a count other than 4 would show as misses. The bench \
cluster has no replicas, so the durability `WAIT` is skipped (what it costs with a replica: \
`slotcache drill --drills durability`, in drills/results/README.md).\n\
- redis-rs shares one `ClusterConnection` (multiplexed connection per node) among the tasks; fred \
uses one client (auto-pipelining, as it ships); slotcache uses one `Client` (1 connection per node).\n\
- redis-benchmark: `--cluster -t get|set -c CONNS -d 64 -r KEYS --csv`, with `-P 16` and \
without; run at the connection counts listed above only, one connection per task of the other \
clients (it has no duration flag: its request count is sized from the previous repetition's \
rate). Its keys carry a per-node hash tag, so they were written once before \
the runs. Its CPU is `RUSAGE_CHILDREN` around the run (start-up included), its RSS `VmHWM`; it \
reports no p99.9. With `-P 16` it is the server's ceiling on this machine, not a client to beat.\n\
- Client and servers share the cores: a client that spends less CPU leaves more to the servers, \
which is part of what is measured.\n\
- Runtimes: every tokio client (slotcache-tokio, redis-rs, fred) on the same multi-thread runtime, 2 \
workers (as in the conformance suite); slotcache-smol on smol's global executor (default threads); slotcache-async-std on \
async-std's default executor.\n";

// ---------------------------------------------------------------------------------------------
// The plot.

const COLORS: [(ClientKind, &str); 7] = [
    (ClientKind::SlotcacheTokio, "#1f4e9c"),
    (ClientKind::SlotcacheSmol, "#4f8fd6"),
    (ClientKind::SlotcacheAsyncStd, "#9cc3ec"),
    (ClientKind::RedisRs, "#c62828"),
    (ClientKind::Fred, "#ef8a17"),
    (ClientKind::RedisBenchmarkP16, "#2e7d32"),
    (ClientKind::RedisBenchmarkP1, "#81c784"),
];

fn color(c: ClientKind) -> &'static str {
    COLORS.iter().find(|(k, _)| *k == c).map_or("#888", |(_, col)| col)
}

/// Throughput per workload (one panel each), bars per client and concurrency, log scale, min–max
/// whiskers; redis-benchmark as dashed lines.
fn plot(meta: &Meta, aggs: &BTreeMap<Cell, Agg>) -> String {
    let s = &meta.settings;
    let (pw, ph) = (560.0_f64, 330.0_f64);
    let cols = 2usize;
    let rows = s.workloads.len().div_ceil(cols).max(1);
    let (w, h) = (pw * cols as f64 + 40.0, ph * rows as f64 + 110.0);
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let _ = writeln!(
        o,
        r#"<text x="20" y="24" font-size="16" font-weight="bold">Throughput, same 3-master cluster, one run ({}; {cores} cores shared by client and servers; load {:.2} → {:.2})</text>"#,
        timestamp(meta.started),
        meta.load_start[0],
        meta.load_end[0]
    );
    let _ = writeln!(
        o,
        r##"<text x="20" y="42" fill="#555">median of {} × {:.1} s, whiskers min–max; log scale; MGET counted in MGETs (×100 keys)</text>"##,
        s.reps,
        s.window.as_secs_f64()
    );
    // Legend.
    let mut lx = 20.0;
    for (c, col) in COLORS {
        if !aggs.keys().any(|k| k.client == c) {
            continue;
        }
        if c.is_redis_benchmark() {
            let _ = writeln!(
                o,
                r#"<line x1="{lx}" y1="60" x2="{}" y2="60" stroke="{col}" stroke-width="2" stroke-dasharray="5,3"/>"#,
                lx + 18.0
            );
        } else {
            let _ = writeln!(o, r#"<rect x="{lx}" y="54" width="18" height="12" fill="{col}"/>"#);
        }
        let _ = writeln!(o, r#"<text x="{}" y="65">{}</text>"#, lx + 22.0, c.name());
        lx += 30.0 + 7.0 * c.name().len() as f64;
    }
    let bar_clients: Vec<ClientKind> = ClientKind::ALL
        .into_iter()
        .filter(|c| !c.is_redis_benchmark() && aggs.keys().any(|k| k.client == *c))
        .collect();
    for (i, &wl) in s.workloads.iter().enumerate() {
        let x0 = 20.0 + (i % cols) as f64 * pw;
        let y0 = 80.0 + (i / cols) as f64 * ph;
        let (left, top, right, bottom) = (x0 + 55.0, y0 + 30.0, x0 + pw - 15.0, y0 + ph - 40.0);
        let vals: Vec<f64> = aggs
            .iter()
            .filter(|(k, _)| k.workload == wl)
            .flat_map(|(_, a)| [a.thr_min, a.thr_max])
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
        let hi = vals.iter().copied().fold(0.0, f64::max).max(10.0);
        let (llo, lhi) = (lo.log10().floor(), (hi.log10() + 0.05).ceil());
        let y = |v: f64| bottom - (v.max(1.0).log10() - llo) / (lhi - llo).max(1e-9) * (bottom - top);
        let _ = writeln!(
            o,
            r#"<text x="{}" y="{}" font-weight="bold">{}</text>"#,
            left,
            y0 + 18.0,
            esc(wl.title())
        );
        // Grid.
        let mut e = llo;
        while e <= lhi + 1e-9 {
            for m in [1.0, 2.0, 5.0] {
                let v = 10f64.powf(e) * m;
                if v > 10f64.powf(lhi) + 1e-9 {
                    continue;
                }
                let yy = y(v);
                let (stroke, label) = if m == 1.0 { ("#ccc", true) } else { ("#eee", false) };
                let _ = writeln!(
                    o,
                    r#"<line x1="{left}" y1="{yy:.1}" x2="{right}" y2="{yy:.1}" stroke="{stroke}"/>"#
                );
                if label {
                    let _ = writeln!(
                        o,
                        r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
                        left - 5.0,
                        yy + 4.0,
                        fmt_rate(v)
                    );
                }
            }
            e += 1.0;
        }
        let _ =
            writeln!(o, r##"<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/>"##);
        let _ = writeln!(o, r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#333"/>"##);
        // Bars.
        let groups = s.tasks.len().max(1) as f64;
        let gw = (right - left) / groups;
        let bw = (gw * 0.8) / bar_clients.len().max(1) as f64;
        for (gi, &t) in s.tasks.iter().enumerate() {
            let gx = left + gi as f64 * gw + gw * 0.1;
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{t} task{}</text>"#,
                gx + gw * 0.4,
                bottom + 16.0,
                if t == 1 { "" } else { "s" }
            );
            for (ci, &c) in bar_clients.iter().enumerate() {
                let Some(a) = get(aggs, wl, t, c) else { continue };
                if !a.thr.is_finite() || a.thr <= 0.0 {
                    continue;
                }
                let bx = gx + ci as f64 * bw;
                let by = y(a.thr);
                let _ = writeln!(
                    o,
                    r#"<rect x="{bx:.1}" y="{by:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {} x{t}: {}/s</title></rect>"#,
                    (bw - 1.0).max(1.0),
                    (bottom - by).max(0.0),
                    color(c),
                    c.name(),
                    wl.name(),
                    fmt_rate(a.thr)
                );
                let cx = bx + bw / 2.0;
                let _ = writeln!(
                    o,
                    r##"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="#222"/>"##,
                    y(a.thr_min),
                    y(a.thr_max)
                );
            }
        }
        // redis-benchmark lines.
        for c in [ClientKind::RedisBenchmarkP16, ClientKind::RedisBenchmarkP1] {
            for &t in &s.rb_tasks {
                let Some(a) = get(aggs, wl, t, c) else { continue };
                let yy = y(a.thr);
                let _ = writeln!(
                    o,
                    r#"<line x1="{left}" y1="{yy:.1}" x2="{right}" y2="{yy:.1}" stroke="{}" stroke-width="2" stroke-dasharray="5,3"/>"#,
                    color(c)
                );
                let _ = writeln!(
                    o,
                    r#"<text x="{}" y="{:.1}" text-anchor="end" fill="{}">{} ({t} conns): {}/s</text>"#,
                    right - 4.0,
                    yy - 4.0,
                    color(c),
                    c.name(),
                    fmt_rate(a.thr)
                );
            }
        }
    }
    o.push_str("</svg>\n");
    o
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_723), (2024, 1, 1));
        assert_eq!(civil(20_513), (2026, 3, 1));
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn result_lines_round_trip() {
        let r = CellResult {
            ops: 10,
            keys: 1000,
            errors: 1,
            misses: 2,
            secs: 2.5,
            p50_us: Some(100.0),
            p99_us: None,
            p999_us: Some(3.5),
            cpu_s: 0.25,
            server_cpu_s: 0.5,
            rss_kib: 1234,
            rss_base_kib: 1000,
        };
        let back = CellResult::parse_line(&r.to_line()).expect("parse");
        assert_eq!((back.ops, back.keys, back.errors, back.misses, back.rss_kib), (10, 1000, 1, 2, 1234));
        assert_eq!(back.rss_base_kib, 1000);
        assert_eq!((back.p50_us, back.p99_us, back.p999_us), (Some(100.0), None, Some(3.5)));
    }
}
