//! `invalidate_all` under `Durability::Replicas` (the default) is acknowledged by the replicas,
//! or fails with `NotDurable`, like the other invalidations.
//!
//! With every replica of the cluster stopped (`SIGSTOP`, shorter than the node timeout, so
//! nothing fails over) `invalidate_all` must fail with `NotDurable { acked: 0, wanted: 1 }`,
//! and its keys (entries, tag keys) must still be gone from the primaries: only the
//! acknowledgement is missing. With the replicas running it succeeds and counts what it
//! deleted. Before this, `invalidate_all` sent no `WAIT` and returned `Ok` in both cases.

mod cache_support;

use slotcache_core::keys::Namespace;
use slotcache_rt::CacheError;
use slotcache_tests::conformance::Rt;

use cache_support::{
    cluster, exclusive, ns, on_every_runtime, provider, roles, s, scan_keys, stop, string_ns,
};

const LABEL: &str = "cache-invalidate-all-durable";

/// Entries written per round, tagged `t` and one of `a`..`d`, so every shard has some.
const ENTRIES: usize = 40;

/// Every key of the namespace (entries, tag keys, reverse keys) on the masters.
fn namespace_keys(cluster: &slotcache_tests::Cluster, masters: &[usize], name: &str) -> usize {
    let ns = Namespace::new(name).expect("namespace");
    [ns.scan_pattern(), ns.tag_scan_pattern(), ns.reverse_scan_pattern()]
        .iter()
        .map(|p| scan_keys(cluster, masters, &String::from_utf8_lossy(p)).len())
        .sum()
}

#[test]
fn invalidate_all_waits_for_the_replicas() {
    let cluster = cluster(LABEL);
    let _only_me = exclusive();
    let (masters, replicas) = roles(&cluster);
    assert!(!replicas.is_empty(), "a cluster with replicas");
    on_every_runtime("invalidate_all_durable", |rt: Rt| {
        let cluster = cluster.clone();
        let (masters, replicas) = (masters.clone(), replicas.clone());
        async move {
            let p = provider(rt, &cluster, LABEL).await;
            let name = ns(LABEL, rt, "all");
            let c = string_ns(&p, &name);
            let fill = || async {
                for i in 0..ENTRIES {
                    let tag = ["a", "b", "c", "d"][i % 4];
                    c.set(&format!("k{i}"), &s("v"), &["t", tag]).await.expect("set");
                }
            };
            // Replicas running: acknowledged, every entry (and tag key) deleted and counted.
            fill().await;
            let before = namespace_keys(&cluster, &masters, &name);
            assert!(before >= ENTRIES, "the entries and their tag keys are there: {before}");
            let n = c.invalidate_all().await.expect("invalidate_all with the replicas running");
            assert_eq!(n, u64::try_from(before).expect("few"), "every key of the namespace counted");
            assert_eq!(namespace_keys(&cluster, &masters, &name), 0);

            // Every replica stopped: the unlinks happen, their acknowledgement does not.
            fill().await;
            {
                let _stopped: Vec<_> = replicas.iter().map(|&r| stop(&cluster, r)).collect();
                let r = c.invalidate_all().await;
                assert!(
                    matches!(r, Err(CacheError::NotDurable { acked: 0, wanted: 1 })),
                    "{}: {r:?}",
                    rt.name()
                );
                assert_eq!(
                    namespace_keys(&cluster, &masters, &name),
                    0,
                    "the keys are gone from the primaries all the same"
                );
            }
            p.close().await;
        }
    });
}
