//! Concurrency on a real cluster and (but for the stopped node) on the in-memory provider
//! (`..._in_memory`), every runtime: the reference's Concurrency group (spec §14.2:
//! concurrent reads, writes, both, a hot key, invalidation racing reads and writes, and the
//! thundering herd, here with its exact bound: N concurrent `get`s with a slow loader load
//! once in a process, and once across two processes sharing a `cluster_lock`), the integration
//! suite's contention cases (§14.3: parallel set/get, a hot key with 50 writers,
//! `compute_if_absent` with 20 contenders: exactly one computes), and the ContextCancellation
//! group's Rust counterparts: an operation past its time budget is a typed `Timeout`, and
//! every operation of a closed provider fails with `Closed`. (Dropping a future mid-operation is
//! `cache_cancellation.rs`.)

mod cache_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::join_all;
use slotcache_rt::{Cache, CacheError, Compute, NamespaceOptions};
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, cluster, ns, on_both_providers, on_every_runtime, s, string_ns};

const LABEL: &str = "cache-conc";

on_both_providers!(
    concurrent_reads_and_writes_on,
    LABEL,
    concurrent_reads_and_writes,
    concurrent_reads_and_writes_in_memory
);
on_both_providers!(hot_key_on, LABEL, hot_key, hot_key_in_memory);
on_both_providers!(
    invalidation_races_reads_and_writes_on,
    LABEL,
    invalidation_races_reads_and_writes,
    invalidation_races_reads_and_writes_in_memory
);
on_both_providers!(compute_contention_on, LABEL, compute_contention, compute_contention_in_memory);
on_both_providers!(
    thundering_herd_one_load_in_process_on,
    LABEL,
    thundering_herd_one_load_in_process,
    thundering_herd_one_load_in_process_in_memory
);
on_both_providers!(
    thundering_herd_one_load_across_providers_on,
    LABEL,
    thundering_herd_one_load_across_providers,
    thundering_herd_one_load_across_providers_in_memory
);
on_both_providers!(
    closed_provider_fails_every_operation_on,
    LABEL,
    closed_provider_fails_every_operation,
    closed_provider_fails_every_operation_in_memory
);

/// ConcurrentReads, ConcurrentWrites, ConcurrentReadWrite (50 tasks each) and the integration
/// suite's parallel set/get of own keys: every value exact, no error.
fn concurrent_reads_and_writes_on(c: impl Backend) {
    on_every_runtime("concurrent_reads_and_writes", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "rw").await;
            let cache = string_ns(&p, &ns("rw", rt, "a"));
            for i in 0..20 {
                cache.set(&format!("r{i}"), &format!("v{i}"), &[]).await.expect("seed");
            }
            // 50 readers × 20 reads of shared keys.
            let readers = (0..50).map(|t| {
                let cache = cache.clone();
                rt.spawn(async move {
                    for i in 0..20 {
                        let k = format!("r{}", (i + t) % 20);
                        let want = format!("v{}", (i + t) % 20);
                        assert_eq!(cache.get_if_present(&k).await.expect("read"), Some(want));
                    }
                })
            });
            join_all(readers).await;
            // 50 writers × 20 distinct keys, each then read back by its writer; readers of the
            // seeded keys at the same time.
            let tasks = (0..50).map(|t| {
                let cache = cache.clone();
                rt.spawn(async move {
                    for i in 0..20 {
                        let k = format!("w{t}-{i}");
                        cache.set(&k, &format!("{t}/{i}"), &[]).await.expect("write");
                        assert_eq!(
                            cache.get_if_present(&k).await.expect("own read"),
                            Some(format!("{t}/{i}"))
                        );
                        let r = format!("r{i}");
                        assert_eq!(cache.get_if_present(&r).await.expect("read"), Some(format!("v{i}")));
                    }
                })
            });
            join_all(tasks).await;
            let keys: Vec<String> = (0..50).flat_map(|t| (0..20).map(move |i| format!("w{t}-{i}"))).collect();
            assert_eq!(cache.bulk_get(&keys).await.expect("bulk").len(), 1000);
            assert_eq!(cache.estimated_size().await.expect("size"), 1020);
            p.close().await;
        }
    });
}

/// ConcurrentHotKey and the integration suite's hot key with 50 writers: 100 tasks alternate
/// set and get on one key; every read finds one of the written values, and the key is still
/// there at the end.
fn hot_key_on(c: impl Backend) {
    on_every_runtime("hot_key", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "hot").await;
            let cache = string_ns(&p, &ns("hot", rt, "a"));
            cache.set(&s("hot"), &s("w-init"), &["hot"]).await.expect("seed");
            let tasks = (0..100).map(|t| {
                let cache = cache.clone();
                rt.spawn(async move {
                    for i in 0..10 {
                        if (t + i) % 2 == 0 {
                            cache.set(&s("hot"), &format!("w-{t}-{i}"), &["hot"]).await.expect("write");
                        } else {
                            let v =
                                cache.get_if_present(&s("hot")).await.expect("read").expect("never absent");
                            assert!(v.starts_with("w-"), "{v}");
                        }
                    }
                })
            });
            join_all(tasks).await;
            assert!(cache.get_if_present(&s("hot")).await.expect("read").is_some());
            assert_eq!(cache.invalidate_by_tags(&["hot"]).await.expect("by tag"), 1);
            p.close().await;
        }
    });
}

