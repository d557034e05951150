//! Bulk operations are pipelined and bounded. `bulk_get` of 50 keys is one pipelined request and
//! needs no loader; it has a time budget (a slow node makes it a typed `Timeout`, not a hang);
//! `bulk_refresh` stores what its loader returns with one pipeline (after one that reads the
//! entries' tags), not one request per item.
//!
//! On a real cluster (3 masters + 1 replica each), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.18.

mod cache_support;

use std::time::{Duration, Instant};

use slotcache_rt::CacheError;
use slotcache_tests::conformance::Rt;

use cache_support::{
    cluster, config, exclusive, ns, on_every_runtime, provider_with, requests, roles, s, string_ns,
};

const LABEL: &str = "cache-bulk-ops-pipelined";

#[test]
fn bulk_operations_are_pipelined_and_time_bounded() {
    // A node is stopped: nothing else runs meanwhile.
    let c = cluster(LABEL);
    let _g = exclusive();
    on_every_runtime("bulk_operations_are_pipelined_and_time_bounded", |rt: Rt| {
        let c = c.clone();
        async move {
            let mut cfg = config(&c, "bulk-bounded");
            cfg.bulk_operation_timeout = Duration::from_millis(150);
            let p = provider_with(rt, cfg).await;
            let cache = string_ns(&p, &ns("bulkb", rt, "a"));
            let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
            let before = requests(&p).await;
            let stored = cache
                .bulk_refresh(
                    keys.clone(),
                    |ks| async move { Ok(ks.into_iter().map(|k| (k, s("v"))).collect()) },
                )
                .await
                .expect("bulk refresh");
            assert_eq!(stored, 50);
            // One pipeline reads the entries' tags (kept by the reload), one stores the values.
            assert_eq!(requests(&p).await - before, 2, "50 values stored by one pipeline");
            let before = requests(&p).await;
            assert_eq!(cache.bulk_get(&keys).await.expect("bulk get").len(), 50);
            assert_eq!(requests(&p).await - before, 1, "50 values read by one pipeline");
            let (masters, _) = roles(&c);
            let stopped = cache_support::stop(&c, masters[2]);
            let started = Instant::now();
            let e = cache.bulk_get(&keys).await;
            assert!(matches!(e, Err(CacheError::Timeout { op: "bulk_get", .. })), "{e:?}");
            assert!(
                started.elapsed() < Duration::from_millis(1500),
                "within its budget: {:?}",
                started.elapsed()
            );
            drop(stopped);
            p.close().await;
        }
    });
}
