//! The cache on a plain (no TLS) cluster of Debian's `redis-server` 7.0, 3 masters + 1 replica
//! each, on every runtime: the cache API of `server_support::cache_body` (tags with exact
//! counts, bulk across slots, compute, a loader, iteration, `invalidate_all`), with the default
//! `WAIT` durability, and the mode detected as a cluster. The TLS suites run Redis 7 clusters
//! through the low-level client only; this is the cache on Redis 7.
//!
//! Needs `redis-server` (`scripts/test-all` installs it): with `CI=true` a missing one fails
//! the test; elsewhere the test is skipped with a printed notice.

mod server_support;

use slotcache_rt::{Mode, Provider};
use slotcache_tests::conformance::ALL;
use slotcache_tests::{ClusterBuilder, install};

#[test]
fn the_cache_on_a_redis_7_cluster_on_every_runtime() {
    if let Some(reason) = slotcache_tests::standalone::redis_skip_reason() {
        eprintln!("SKIPPED the_cache_on_a_redis_7_cluster_on_every_runtime: {reason}");
        return;
    }
    let redis =
        install::redis_server().expect("redis-server (CI must have it: apt-get install redis-server)");
    let version = install::server_version(&redis).expect("version");
    assert!(version.starts_with("Redis server v=7."), "{version}");
    let c = ClusterBuilder::new()
        .binary(redis)
        .masters(3)
        .replicas(1)
        .label("cache-redis7")
        .start()
        .expect("a Redis 7 cluster");
    eprintln!("[redis7] cluster: {version}, ready in {:?}", c.timings().ready);
    for rt in ALL {
        let p = format!("redis7-cluster-{}", rt.name());
        rt.block_on(async {
            let provider = Provider::connect(rt.runtime(), server_support::config(&c.seeds(), Mode::Auto))
                .await
                .expect("provider");
            let t = provider.client().topology().expect("topology");
            assert!(!t.is_standalone() && t.is_fully_covered(), "{p}");
            assert_eq!((t.shards().len(), t.node_count()), (3, 6), "{p}");
            server_support::cache_body(rt, &provider, &p).await;
            provider.close().await;
        });
    }
}
