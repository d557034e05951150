//! The durability cost (issue 18): `invalidate` and `invalidate_by_tags` with
//! `Durability::Primary` and with `Durability::Replicas` (the default: one replica, 250 ms) on
//! the drill cluster (every primary has a replica), slotcache only (redis-rs and fred have no
//! cache layer). Per operation and setting: a provider of its own, `TASKS` tasks for the
//! window, each writing what it then invalidates (untimed) and timing the invalidation alone.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use slotcache_core::cache::Durability;
use slotcache_core::cache::codec::Raw;
use slotcache_rt::cache::{Cache, NamespaceOptions, Provider, ProviderConfig};
use slotcache_tests::Cluster;

/// Tasks per cell.
pub(crate) const TASKS: usize = 4;
/// Entries each `invalidate_by_tags` removes.
const PER_TAG: usize = 4;

/// What is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// `invalidate` of one key (set just before).
    Invalidate,
    /// `invalidate_by_tags` of one tag holding 4 entries (set just before with one `bulk_set`).
    InvalidateByTags,
}

impl Op {
    const ALL: [Self; 2] = [Self::Invalidate, Self::InvalidateByTags];

    const fn name(self) -> &'static str {
        match self {
            Self::Invalidate => "`invalidate` (1 key)",
            Self::InvalidateByTags => "`invalidate_by_tags` (1 tag, 4 entries)",
        }
    }
}

/// One cell's figures.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    pub(crate) op: Op,
    pub(crate) durability: &'static str,
    pub(crate) ops: u64,
    pub(crate) errors: u64,
    pub(crate) secs: f64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
}

fn settings() -> [(&'static str, Durability); 2] {
    [
        ("`Primary`", Durability::Primary),
        ("`Replicas { replicas: 1, timeout: 250 ms }` (default)", Durability::default()),
    ]
}

async fn cell(
    seeds: &[String],
    op: Op,
    name: &'static str,
    d: Durability,
    window: Duration,
    tag: usize,
) -> anyhow::Result<Cell> {
    let mut cfg = ProviderConfig::new(seeds.iter().cloned());
    cfg.client_name = "slotcache-drill-durability".into();
    cfg.durability = d;
    let rt = Arc::new(slotcache_tokio::TokioRuntime);
    let provider = Provider::connect(rt, cfg).await.context("connecting the provider")?;
    let options = NamespaceOptions { codec: Arc::new(Raw), ..NamespaceOptions::<Bytes, Vec<u8>>::default() };
    let ns: Cache<Bytes, Vec<u8>> = provider.create_namespace(&format!("durability{tag}"), options)?;
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let ns = ns.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut i = 0u64;
            while Instant::now() < deadline {
                i += 1;
                let tagname = format!("t{t}:{i}");
                let keys: Vec<Bytes> = (0..PER_TAG).map(|k| Bytes::from(format!("k{t}:{i}:{k}"))).collect();
                let setup = match op {
                    Op::Invalidate => ns.set(&keys[0], &b"v".to_vec(), &[]).await,
                    Op::InvalidateByTags => {
                        let items: Vec<(Bytes, Vec<u8>)> =
                            keys.iter().map(|k| (k.clone(), b"v".to_vec())).collect();
                        ns.bulk_set(&items, &[tagname.as_str()]).await
                    }
                };
                if setup.is_err() {
                    errors += 1;
                    continue;
                }
                let start = Instant::now();
                let r = match op {
                    Op::Invalidate => ns.invalidate(&keys[0]).await.map(|_| ()),
                    Op::InvalidateByTags => ns.invalidate_by_tags(&[tagname.as_str()]).await.map(|_| ()),
                };
                match r {
                    Ok(()) => lat.push(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)),
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?;
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.context("a durability task panicked")?;
        errors += e;
        for l in lat {
            hist.record(l.max(1)).context("recording a latency")?;
        }
    }
    provider.close().await;
    Ok(Cell {
        op,
        durability: name,
        ops: hist.len(),
        errors,
        secs: window.as_secs_f64(),
        p50_us: hist.value_at_quantile(0.5),
        p99_us: hist.value_at_quantile(0.99),
    })
}

/// Measures every operation with both settings, `window` each, on `cluster`.
pub(crate) fn measure(
    cluster: &Cluster,
    window: Duration,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Cell>> {
    let seeds: Vec<String> = cluster.seeds().iter().map(|a| format!("{}:{}", a.host(), a.port())).collect();
    let mut out = Vec::new();
    let mut n = 0;
    for op in Op::ALL {
        for (name, d) in settings() {
            n += 1;
            let c = rt.block_on(async {
                tokio::time::timeout(window + Duration::from_secs(30), cell(&seeds, op, name, d, window, n))
                    .await
                    .context("the durability cell did not end")?
            })?;
            out.push(c);
        }
    }
    Ok(out)
}

/// The markdown table.
pub(crate) fn table(cells: &[Cell]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| operation | durability | invalidations | throughput | p50 | p99 | errors |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for c in cells {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0} /s | {:.2} ms | {:.2} ms | {} |",
            c.op.name(),
            c.durability,
            c.ops,
            c.ops as f64 / c.secs,
            c.p50_us as f64 / 1000.0,
            c.p99_us as f64 / 1000.0,
            c.errors
        );
    }
    s
}
