//! With `send_to_replicas`, values are read from replicas, but everything that must see the latest
//! write stays on primaries: tag checks (an invalidated entry is a miss at once) and compute's read
//! (it always sees the write just made).
//!
//! On a real cluster (3 masters + 1 replica each), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.20.

mod cache_support;

use std::time::Duration;

use slotcache_rt::Compute;
use slotcache_tests::conformance::Rt;

use cache_support::{
    calls, cluster, config, eventually, ns, on_every_runtime, provider_with, roles, s, shared, string_ns,
};

const LABEL: &str = "cache-replica-reads-tag-checks";

#[test]
fn replica_reads_keep_tag_checks_and_compute_on_primaries() {
    let c = cluster(LABEL);
    let _g = shared();
    let (_, replicas) = roles(&c);
    on_every_runtime("replica_reads_keep_tag_checks_and_compute_on_primaries", |rt: Rt| {
        let c = c.clone();
        let replicas = replicas.clone();
        async move {
            let mut cfg = config(&c, "replica-reads");
            cfg.send_to_replicas = true;
            let p = provider_with(rt, cfg).await;
            let cache = string_ns(&p, &ns("replica", rt, "a"));
            let gets_before = calls(&c, &replicas, "get");
            for i in 0..20 {
                let k = format!("k{i}");
                cache.set(&k, &format!("v{i}"), &["t"]).await.expect("set");
                let v =
                    cache.compute_if_present(&k, |v| Compute::Set(format!("{v}+"))).await.expect("compute");
                assert_eq!(v, Some(format!("v{i}+")), "compute read the primary");
            }
            eventually(rt, Duration::from_secs(5), "replicas to serve the values", || {
                let cache = cache.clone();
                async move { cache.get_if_present(&s("k19")).await.expect("get") == Some(s("v19+")) }
            })
            .await;
            assert!(calls(&c, &replicas, "get") > gets_before, "reads went to replicas");
            assert_eq!(cache.invalidate_by_tags(&["t"]).await.expect("by tag"), 20);
            for i in 0..20 {
                assert_eq!(cache.get_if_present(&format!("k{i}")).await.expect("get"), None, "k{i}");
            }
            p.close().await;
        }
    });
    assert_eq!(calls(&c, &replicas, "zrangebyscore"), 0, "tag checks never went to a replica");
}
