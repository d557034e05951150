//! Cancellation safety on a real cluster and on the in-memory provider (`..._in_memory`), every
//! runtime: futures of `set` with tags, `bulk_set`, `invalidate_by_tags`, `invalidate` and
//! `compute` are dropped at random small delays (a timeout racing the operation), many times,
//! from several tasks at once. Afterwards every key either reads a complete, valid value or
//! misses; a tag invalidation still finds every visible tagged value (so nothing became
//! unreachable by its tags); and a counter incremented by dropped computes counts at least
//! every increment that returned and at most every one that started.
//!
//! Dropping a future is how a Rust caller cancels (the reference's `ctx` cancellation, spec
//! §14.2 ContextCancellation). The random delays are seeded; a failing run prints its seed
//! (`SLOTCACHE_TEST_SEED` replays it).

mod cache_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use slotcache_rt::{Cache, CacheError, Cmd, Compute, NamespaceOptions, Provider};
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, Rng, ns, on_both_providers, on_every_runtime, within};

const LABEL: &str = "cache-cancel";

on_both_providers!(
    dropped_operations_leave_no_corrupt_entry_on,
    LABEL,
    dropped_operations_leave_no_corrupt_entry,
    dropped_operations_leave_no_corrupt_entry_in_memory
);
const KEYS: u64 = 40;
const TAGS: [&str; 3] = ["c0", "c1", "c2"];
const ROUNDS: usize = 4;
const WORKERS: usize = 4;
const OPS: usize = 60;

/// A value that knows whether it is whole: its key, a body of variable length, and a checksum
/// over both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Checked {
    key: String,
    n: u64,
    body: String,
    sum: u64,
}