/// ConcurrentInvalidation: tagged sets, gets and `invalidate_by_tags` in parallel, no error;
/// once the writers are done, a last invalidation leaves nothing visible.
fn invalidation_races_reads_and_writes_on(c: impl Backend) {
    on_every_runtime("invalidation_races_reads_and_writes", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "inv-race").await;
            let cache = string_ns(&p, &ns("invrace", rt, "a"));
            let writers = (0..10).map(|t| {
                let cache = cache.clone();
                rt.spawn(async move {
                    for i in 0..20 {
                        cache
                            .set(&format!("k{}", (t * 7 + i) % 30), &format!("{t}-{i}"), &["race"])
                            .await
                            .expect("set");
                    }
                })
            });
            let readers = (0..10).map(|t| {
                let cache = cache.clone();
                rt.spawn(async move {
                    for i in 0..20 {
                        cache.get_if_present(&format!("k{}", (t + i) % 30)).await.expect("get");
                    }
                })
            });
            let invalidators = (0..5).map(|_| {
                let cache = cache.clone();
                rt.spawn(async move {
                    let mut total = 0;
                    for _ in 0..10 {
                        total += cache.invalidate_by_tags(&["race"]).await.expect("by tag");
                    }
                    total
                })
            });
            let (_, _, counts) =
                futures_util::join!(join_all(writers), join_all(readers), join_all(invalidators));
            assert!(counts.iter().sum::<u64>() <= 200, "never more than was written: {counts:?}");
            cache.invalidate_by_tags(&["race"]).await.expect("final");
            let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
            assert!(
                cache.bulk_get(&keys).await.expect("bulk").is_empty(),
                "nothing survives the last invalidation"
            );
            p.close().await;
        }
    });
}

/// `compute_if_absent` with 20 contenders on one key: exactly one computes and stores, every
/// contender gets that value; and 20 concurrent increments lose nothing.
fn compute_contention_on(c: impl Backend) {
    on_every_runtime("compute_contention", |rt: Rt| {
        let c = c.clone();
        async move {
            // 20 writers of one key: enough attempts that the increments all land (10, the
            // reference's default, can run out under this contention: `ComputeConflict`).
            let mut cfg = c.config("compute-race");
            cfg.max_compute_retries = 200;
            cfg.atomic_operation_timeout = Duration::from_secs(20);
            let p = c.provider_with(rt, cfg).await;
            let cache = string_ns(&p, &ns("cmprace", rt, "a"));
            let tasks = (0..20).map(|t| {
                let cache = cache.clone();
                rt.spawn(async move {
                    cache.compute_if_absent(&s("once"), || format!("by-{t}")).await.expect("cia")
                })
            });
            let results = join_all(tasks).await;
            assert_eq!(results.iter().filter(|(_, stored)| *stored).count(), 1, "{results:?}");
            let winner = &results.iter().find(|(_, stored)| *stored).expect("a winner").0;
            assert!(results.iter().all(|(v, _)| v == winner), "{results:?}");
            assert_eq!(cache.get_if_present(&s("once")).await.expect("get").as_ref(), Some(winner));

            let counter: Cache<String, u64> =
                p.create_namespace(&ns("cmprace", rt, "n"), NamespaceOptions::default()).expect("ns");
            let tasks = (0..20).map(|_| {
                let counter = counter.clone();
                rt.spawn(async move {
                    for _ in 0..3 {
                        counter
                            .compute(&s("n"), |v| Compute::Set(v.copied().unwrap_or(0) + 1))
                            .await
                            .expect("inc");
                    }
                })
            });
            join_all(tasks).await;
            assert_eq!(counter.get_if_present(&s("n")).await.expect("get"), Some(60));
            p.close().await;
        }
    });
}

async fn herd(
    rt: Rt,
    caches: Vec<Cache<String, String>>,
    key: &str,
    callers: usize,
    load_time: Duration,
) -> usize {
    let loads = Arc::new(AtomicUsize::new(0));
    let tasks = (0..callers).map(|i| {
        let cache = caches[i % caches.len()].clone();
        let loads = loads.clone();
        let key = s(key);
        rt.spawn(async move {
            cache
                .get(&key, move |k| async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    rt.sleep(load_time).await;
                    Ok(format!("loaded-{k}"))
                })
                .await
        })
    });
    for r in join_all(tasks).await {
        assert_eq!(r.expect("get"), format!("loaded-{key}"));
    }
    loads.load(Ordering::SeqCst)
}

/// ThunderingHerd, exact: 50 concurrent `get`s of a missing key with a 100 ms loader load it
/// exactly once (the reference allowed up to 5), several keys in a row.
fn thundering_herd_one_load_in_process_on(c: impl Backend) {
    on_every_runtime("thundering_herd_one_load_in_process", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "herd").await;
            let cache = string_ns(&p, &ns("herd", rt, "a"));
            for round in 0..5 {
                let loads =
                    herd(rt, vec![cache.clone()], &format!("k{round}"), 50, Duration::from_millis(100)).await;
                assert_eq!(loads, 1, "round {round}");
            }
            assert_eq!(cache.stats().loads, 5);
            p.close().await;
        }
    });
}

