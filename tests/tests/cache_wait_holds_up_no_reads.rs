//! The replica `WAIT` of an invalidation holds up no other request (real cluster, 3 masters + 1
//! replica each, one connection per node, every runtime).
//!
//! With every replica stopped (`SIGSTOP`, about a second per runtime), each `invalidate` waits
//! its full `WAIT` timeout (250 ms) and fails with `NotDurable`. Meanwhile 4 tasks read 30 keys
//! spread over every shard. The invalidation and its `WAIT` run on each node's blocking lane (a
//! connection of their own), so no read waits behind the `WAIT`: the slowest read stays far
//! below the 250 ms it would take on a shared connection.

mod cache_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use slotcache_rt::CacheError;
use slotcache_tests::conformance::Rt;

use cache_support::{cluster, config, exclusive, ns, on_every_runtime, roles, s, stop, string_ns};

#[test]
fn a_waiting_invalidation_holds_up_no_read() {
    let c = cluster("cache-wait-lane");
    let _g = exclusive();
    let (_, replicas) = roles(&c);
    on_every_runtime("a_waiting_invalidation_holds_up_no_read", |rt: Rt| {
        let c = c.clone();
        let replicas = replicas.clone();
        async move {
            let p = rt.name();
            let provider = slotcache_rt::Provider::connect(rt.runtime(), config(&c, "wait-lane"))
                .await
                .expect("provider");
            let cache = string_ns(&provider, &ns("wait-lane", rt, "a"));
            let keys: Vec<String> = (0..30).map(|i| format!("k{i}")).collect();
            for k in &keys {
                cache.set(k, &s("v"), &[]).await.expect("set");
            }
            let stopped: Vec<_> = replicas.iter().map(|&r| stop(&c, r)).collect();
            let done = Arc::new(AtomicBool::new(false));
            let mut readers = Vec::new();
            for t in 0..4 {
                let (cache, keys, done) = (cache.clone(), keys.clone(), done.clone());
                readers.push(rt.spawn(async move {
                    let (mut slowest, mut reads) = (Duration::ZERO, 0u64);
                    let mut i = t;
                    while !done.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        cache.get_if_present(&keys[i % keys.len()]).await.expect("read");
                        slowest = slowest.max(started.elapsed());
                        reads += 1;
                        i += 1;
                    }
                    (slowest, reads)
                }));
            }
            // One invalidation per shard's worth of keys: each waits for a replica that cannot answer.
            let mut waited = Vec::new();
            for k in ["k0", "k1", "k2", "k3"] {
                let started = Instant::now();
                let e = cache.invalidate(&s(k)).await.expect_err("no replica can acknowledge");
                assert!(matches!(e, CacheError::NotDurable { .. }), "{p}: {e:?}");
                waited.push(started.elapsed());
            }
            done.store(true, Ordering::Relaxed);
            let (mut slowest, mut reads) = (Duration::ZERO, 0);
            for r in readers {
                let (s, n) = r.await;
                slowest = slowest.max(s);
                reads += n;
            }
            drop(stopped);
            eprintln!(
                "[figure] wait lane/{p}: invalidations waited {waited:?}; {reads} reads meanwhile, slowest {slowest:?}"
            );
            for w in &waited {
                assert!(*w >= Duration::from_millis(200), "{p}: the WAIT ran its timeout: {waited:?}");
            }
            assert!(slowest < Duration::from_millis(120), "{p}: a read waited behind a WAIT: {slowest:?}");
            assert!(reads > 100, "{p}: the readers ran: {reads}");
            provider.close().await;
        }
    });
}
