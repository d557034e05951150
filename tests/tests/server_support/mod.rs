//! What the tests against other servers than the pinned Valkey cluster share (the `standalone_*`
//! files and `cache_redis7_cluster`): the cache API ([`cache_body`], on any deployment), and
//! against a standalone server (a primary with one replica, [`Standalone`]) replica reads and
//! `WAIT` durability, on every runtime.
//!
//! [`run_suite`] runs, per runtime:
//!
//! 1. the cache API with the mode detected ([`Mode::Auto`], the default) and again with
//!    [`Mode::Standalone`] set: set/get with tags, `invalidate_by_tags` (exact counts),
//!    `invalidate`, bulk set/get across many slots, the compute family (concurrent increments,
//!    no lost update), a loader (single flight), iteration (`keys`, `entries`,
//!    `estimated_size`, exact counts), `invalidate_all` (this namespace only), and no redirect;
//! 2. replica reads (`ReadFrom::PreferReplica`): the replica's `GET` count grows by every read,
//!    the primary's does not;
//! 3. `WAIT` durability (the default `Durability::Replicas { replicas: 1, .. }`): with the
//!    replica attached, invalidations succeed; with the replica stopped (`SIGSTOP`: the primary
//!    still lists it, it acknowledges nothing), they fail with `NotDurable { acked: 0, wanted: 1 }`
//!    while the invalidation itself is in force.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use slotcache_rt::{
    CacheError, Compute, Durability, Mode, NamespaceOptions, NodeAddr, Provider, ProviderConfig, ReadFrom,
};
use slotcache_tests::Standalone;
use slotcache_tests::conformance::{ALL, Rt};

/// A provider configuration for the standalone server at `seeds`.
pub(crate) fn config(seeds: &[NodeAddr], mode: Mode) -> ProviderConfig {
    let mut cfg = ProviderConfig::new(seeds.iter().map(ToString::to_string));
    cfg.mode = mode;
    cfg.client_name = "slotcache-standalone-test".into();
    cfg
}

/// Asserts that `provider` sees a standalone topology: `primary` owning every slot, with
/// `replica` as its one online replica.
pub(crate) fn assert_standalone(
    provider: &Provider,
    primary: &NodeAddr,
    replica: Option<&NodeAddr>,
    what: &str,
) {
    let t = provider.client().topology().expect("a topology once connected");
    assert!(t.is_standalone() && t.is_fully_covered(), "{what}: {t:?}");
    assert_eq!(t.shards().len(), 1, "{what}");
    let shard = &t.shards()[0];
    assert_eq!(&shard.primary.addr, primary, "{what}");
    let replicas: Vec<(NodeAddr, bool)> =
        shard.replicas.iter().map(|r| (r.addr.clone(), r.is_online())).collect();
    assert_eq!(replicas, replica.map(|r| (r.clone(), true)).into_iter().collect::<Vec<_>>(), "{what}");
}

/// The cache API against the standalone server (see the module docs, item 1).
pub(crate) async fn cache_api(rt: Rt, seeds: Vec<NodeAddr>, replica: NodeAddr, p: String, mode: Mode) {
    let provider = Provider::connect(rt.runtime(), config(&seeds, mode)).await.expect("provider");
    assert_standalone(&provider, &seeds[0], Some(&replica), &p);
    cache_body(rt, &provider, &p).await;
    provider.close().await;
}

