//! A reload whose tag is invalidated while its loader runs never outlives that invalidation
//! (A3, the lease): `refresh` of a tagged entry starts, its loader is held; meanwhile
//! `invalidate_by_tags` of the tag returns. Once the held loader returns, the reload resolves
//! to its value, but that value is never served: the reload stores under its lease (the token
//! the entry carried when it was read), which is no longer the tag's, so it stores nothing.
//! Before, the reload took the tag's token at store time, the new one, and stored the value
//! loaded before the invalidation as fresh. (A `get` starting after the invalidation does not
//! join such a reload: `cache_get_joins_no_older_load.rs`.)
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std.

mod cache_support;

use slotcache_tests::conformance::Rt;

use cache_support::{Backend, HeldReload, ns, on_both_providers, on_every_runtime, s, string_ns};

const LABEL: &str = "cache-reload-lease";

on_both_providers!(
    a_reload_started_before_an_invalidation_never_outlives_it_on,
    LABEL,
    a_reload_started_before_an_invalidation_never_outlives_it,
    a_reload_started_before_an_invalidation_never_outlives_it_in_memory
);

fn a_reload_started_before_an_invalidation_never_outlives_it_on(c: impl Backend) {
    on_every_runtime("a_reload_started_before_an_invalidation_never_outlives_it", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "reload-lease").await;
            let cache = string_ns(&p, &ns("lease", rt, "a"));
            cache.set(&s("k"), &s("old"), &["t"]).await.expect("set");

            // A reload whose loader was called and is held until released.
            let reload = HeldReload::start(rt, &cache, "k").await;

            // The invalidation returns while that loader still runs.
            assert_eq!(cache.invalidate_by_tags(&["t"]).await.expect("invalidate"), 1);

            // The reload ends with its value, which is never served.
            assert_eq!(reload.release().await.expect("reload"), "loaded before the invalidation");
            let now = cache.get_if_present(&s("k")).await.expect("get_if_present");
            assert_eq!(now, None, "{}: the reload outlived the invalidation", rt.name());
            let entry = cache.get_entry(&s("k")).await.expect("get_entry");
            assert!(entry.is_none(), "{}: nothing was stored", rt.name());
            p.close().await;
        }
    });
}
