//! `get` falls back to its loader when the read fails (the value is still returned), and the shared
//! load is detached from its callers: the first caller dropping its future neither fails the others
//! nor stops the load, which stores its value.
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.14.
//!
//! Dropping futures mid-operation is also exercised at random in `cache_cancellation.rs`.

mod cache_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use slotcache_tests::conformance::Rt;

use cache_support::{Backend, eventually, ns, on_both_providers, on_every_runtime, s, string_ns};

const LABEL: &str = "cache-get-fallback-detached-load";

on_both_providers!(
    get_falls_back_to_its_loader_and_the_shared_load_outlives_its_callers_on,
    LABEL,
    get_falls_back_to_its_loader_and_the_shared_load_outlives_its_callers,
    get_falls_back_to_its_loader_and_the_shared_load_outlives_its_callers_in_memory
);

fn get_falls_back_to_its_loader_and_the_shared_load_outlives_its_callers_on(c: impl Backend) {
    on_every_runtime("get_falls_back_to_its_loader_and_the_shared_load_outlives_its_callers", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "detached").await;
            let name = ns("detach", rt, "a");
            let cache = string_ns(&p, &name);

            // A read error (a key of another type): the loader's value is returned and stored.
            let list = format!("{name}:list");
            c.raw(list.as_bytes(), &[b"RPUSH", list.as_bytes(), b"x"]);
            let v = cache.get(&s("list"), |_| async { Ok(s("loaded")) }).await.expect("falls back");
            assert_eq!(v, "loaded");
            assert_eq!(cache.get_if_present(&s("list")).await.expect("stored"), Some(s("loaded")));

            // The first caller gives up; the second, joined to the same load, gets the value,
            // the loader ran once, and the value is stored although nobody waits any more.
            let loads = Arc::new(AtomicUsize::new(0));
            let (release_tx, release_rx) = smol::channel::bounded::<()>(1);
            let l = loads.clone();
            let slow = s("slow");
            let first = cache.get(&slow, move |_| async move {
                l.fetch_add(1, Ordering::SeqCst);
                let _ = release_rx.recv().await;
                Ok(s("slow value"))
            });
            cache_support::drop_when(rt, first, "the first caller's load to start", || {
                loads.load(Ordering::SeqCst) == 1
            })
            .await;
            let misses = cache.stats().misses;
            let l = loads.clone();
            let second = {
                let cache = cache.clone();
                rt.spawn(async move {
                    cache
                        .get(&s("slow"), move |_| async move {
                            l.fetch_add(1, Ordering::SeqCst);
                            Ok(s("second loader"))
                        })
                        .await
                })
            };
            // Its read missed: it is joining the load (or, if it lost the race, reads its value).
            eventually(rt, Duration::from_secs(5), "the second caller's miss", || {
                let n = cache.stats().misses;
                async move { n > misses }
            })
            .await;
            release_tx.try_send(()).expect("the load is still running");
            assert_eq!(second.await.expect("second caller"), "slow value");
            assert_eq!(loads.load(Ordering::SeqCst), 1);

            // Nobody waits at all: the load still completes and stores.
            let (release_tx, release_rx) = smol::channel::bounded::<()>(1);
            let key = s("abandoned");
            let l = loads.clone();
            let abandoned = cache.get(&key, move |_| async move {
                l.fetch_add(1, Ordering::SeqCst);
                let _ = release_rx.recv().await;
                Ok(s("stored anyway"))
            });
            cache_support::drop_when(rt, abandoned, "the abandoned load to start", || {
                loads.load(Ordering::SeqCst) == 2
            })
            .await;
            release_tx.try_send(()).expect("the load is still running");
            eventually(rt, Duration::from_secs(5), "the abandoned load's value", || {
                let cache = cache.clone();
                async move { cache.get_if_present(&s("abandoned")).await.expect("get").is_some() }
            })
            .await;
            p.close().await;
        }
    });
}