/// The cache API on any deployment, namespaces named after `p` (see the module docs, item 1):
/// every operation's result checked, and no redirect met.
pub(crate) async fn cache_body(rt: Rt, provider: &Provider, p: &str) {
    let users = provider
        .create_namespace::<String, String>(&format!("users-{p}"), NamespaceOptions::default())
        .expect("namespace");

    // set / get with tags; exact counts; set again replaces the tags; invalidate.
    for i in 0..20 {
        let tags: &[&str] = if i % 2 == 0 { &["even", "all"] } else { &["odd", "all"] };
        users.set(&format!("t:{i}"), &format!("v{i}"), tags).await.expect("tagged set");
    }
    for i in 0..20 {
        assert_eq!(users.get_if_present(&format!("t:{i}")).await.expect("get"), Some(format!("v{i}")), "{p}");
    }
    users.set(&"t:0".into(), &"v0".into(), &["odd"]).await.expect("re-set replaces tags");
    assert!(users.invalidate(&"t:2".into()).await.expect("invalidate"), "{p}");
    assert_eq!(users.invalidate_by_tags(&["even"]).await.expect("even"), 8, "{p}: t:4..t:18");
    assert_eq!(users.get_if_present(&"t:0".into()).await.expect("get"), Some("v0".into()), "{p}");
    assert_eq!(users.invalidate_by_tags(&["odd", "all"]).await.expect("odd+all"), 11, "{p}");
    for i in 0..20 {
        assert_eq!(users.get_if_present(&format!("t:{i}")).await.expect("get"), None, "{p}: t:{i}");
    }

    // Bulk across slots: all on the one node.
    let items: Vec<(String, String)> = (0..200).map(|i| (format!("b:{i}"), format!("b{i}"))).collect();
    users.bulk_set(&items, &["bulk"]).await.expect("bulk set");
    let keys: Vec<String> = (0..250).map(|i| format!("b:{i}")).collect();
    let got = users.bulk_get(&keys).await.expect("bulk get");
    assert_eq!(got.len(), 200, "{p}");
    assert_eq!(got[&"b:7".to_string()], "b7");

    // Compute family, with concurrent increments: no lost update.
    let counter = provider
        .create_namespace::<String, u64>(&format!("counters-{p}"), NamespaceOptions::default())
        .expect("ns");
    assert_eq!(counter.compute_if_absent(&"c".into(), || 10).await.expect("absent"), (10, true));
    assert_eq!(
        counter.compute(&"c".into(), |c| Compute::Set(c.copied().unwrap_or(0) + 5)).await.expect("compute"),
        Some(15)
    );
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let c = counter.clone();
            rt.spawn(async move {
                for _ in 0..10 {
                    c.compute(&"n".to_string(), |v| Compute::Set(v.copied().unwrap_or(0) + 1))
                        .await
                        .expect("inc");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await;
    }
    assert_eq!(counter.get_if_present(&"n".into()).await.expect("n"), Some(40), "{p}");

    // A loader, single flight: 10 concurrent callers, one load.
    let calls = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let users = users.clone();
            let calls = calls.clone();
            rt.spawn(async move {
                users
                    .get(&"loaded".to_string(), move |_k| async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        Ok("from the loader".to_string())
                    })
                    .await
            })
        })
        .collect();
    for w in waiters {
        assert_eq!(w.await.expect("loaded"), "from the loader");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "{p}: one load for 10 callers");

    // Iteration: exact counts (200 bulk entries and the loaded one).
    let size = 201;
    assert_eq!(users.keys().count().await, size, "{p}: keys streamed once each");
    let mut entries = users.entries();
    let mut n = 0;
    while let Some(e) = entries.next().await {
        e.expect("entry");
        n += 1;
    }
    assert_eq!(n, size, "{p}");
    assert_eq!(users.estimated_size().await.expect("size"), size as u64, "{p}");

    // invalidate_all: this namespace only (SCAN on the one primary), tag metadata included.
    let other = provider
        .create_namespace::<String, u64>(&format!("other-{p}"), NamespaceOptions::default())
        .expect("ns");
    other.set(&"keep".into(), &1, &["x"]).await.expect("set");
    assert!(users.invalidate_all().await.expect("invalidate_all") >= size as u64, "{p}");
    assert_eq!(users.keys().count().await, 0, "{p}");
    assert_eq!(users.invalidate_by_tags(&["bulk"]).await.expect("tag after invalidate_all"), 0, "{p}");
    assert_eq!(other.get_if_present(&"keep".into()).await.expect("other kept"), Some(1), "{p}");

    let stats = provider.client().stats().await.expect("stats");
    assert_eq!((stats.moved, stats.ask), (0, 0), "{p}: every request went to its node: {stats:?}");
}

