//! Search on a real 3 + 3 cluster with RediSearch + RedisJSON loaded on every node, through a
//! failover: a primary holding documents of a searchable namespace is failed over
//! (`CLUSTER FAILOVER` on its replica; the old primary stays up as a replica and answers
//! `MOVED`), and the queries right after it return **each key once and every matching
//! document**, with exact totals and sorted pages that neither overlap nor skip.
//!
//! The client's periodic topology refresh is off and nothing else runs between the failover and
//! the first query, so that query is planned from the pre-failover topology: its request
//! addressed to the demoted primary is answered `MOVED` (counted in the client's stats, and
//! asserted), and the search plans again from the refreshed topology. Before the fix the
//! fan-out was routed by index slot with the redirects followed: with a topology patched by
//! `MOVED` that sent two index names to the promoted node and listed keys twice (reproduced by
//! `sim_search_history`); this test shows the behaviour on a real cluster. One runtime (tokio):
//! the fix is in the core, which every runtime drives alike.
//!
//! Prints a `[figure]` line: the failover time, the first query's time and the `MOVED` replies
//! and refreshes it cost.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use slotcache_rt::{
    Filter, FilterOp, NamespaceOptions, Provider, ProviderConfig, QueryOptions, SearchSchema, SortBy,
    SortOrder,
};
use slotcache_tests::conformance::Rt;
use slotcache_tests::modules::search_module_args;
use slotcache_tests::{ClusterBuilder, DRILL_TIMEOUT, FailoverMode, Role};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    role: String,
    age: u32,
}

const DOCS: u32 = 90;

fn doc(i: u32) -> Doc {
    Doc { role: ["admin", "user", "guest"][(i % 3) as usize].into(), age: i }
}

fn key(i: u32) -> String {
    format!("p{i:02}")
}

/// The page's keys, asserting each is listed once.
#[track_caller]
fn distinct_keys(items: &[(String, Doc)], what: &str) -> BTreeSet<String> {
    let keys: BTreeSet<String> = items.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys.len(),
        items.len(),
        "{what}: a key listed twice: {:?}",
        items.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    keys
}

#[test]
fn queries_after_a_failover_list_each_key_once_and_every_document() {
    let args = search_module_args().expect("search modules");
    let cluster = ClusterBuilder::new()
        .masters(3)
        .replicas(1)
        .node_timeout(Duration::from_millis(1000))
        .args(args)
        .label("search-failover")
        .start()
        .expect("cluster");
    let seeds: Vec<String> = cluster.seeds().iter().map(ToString::to_string).collect();
    let mut cfg = ProviderConfig::new(seeds);
    cfg.client_name = "slotcache-search-failover".into();
    // Only the failover's MOVED may make the client refresh its topology.
    cfg.refresh.periodic = None;
    let rt = Rt::Tokio;
    let cluster = &cluster;
    rt.block_on(async move {
        let provider = Provider::connect(rt.runtime(), cfg).await.expect("provider");
        let schema = SearchSchema::new().tag("role", true).numeric("age", true);
        let ns = provider
            .create_namespace::<String, Doc>("fo", NamespaceOptions::default().with_search(schema))
            .expect("namespace");
        let items: Vec<(String, Doc)> = (0..DOCS).map(|i| (key(i), doc(i))).collect();
        ns.bulk_set(&items, &[]).await.expect("bulk_set");
        let all: BTreeSet<String> = (0..DOCS).map(key).collect();
        let before = ns.query(&QueryOptions::new().page(0, 1000)).await.expect("query before");
        assert_eq!((before.total, distinct_keys(&before.items, "before")), (u64::from(DOCS), all.clone()));

        // Fail over the primary of p00's shard; make sure its documents were replicated first.
        let m = cluster.owner_of_key(b"fo:p00").expect("owner");
        let r = cluster.replicas_of(m).expect("replicas")[0];
        let on_m = (0..DOCS)
            .filter(|&i| cluster.owner_of_key(format!("fo:{}", key(i)).as_bytes()).ok() == Some(m))
            .count();
        assert!(on_m > 10, "the failed-over primary holds documents: {on_m}");
        assert_eq!(cluster.cmd(m, ["WAIT", "1", "5000"]).expect("WAIT").as_int(), Some(1));
        let stats0 = provider.client().stats().await.expect("stats");
        let failover = cluster.failover(r, FailoverMode::Default).expect("failover");
        assert_eq!(
            (cluster.role(r).expect("role"), cluster.role(m).expect("role")),
            (Role::Master, Role::Replica)
        );
        cluster.wait_healthy(DRILL_TIMEOUT).expect("healthy");
        let t = provider.client().topology().expect("topology");
        assert!(
            t.primaries().any(|n| n.addr == cluster.node(m).addr()),
            "the client still takes the demoted node for a primary"
        );

        // Every document, each once, right after the failover.
        let t0 = Instant::now();
        let after = ns.query(&QueryOptions::new().page(0, 1000)).await.expect("query after the failover");
        let first = t0.elapsed();
        let stats1 = provider.client().stats().await.expect("stats");
        assert_eq!(after.total, u64::from(DOCS), "each document counted once");
        assert_eq!(distinct_keys(&after.items, "after"), all, "every document");
        assert!(stats1.moved > stats0.moved, "the demoted primary answered MOVED: {stats1:?}");
        assert!(
            provider
                .client()
                .topology()
                .expect("topology")
                .primaries()
                .any(|n| n.addr == cluster.node(r).addr()),
            "the search planned again from the refreshed topology"
        );

        // Filters: exactly the matching documents, each once.
        let admins = ns
            .query(&QueryOptions::new().filter(Filter::eq("role", "admin")).page(0, 1000))
            .await
            .expect("admins");
        let want: BTreeSet<String> = (0..DOCS).filter(|i| i % 3 == 0).map(key).collect();
        assert_eq!((admins.total, distinct_keys(&admins.items, "admins")), (30, want));
        let range = ns
            .query(
                &QueryOptions::new().filter(Filter::new("age", FilterOp::Between(10.0, 39.0))).page(0, 1000),
            )
            .await
            .expect("range");
        let want: BTreeSet<String> = (10..40).map(key).collect();
        assert_eq!((range.total, distinct_keys(&range.items, "range")), (30, want));

        // Sorted pages over the cluster neither overlap nor skip.
        for order in [SortOrder::Asc, SortOrder::Desc] {
            let mut seen = Vec::new();
            for offset in (0..DOCS as usize).step_by(7) {
                let page = ns
                    .query(&QueryOptions::new().sort(SortBy { field: "age".into(), order }).page(offset, 7))
                    .await
                    .expect("page");
                assert_eq!(page.total, u64::from(DOCS));
                seen.extend(page.items.into_iter().map(|(_, d)| d.age));
            }
            let mut want: Vec<u32> = (0..DOCS).collect();
            if order == SortOrder::Desc {
                want.reverse();
            }
            assert_eq!(seen, want, "{order:?} pages");
        }
        let stats2 = provider.client().stats().await.expect("stats");
        provider.close().await;
        eprintln!(
            "[figure] search_after_failover: {on_m} of {DOCS} documents on the failed-over primary; \
             failover {} ms; first query after it {} ms ({} MOVED, {} refreshes); every later query \
             each key once ({} MOVED in all)",
            failover.as_millis(),
            first.as_millis(),
            stats1.moved - stats0.moved,
            stats1.refreshes - stats0.refreshes,
            stats2.moved - stats0.moved,
        );
    });
}