/// With `cluster_lock`, two providers (two processes, as far as the cache can tell) with 25
/// concurrent `get`s each load a missing key exactly once between them: the lock lives in the
/// key's slot, and the provider that did not load reads what the other stored.
fn thundering_herd_one_load_across_providers_on(c: impl Backend) {
    on_every_runtime("thundering_herd_one_load_across_providers", |rt: Rt| {
        let c = c.clone();
        async move {
            let name = ns("herdx", rt, "a");
            let mut caches = Vec::new();
            let mut providers = Vec::new();
            for i in 0..2 {
                let p = c.provider(rt, &format!("herdx-{i}")).await;
                let o = NamespaceOptions::<String, String> {
                    cluster_lock: Some(Duration::from_secs(2)),
                    ..Default::default()
                };
                caches.push(p.create_namespace(&name, o).expect("namespace"));
                providers.push(p);
            }
            for round in 0..5 {
                let loads =
                    herd(rt, caches.clone(), &format!("k{round}"), 50, Duration::from_millis(150)).await;
                assert_eq!(loads, 1, "round {round}: one load across both providers");
            }
            for p in providers {
                p.close().await;
            }
        }
    });
}

/// An operation past its time budget is a typed `Timeout` (the Rust counterpart of the
/// reference's expired-context cases): a stopped node, `operation_timeout` 100 ms. `get`
/// does not fail when the cache does: it loads, and counts the value it could not store.
#[test]
fn timeouts_are_typed_errors() {
    let c = cluster(LABEL);
    // A node is stopped: nothing else runs meanwhile.
    let _g = cache_support::exclusive();
    on_every_runtime("timeouts_are_typed_errors", |rt: Rt| {
        let c = c.clone();
        async move {
            let mut cfg = c.config("timeouts");
            cfg.operation_timeout = Duration::from_millis(100);
            let p = c.provider_with(rt, cfg).await;
            let name = ns("timeouts", rt, "a");
            let cache = string_ns(&p, &name);
            let key = s("slow");
            cache.set(&key, &s("v"), &[]).await.expect("set");
            let node = c.owner_of_key(format!("{name}:{key}").as_bytes()).expect("owner");
            let stopped = cache_support::stop(&c, node);
            let started = Instant::now();
            let e = cache.get_if_present(&key).await;
            assert!(matches!(e, Err(CacheError::Timeout { op: "get_if_present", timeout_ms: 100 })), "{e:?}");
            let e = cache.set(&key, &s("w"), &[]).await;
            assert!(matches!(e, Err(CacheError::Timeout { op: "set", .. })), "{e:?}");
            let v = cache.get(&key, |_| async { Ok(s("from the loader")) }).await.expect("get falls back");
            assert_eq!(v, "from the loader");
            assert!(started.elapsed() < Duration::from_millis(2000), "each failed within its budget");
            assert_eq!(cache.stats().store_failures, 1, "{:?}", cache.stats());
            drop(stopped);
            p.close().await;
        }
    });
}

/// Every operation of a closed provider fails with `Closed` (ContextCancellation: Close), and
/// no namespace can be created on it any more.
fn closed_provider_fails_every_operation_on(c: impl Backend) {
    on_every_runtime("closed_provider_fails_every_operation", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "closed").await;
            let cache = string_ns(&p, &ns("closed", rt, "a"));
            cache.set(&s("k"), &s("v"), &["t"]).await.expect("set");
            p.close().await;
            let k = s("k");
            let closed =
                |r: Result<(), CacheError>, what: &str| assert_eq!(r, Err(CacheError::Closed), "{what}");
            closed(cache.set(&k, &s("v"), &[]).await, "set");
            closed(cache.get_if_present(&k).await.map(drop), "get_if_present");
            closed(
                cache.get(&k, |_| async { Ok(s("x")) }).await.map(drop),
                "get (the loader's value cannot be stored, but a closed cache is an error)",
            );
            closed(cache.invalidate(&k).await.map(drop), "invalidate");
            closed(cache.invalidate_by_tags(&["t"]).await.map(drop), "invalidate_by_tags");
            closed(cache.invalidate_all().await.map(drop), "invalidate_all");
            closed(cache.get_entry(&k).await.map(drop), "get_entry");
            closed(cache.compute(&k, |_| Compute::Keep).await.map(drop), "compute");
            closed(cache.bulk_get(std::slice::from_ref(&k)).await.map(drop), "bulk_get");
            closed(cache.bulk_set(&[(k.clone(), s("v"))], &[]).await, "bulk_set");
            closed(cache.estimated_size().await.map(drop), "estimated_size");
            let first = cache.keys().next().await.expect("one item");
            closed(first.map(drop), "keys");
            let e = p.create_namespace::<String, String>("after-close", NamespaceOptions::default());
            assert!(matches!(e, Err(CacheError::Closed)), "{e:?}");
        }
    });
}