/// Reads through `ReadFrom::PreferReplica` (see the module docs, item 2): writes 50 untagged
/// entries, then reads each until the replica has it.
pub(crate) async fn replica_reads(rt: Rt, seeds: Vec<NodeAddr>, replica: NodeAddr, p: String) -> u64 {
    let mut cfg = config(&seeds, Mode::Auto);
    cfg.read_from = ReadFrom::PreferReplica;
    let provider = Provider::connect(rt.runtime(), cfg).await.expect("provider");
    assert_standalone(&provider, &seeds[0], Some(&replica), &p);
    let cache = provider
        .create_namespace::<String, String>(&format!("replica-{p}"), NamespaceOptions::default())
        .expect("namespace");
    for i in 0..50 {
        cache.set(&format!("r{i}"), &format!("v{i}"), &[]).await.expect("set");
    }
    let mut reads = 0;
    for i in 0..50 {
        let k = format!("r{i}");
        let mut tries = 0;
        loop {
            reads += 1;
            match cache.get_if_present(&k).await.expect("get") {
                Some(v) => {
                    assert_eq!(v, format!("v{i}"), "{p}");
                    break;
                }
                None if tries < 200 => {
                    tries += 1;
                    rt.sleep(Duration::from_millis(5)).await;
                }
                None => panic!("{p}: the replica never had {k}"),
            }
        }
    }
    provider.close().await;
    reads
}

/// `WAIT` durability (see the module docs, item 3). `attached`: the replica acknowledges.
pub(crate) async fn durability(rt: Rt, seeds: Vec<NodeAddr>, p: String, attached: bool) {
    let mut cfg = config(&seeds, Mode::Auto);
    cfg.durability = Durability::Replicas { replicas: 1, timeout: Duration::from_millis(250) };
    let provider = Provider::connect(rt.runtime(), cfg).await.expect("provider");
    let cache = provider
        .create_namespace::<String, String>(&format!("durable-{p}-{attached}"), NamespaceOptions::default())
        .expect("namespace");
    for k in ["a", "b", "c"] {
        cache.set(&k.into(), &"v".into(), &["t"]).await.expect("set");
    }
    if attached {
        assert_eq!(cache.invalidate(&"a".into()).await, Ok(true), "{p}: acknowledged by the replica");
        assert_eq!(cache.invalidate_by_tags(&["t"]).await, Ok(2), "{p}");
    } else {
        let not_durable = CacheError::NotDurable { acked: 0, wanted: 1 };
        assert_eq!(
            cache.invalidate(&"a".into()).await,
            Err(not_durable.clone()),
            "{p}: the stopped replica acknowledges nothing"
        );
        assert_eq!(cache.invalidate_by_tags(&["t"]).await, Err(not_durable), "{p}");
        // The invalidations ran on the primary: in force, only not acknowledged.
        for k in ["a", "b", "c"] {
            assert_eq!(cache.get_if_present(&k.into()).await.expect("get"), None, "{p}: {k}");
        }
    }
    provider.close().await;
}

/// The whole suite on every runtime against `s` (a primary with one replica), `server` naming
/// it in messages.
pub(crate) fn run_suite(s: &mut Standalone, server: &str) {
    let version = slotcache_tests::install::server_version(s.binary()).expect("version");
    eprintln!("[standalone] {server}: {version}, primary {}, replica {}", s.addr(0), s.addr(1));
    let (seeds, replica) = (s.seeds(), s.addr(1));
    for rt in ALL {
        let p = format!("{server}-{}", rt.name());
        rt.block_on(cache_api(rt, seeds.clone(), replica.clone(), p.clone(), Mode::Auto));
        rt.block_on(cache_api(rt, seeds.clone(), replica.clone(), format!("{p}-explicit"), Mode::Standalone));

        let (replica_before, primary_before) =
            (s.calls(1, "get").expect("stats"), s.calls(0, "get").expect("stats"));
        let reads = rt.block_on(replica_reads(rt, seeds.clone(), replica.clone(), p.clone()));
        let (replica_gets, primary_gets) = (
            s.calls(1, "get").expect("stats") - replica_before,
            s.calls(0, "get").expect("stats") - primary_before,
        );
        eprintln!(
            "[figure] standalone/{p}: {reads} reads, {replica_gets} GETs on the replica, {primary_gets} on the primary"
        );
        assert_eq!(replica_gets, reads, "{p}: every read went to the replica");
        assert_eq!(primary_gets, 0, "{p}: none to the primary");

        rt.block_on(durability(rt, seeds.clone(), p.clone(), true));
        s.pause(1).expect("SIGSTOP the replica");
        rt.block_on(durability(rt, seeds.clone(), p.clone(), false));
        s.resume(1).expect("SIGCONT the replica");
        s.wait_replicas_online(1, Duration::from_secs(30)).expect("the replica is back");
    }
}
