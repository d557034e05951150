//! `estimated_size` with a node too slow for its budget is a typed `Timeout`, never a silently
//! partial count.
//!
//! On a real cluster (3 masters + 1 replica each), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.17.

mod cache_support;

use std::time::{Duration, Instant};

use slotcache_rt::CacheError;
use slotcache_tests::conformance::Rt;

use cache_support::{cluster, config, exclusive, ns, on_every_runtime, provider_with, roles, s, string_ns};

const LABEL: &str = "cache-estimated-size-timeout";

#[test]
fn estimated_size_past_its_budget_is_a_timeout_not_a_partial_count() {
    // A node is stopped: nothing else runs meanwhile.
    let c = cluster(LABEL);
    let _g = exclusive();
    on_every_runtime("estimated_size_past_its_budget_is_a_timeout_not_a_partial_count", |rt: Rt| {
        let c = c.clone();
        async move {
            let mut cfg = config(&c, "size-timeout");
            cfg.bulk_operation_timeout = Duration::from_millis(150);
            let p = provider_with(rt, cfg).await;
            let cache = string_ns(&p, &ns("size", rt, "a"));
            let items: Vec<(String, String)> = (0..30).map(|i| (format!("k{i}"), s("v"))).collect();
            cache.bulk_set(&items, &[]).await.expect("bulk set");
            assert_eq!(cache.estimated_size().await.expect("size"), 30);
            let (masters, _) = roles(&c);
            let stopped = cache_support::stop(&c, masters[1]);
            let started = Instant::now();
            let e = cache.estimated_size().await;
            assert!(matches!(e, Err(CacheError::Timeout { op: "estimated_size", .. })), "{e:?}");
            assert!(
                started.elapsed() < Duration::from_millis(1500),
                "within its budget: {:?}",
                started.elapsed()
            );
            drop(stopped);
            assert_eq!(cache.estimated_size().await.expect("size"), 30);
            p.close().await;
        }
    });
}
