//! A `get` never joins a load older than an invalidation that returned before it started (A3,
//! single flight): `refresh` of a tagged entry starts, its loader is held; meanwhile
//! `invalidate_by_tags` of the tag returns. A `get` of the key that starts then must not join
//! that reload (its loader ran before the invalidation, so its value may be what the
//! invalidation removed): it loads for itself, and returns its own value. Once the held loader
//! returns, the key still holds what the `get` loaded (the reload, under its lease, stored
//! nothing: `cache_reload_lease.rs`). Before, the `get` joined the reload and returned the
//! value loaded before the invalidation.
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std.

mod cache_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use slotcache_tests::conformance::Rt;

use cache_support::{Backend, HeldReload, ns, on_both_providers, on_every_runtime, s, string_ns};

const LABEL: &str = "cache-get-joins-no-older-load";

on_both_providers!(
    a_get_after_an_invalidation_does_not_join_the_reload_before_it_on,
    LABEL,
    a_get_after_an_invalidation_does_not_join_the_reload_before_it,
    a_get_after_an_invalidation_does_not_join_the_reload_before_it_in_memory
);

fn a_get_after_an_invalidation_does_not_join_the_reload_before_it_on(c: impl Backend) {
    on_every_runtime("a_get_after_an_invalidation_does_not_join_the_reload_before_it", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "no-older-load").await;
            let cache = string_ns(&p, &ns("join", rt, "a"));
            cache.set(&s("k"), &s("old"), &["t"]).await.expect("set");

            // A reload whose loader was called and is held until released.
            let reload = HeldReload::start(rt, &cache, "k").await;

            // The invalidation returns while that loader still runs.
            assert_eq!(cache.invalidate_by_tags(&["t"]).await.expect("invalidate"), 1);

            // A get that starts now does not join the reload: it loads for itself.
            let loads = Arc::new(AtomicUsize::new(0));
            let l = loads.clone();
            let got = cache
                .get(&s("k"), move |_| async move {
                    l.fetch_add(1, Ordering::SeqCst);
                    Ok(s("loaded after"))
                })
                .await
                .expect("get");
            assert_eq!(got, "loaded after", "{}: joined a load older than the invalidation", rt.name());
            assert_eq!(loads.load(Ordering::SeqCst), 1);

            // The reload ends with its value, which is never served.
            assert_eq!(reload.release().await.expect("reload"), "loaded before the invalidation");
            let now = cache.get_if_present(&s("k")).await.expect("get_if_present");
            assert_eq!(
                now.as_deref(),
                Some("loaded after"),
                "{}: the reload outlived the invalidation",
                rt.name()
            );
            // Nor after the get's value is gone.
            assert!(cache.invalidate(&s("k")).await.expect("invalidate"));
            assert_eq!(cache.get_if_present(&s("k")).await.expect("get_if_present"), None);
            p.close().await;
        }
    });
}
