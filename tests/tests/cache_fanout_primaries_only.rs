//! Fan-out goes to primaries only, so on a cluster where every shard has a replica, iteration
//! yields each entry once, `estimated_size` is exact, `invalidate_all` deletes exactly what there
//! is; no replica ever receives a `SCAN`.
//!
//! On a real cluster (3 masters + 1 replica each), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.1.

mod cache_support;

use std::collections::HashSet;

use futures_util::StreamExt;
use slotcache_tests::conformance::Rt;

use cache_support::{calls, cluster, ns, on_every_runtime, provider, roles, shared, string_ns};

const LABEL: &str = "cache-fanout-primaries-only";

#[test]
fn fanout_reaches_primaries_only_so_counts_are_exact() {
    let c = cluster(LABEL);
    let _g = shared();
    let (masters, replicas) = roles(&c);
    assert_eq!((masters.len(), replicas.len()), (3, 3));
    on_every_runtime("fanout_reaches_primaries_only_so_counts_are_exact", |rt: Rt| {
        let c = c.clone();
        let masters = masters.clone();
        async move {
            let p = provider(rt, &c, "fanout").await;
            let cache = string_ns(&p, &ns("fanout", rt, "a"));
            let items: Vec<(String, String)> = (0..120).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
            cache.bulk_set(&items[..100], &[]).await.expect("bulk set");
            cache.bulk_set(&items[100..], &["t1", "t2"]).await.expect("tagged bulk set");
            let keys: Vec<String> = cache.keys().map(|k| k.expect("key")).collect().await;
            assert_eq!(keys.len(), 120, "each key once");
            assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 120);
            assert_eq!(cache.entries().count().await, 120);
            assert_eq!(cache.values().count().await, 120);
            assert_eq!(cache.estimated_size().await.expect("size"), 120, "no double count");
            assert_eq!(
                cache.invalidate_all().await.expect("invalidate_all"),
                122,
                "120 entries + 2 tag keys"
            );
            assert_eq!(cache.estimated_size().await.expect("size"), 0);
            assert!(calls(&c, &masters, "scan") > 0);
            p.close().await;
        }
    });
    assert_eq!(calls(&c, &replicas, "scan"), 0, "no SCAN ever reached a replica");
}