fn checksum(key: &str, n: u64, body: &str) -> u64 {
    key.bytes()
        .chain(n.to_le_bytes())
        .chain(body.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn checked(key: &str, n: u64, len: usize) -> Checked {
    let body: String = (0..len).map(|i| char::from(b'a' + ((i as u64 + n) % 26) as u8)).collect();
    Checked { key: key.to_owned(), n, sum: checksum(key, n, &body), body }
}

fn is_whole(key: &str, v: &Checked) -> bool {
    v.key == key && v.sum == checksum(&v.key, v.n, &v.body)
}

fn key(i: u64) -> String {
    format!("k{i}")
}

fn tags(rng: &mut Rng) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = TAGS.iter().copied().filter(|_| rng.below(2) == 0).collect();
    if out.is_empty() {
        out.push(TAGS[rng.below(3) as usize]);
    }
    out
}

/// One worker: random operations, each raced against a random timeout of up to 5 ms.
async fn chaos(
    rt: Rt,
    cache: Cache<String, Checked>,
    counter: Cache<String, u64>,
    mut rng: Rng,
    ops: usize,
    stats: Arc<[AtomicU64; 3]>,
) {
    for _ in 0..ops {
        let delay = Duration::from_micros(rng.below(5_000));
        let k = key(rng.below(KEYS));
        let len = rng.below(4_096) as usize;
        let n = rng.next_u64() % 1_000_000;
        let ts = tags(&mut rng);
        let done = match rng.below(6) {
            0 => within(rt, delay, cache.set(&k, &checked(&k, n, len), &ts)).await.map(|r| r.map(drop)),
            1 => {
                let items: Vec<(String, Checked)> = (0..5)
                    .map(|j| {
                        let k = key((n + j * 7) % KEYS);
                        let v = checked(&k, n + j, len / 2);
                        (k, v)
                    })
                    .collect();
                within(rt, delay, cache.bulk_set(&items, &ts)).await
            }
            2 => within(rt, delay, cache.invalidate_by_tags(&ts)).await.map(|r| r.map(drop)),
            3 => within(rt, delay, cache.invalidate(&k)).await.map(|r| r.map(drop)),
            4 => {
                let op = cache.compute(&k, |cur| match cur {
                    Some(v) => Compute::Set(checked(&k, v.n + 1, len)),
                    None => Compute::Set(checked(&k, n, len)),
                });
                within(rt, delay, op).await.map(|r| r.map(drop))
            }
            _ => {
                let counter_key = "counter".to_owned();
                stats[0].fetch_add(1, Ordering::SeqCst);
                let op = counter.compute(&counter_key, |v| Compute::Set(v.copied().unwrap_or(0) + 1));
                let r = within(rt, delay, op).await;
                if let Some(Ok(_)) = r {
                    stats[1].fetch_add(1, Ordering::SeqCst);
                }
                r.map(|r| r.map(drop))
            }
        };
        match done {
            None => {
                stats[2].fetch_add(1, Ordering::SeqCst);
            }
            Some(Ok(())) => {}
            // Contention between the workers can exhaust compute's attempts; nothing else may
            // fail.
            Some(Err(CacheError::ComputeConflict { .. })) => {}
            Some(Err(e)) => panic!("{}: an operation that was not dropped failed: {e}", rt.name()),
        }
    }
}

/// Waits until every command the dropped futures handed to the client has been answered:
/// a `PING` to every primary goes after them on the same connections.
async fn settle(p: &Provider) {
    for (node, r) in p.client().all_primaries(Cmd::new("PING")).await.expect("barrier") {
        r.unwrap_or_else(|e| panic!("{node}: {e}"));
    }
}

fn dropped_operations_leave_no_corrupt_entry_on(c: impl Backend) {
    on_every_runtime("dropped_operations_leave_no_corrupt_entry", |rt: Rt| {
        let c = c.clone();
        async move {
            let mut rng = Rng::new(&format!("cancellation on {}", rt.name()));
            let p = c.provider(rt, "cancel").await;
            let cache: Cache<String, Checked> =
                p.create_namespace(&ns("cancel", rt, "v"), NamespaceOptions::default()).expect("namespace");
            let counter: Cache<String, u64> =
                p.create_namespace(&ns("cancel", rt, "n"), NamespaceOptions::default()).expect("namespace");
            let stats = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
            for round in 0..ROUNDS {
                let workers: Vec<_> = (0..WORKERS)
                    .map(|_| {
                        let worker_rng = Rng::seeded(rng.next_u64());
                        rt.spawn(chaos(rt, cache.clone(), counter.clone(), worker_rng, OPS, stats.clone()))
                    })
                    .collect();
                futures_util::future::join_all(workers).await;
                settle(&p).await;

                // Every key: a whole value of its own, or a miss.
                let mut visible_tagged = 0;
                for i in 0..KEYS {
                    let k = key(i);
                    match cache.get_entry(&k).await {
                        Ok(Some(e)) => {
                            assert!(is_whole(&k, &e.value), "round {round}: {k} holds {:?}", e.value);
                            if !e.tags.is_empty() {
                                visible_tagged += 1;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => panic!("round {round}: {k}: {e}"),
                    }
                }
                // Every visible tagged value is still found by its tags: invalidating them
                // leaves none visible. (Usually each is also deleted and counted; an entry
                // written while an invalidation of the same key removed its old memberships
                // can lose its own: it is then invalidated by its tag's token but neither
                // deleted nor counted, see docs/consistency.md, guarantee 3.)
                let removed = cache.invalidate_by_tags(&TAGS).await.expect("invalidate all tags");
                if removed < visible_tagged {
                    eprintln!(
                        "[cancel] round {round}: {visible_tagged} visible, {removed} deleted by the tags"
                    );
                }
                for i in 0..KEYS {
                    let k = key(i);
                    if let Some(e) = cache.get_entry(&k).await.expect("entry") {
                        assert!(
                            e.tags.is_empty(),
                            "round {round}: {k} survived its tags' invalidation: {e:?}"
                        );
                        assert!(is_whole(&k, &e.value));
                    }
                }
                // The counter: every increment that returned landed; none landed twice.
                let value =
                    counter.get_if_present(&"counter".to_owned()).await.expect("counter").unwrap_or(0);
                let (started, finished) = (stats[0].load(Ordering::SeqCst), stats[1].load(Ordering::SeqCst));
                assert!(
                    finished <= value && value <= started,
                    "round {round}: {finished} <= {value} <= {started}"
                );
            }
            let dropped = stats[2].load(Ordering::SeqCst);
            let total = (ROUNDS * WORKERS * OPS) as u64;
            eprintln!("[cancel] {}: {dropped} of {total} operations dropped mid-flight", rt.name());
            assert!(dropped >= total / 10, "the delays must cut operations short: {dropped}");
            assert!(dropped <= total * 9 / 10, "and let some finish: {dropped}");
            p.close().await;
        }
    });
}
