//! Iteration streams page by page: taking the first key costs one `SCAN` page, not the whole
//! keyspace, and `keys()` never fetches a value (no `GET`/`MGET` on any primary while it runs, per
//! `INFO commandstats`).
//!
//! On a real cluster (3 masters + 1 replica each), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.16.

mod cache_support;

use futures_util::StreamExt;
use slotcache_tests::conformance::Rt;

use cache_support::{calls, cluster, exclusive, ns, on_every_runtime, provider, roles, string_ns};

const LABEL: &str = "cache-iteration-streams";

#[test]
fn iteration_streams_page_by_page_and_keys_fetch_no_values() {
    let c = cluster(LABEL);
    let _g = exclusive();
    let (masters, _) = roles(&c);
    on_every_runtime("iteration_streams_page_by_page_and_keys_fetch_no_values", |rt: Rt| {
        let c = c.clone();
        let masters = masters.clone();
        async move {
            let p = provider(rt, &c, "streams").await;
            let cache = string_ns(&p, &ns("stream", rt, "a"));
            let items: Vec<(String, String)> =
                (0..3000).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
            for chunk in items.chunks(500) {
                cache.bulk_set(chunk, &[]).await.expect("bulk set");
            }
            let before =
                (calls(&c, &masters, "scan"), calls(&c, &masters, "mget"), calls(&c, &masters, "get"));
            let first = cache.keys().next().await.expect("a key").expect("key");
            assert!(first.starts_with('k'));
            let after_one = calls(&c, &masters, "scan");
            assert!(after_one - before.0 <= 2, "{} SCAN pages for one key", after_one - before.0);
            let n = cache.keys().count().await;
            assert_eq!(n, 3000);
            let scans = calls(&c, &masters, "scan") - after_one;
            assert!(scans >= 3, "paged: {scans} SCAN pages for 3000 keys on 3 primaries");
            assert_eq!(calls(&c, &masters, "mget"), before.1, "keys() fetched values");
            assert_eq!(calls(&c, &masters, "get"), before.2, "keys() fetched values");
            // entries() fetches each page's values with MGET.
            assert_eq!(cache.entries().count().await, 3000);
            assert!(calls(&c, &masters, "mget") > before.1);
            p.close().await;
        }
    });
}
