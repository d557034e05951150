//! Search on a real 3-primary cluster with RediSearch + RedisJSON through a resharding that
//! moves the slot naming a primary's index: slot 0, the lowest slot of the first primary (its
//! index is `index:rs{<tag of 0>}`), with a document in it, migrates to the second primary
//! (legacy `MIGRATE`, `SETSLOT NODE` everywhere). The queries right after it return **each key
//! once and every document**, the moved one included.
//!
//! The client's periodic topology refresh is off, so the first query is planned from the
//! topology before the move: its request addressed to the first primary for slot 0's index is
//! answered `MOVED` and the search plans again from the refreshed topology (the first primary's
//! index is then named by slot 1 and created; the second primary gets one named by slot 0).
//! The old fan-out routed index names by slot with the redirects followed: slot 0's index name
//! reached the second primary, which then held two indexes (slot 0's and its own) both asked,
//! so its documents were listed twice, and the first primary was not asked at all (its
//! documents were missed) until a refresh happened to land between two steps.
//!
//! Prints a `[figure]` line: the first query's time and the `MOVED` replies and refreshes it
//! cost.

use std::collections::BTreeSet;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use slotcache_rt::{
    NamespaceOptions, Provider, ProviderConfig, QueryOptions, SearchSchema, SortBy, SortOrder,
};
use slotcache_tests::conformance::Rt;
use slotcache_tests::modules::search_module_args;
use slotcache_tests::{ClusterBuilder, key_for_slot};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    age: u32,
}

const DOCS: u32 = 60;

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
fn queries_after_an_index_slot_moved_list_each_key_once_and_every_document() {
    let args = search_module_args().expect("search modules");
    let cluster = ClusterBuilder::new()
        .masters(3)
        .replicas(0)
        .args(args)
        .label("search-reshard")
        .start()
        .expect("cluster");
    let seeds: Vec<String> = cluster.seeds().iter().map(ToString::to_string).collect();
    let mut cfg = ProviderConfig::new(seeds);
    cfg.client_name = "slotcache-search-reshard".into();
    // Only the resharding's MOVED may make the client refresh its topology.
    cfg.refresh.periodic = None;
    let rt = Rt::Tokio;
    let cluster = &cluster;
    rt.block_on(async move {
        let provider = Provider::connect(rt.runtime(), cfg).await.expect("provider");
        let schema = SearchSchema::new().numeric("age", true);
        let ns = provider
            .create_namespace::<String, Doc>("rs", NamespaceOptions::default().with_search(schema))
            .expect("namespace");
        // One document in slot 0, the others wherever they hash.
        let mut keys: Vec<String> = vec![key_for_slot(0, "moved")];
        keys.extend((1..DOCS).map(|i| format!("p{i:02}")));
        let items: Vec<(String, Doc)> =
            keys.iter().zip(0..).map(|(k, age)| (k.clone(), Doc { age })).collect();
        ns.bulk_set(&items, &[]).await.expect("bulk_set");
        let all: BTreeSet<String> = keys.iter().cloned().collect();
        let before = ns.query(&QueryOptions::new().page(0, 1000)).await.expect("query before");
        assert_eq!((before.total, distinct_keys(&before.items, "before")), (u64::from(DOCS), all.clone()));
        let (from, to) = (cluster.slot_owner(0).expect("owner").expect("owned"), 1);
        assert_eq!(from, 0, "the first primary serves slot 0");
        let on_from = keys
            .iter()
            .filter(|k| cluster.owner_of_key(format!("rs:{k}").as_bytes()).ok() == Some(from))
            .count();
        assert!(on_from > 10, "the first primary holds documents: {on_from}");

        let stats0 = provider.client().stats().await.expect("stats");
        cluster.migrate_slot_legacy(0, from, to).expect("migrate slot 0");
        assert_eq!(cluster.owner_of_key(format!("rs:{}", keys[0]).as_bytes()).expect("owner"), to);

        let t0 = Instant::now();
        let after = ns.query(&QueryOptions::new().page(0, 1000)).await.expect("query after the move");
        let first = t0.elapsed();
        let stats1 = provider.client().stats().await.expect("stats");
        assert_eq!(distinct_keys(&after.items, "after"), all, "every document, the moved one included");
        assert_eq!(after.total, u64::from(DOCS), "each document counted once");
        assert!(stats1.moved > stats0.moved, "the first primary answered MOVED: {stats1:?}");

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
        provider.close().await;
        eprintln!(
            "[figure] search_after_resharding: slot 0 (naming the first primary's index) moved with \
             its document; {on_from} of {DOCS} documents on the first primary; first query after it \
             {} ms ({} MOVED, {} refreshes); every query each key once",
            first.as_millis(),
            stats1.moved - stats0.moved,
            stats1.refreshes - stats0.refreshes,
        );
    });
}
