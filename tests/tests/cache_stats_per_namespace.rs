//! Statistics are per namespace (client-side counters), not the server's totals.
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.19.

mod cache_support;

use std::time::Duration;

use slotcache_rt::CacheError;
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, ns, on_both_providers, on_every_runtime, s, string_ns};

const LABEL: &str = "cache-stats-per-namespace";

on_both_providers!(
    stats_are_counted_per_namespace_on,
    LABEL,
    stats_are_counted_per_namespace,
    stats_are_counted_per_namespace_in_memory
);

fn stats_are_counted_per_namespace_on(c: impl Backend) {
    on_every_runtime("stats_are_counted_per_namespace", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "stats").await;
            let a = string_ns(&p, &ns("stats", rt, "a"));
            let b = string_ns(&p, &ns("stats", rt, "b"));
            a.set(&s("k"), &s("v"), &[]).await.expect("set");
            for _ in 0..3 {
                a.get_if_present(&s("k")).await.expect("hit");
            }
            a.get_if_present(&s("nope")).await.expect("miss");
            b.get(&s("x"), |_| async { Ok(s("loaded")) }).await.expect("load");
            b.get(&s("x"), |_| async { Ok(s("again")) }).await.expect("hit");
            let _ = b.get(&s("y"), |_| async { Err(CacheError::NotFound) }).await;
            let (sa, sb) = (a.stats(), b.stats());
            assert_eq!((sa.hits, sa.misses, sa.loads, sa.load_failures), (3, 1, 0, 0), "{sa:?}");
            assert_eq!((sb.hits, sb.misses, sb.loads, sb.load_failures), (1, 2, 1, 1), "{sb:?}");
            assert!(sb.load_time > Duration::ZERO);
            p.close().await;
        }
    });
}
