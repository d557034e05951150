//! A standalone Valkey (the harness's pinned `valkey-server`, started without
//! `--cluster-enabled`) with one replica attached by `--replicaof`, on every runtime: the cache
//! API with the mode detected and set explicitly, replica reads and `WAIT` durability (see
//! `server_support`); then the mode checks: `mode = cluster` refuses a standalone seed and
//! `mode = standalone` refuses a cluster seed, both at once with `ModeMismatch` (a cluster node
//! does not serve every slot, so treating it as one node would miss the other shards' keys);
//! and a replica given as the only seed leads the client to its primary.

mod server_support;

use std::time::{Duration, Instant};

use slotcache_rt::{CacheError, Mode, NamespaceOptions, Provider, RequestError};
use slotcache_tests::conformance::ALL;
use slotcache_tests::{ClusterBuilder, Standalone, install};

use server_support::{assert_standalone, config};

#[test]
fn the_cache_on_a_standalone_valkey_with_a_replica_on_every_runtime() {
    let mut s = Standalone::builder().replicas(1).label("sa-valkey").start().expect("standalone valkey");
    let version = install::server_version(s.binary()).expect("version");
    assert!(version.starts_with("Valkey server"), "{version}");
    server_support::run_suite(&mut s, "valkey");
}

/// The error of a connect that must be refused for its mode, and how long it took.
async fn refused(
    rt: slotcache_tests::conformance::Rt,
    seeds: &[slotcache_rt::NodeAddr],
    mode: Mode,
) -> (RequestError, Duration) {
    let mut cfg = config(seeds, mode);
    cfg.operation_timeout = Duration::from_secs(10);
    let t = Instant::now();
    match Provider::connect(rt.runtime(), cfg).await {
        Err(CacheError::Request(e)) => (e, t.elapsed()),
        Err(other) => panic!("{mode}: expected ModeMismatch, got {other:?}"),
        Ok(_) => panic!("{mode}: connected to a node of the other kind"),
    }
}

#[test]
fn the_mode_is_checked_against_the_seed_and_a_replica_seed_leads_to_its_primary() {
    let s = Standalone::builder().replicas(1).label("sa-mode").start().expect("standalone valkey");
    for rt in ALL {
        let p = rt.name();
        rt.block_on(async {
            let (e, took) = refused(rt, &s.seeds(), Mode::Cluster).await;
            assert_eq!(
                e,
                RequestError::ModeMismatch {
                    addr: s.addr(0),
                    configured: Mode::Cluster,
                    found: Mode::Standalone
                },
                "{p}"
            );
            eprintln!(
                "[figure] standalone/{p}: mode = cluster refused a standalone seed in {} ms: {e}",
                took.as_millis()
            );
            assert!(took < Duration::from_secs(1), "{p}: at once, not at the 10 s deadline: {took:?}");

            // The replica as the only seed: writes reach the primary; the primary is then asked
            // for its replicas.
            let provider =
                Provider::connect(rt.runtime(), config(&[s.addr(1)], Mode::Auto)).await.expect("provider");
            let cache = provider
                .create_namespace::<String, String>(&format!("via-replica-{p}"), NamespaceOptions::default())
                .expect("namespace");
            cache.set(&"k".into(), &"v".into(), &["t"]).await.expect("a write through a replica seed");
            assert_eq!(cache.get_if_present(&"k".into()).await.expect("get"), Some("v".into()));
            assert_standalone(&provider, &s.addr(0), Some(&s.addr(1)), p);
            assert_eq!(cache.invalidate_by_tags(&["t"]).await.expect("by tag"), 1);
            provider.close().await;
        });
    }
    drop(s);

    let c = ClusterBuilder::new().masters(1).replicas(0).label("sa-mode-cluster").start().expect("cluster");
    for rt in ALL {
        let p = rt.name();
        rt.block_on(async {
            let (e, took) = refused(rt, &c.seeds(), Mode::Standalone).await;
            assert_eq!(
                e,
                RequestError::ModeMismatch {
                    addr: c.node(0).addr(),
                    configured: Mode::Standalone,
                    found: Mode::Cluster
                },
                "{p}"
            );
            eprintln!(
                "[figure] standalone/{p}: mode = standalone refused a cluster seed in {} ms: {e}",
                took.as_millis()
            );
            assert!(took < Duration::from_secs(1), "{p}: {took:?}");
            // Auto and cluster modes take it as the cluster it is.
            for mode in [Mode::Auto, Mode::Cluster] {
                let provider =
                    Provider::connect(rt.runtime(), config(&c.seeds(), mode)).await.expect("provider");
                let t = provider.client().topology().expect("topology");
                assert!(!t.is_standalone(), "{p}/{mode}");
                provider.close().await;
            }
        });
    }
}
