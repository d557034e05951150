//! Search on the in-memory provider, on tokio, smol and async-std, over RESP3 and RESP2 (the
//! replies of `FT.SEARCH` and `FT.INFO` differ in shape): a searchable namespace
//! stores JSON documents on every write path, and `query` (TAG, NUMERIC and TEXT filters,
//! sorting, exact pagination) and `search` (full text) find them; a tag invalidation takes
//! documents out of the results. The node's RediSearch model is the simulation's
//! (`slotcache-memory`); GEO areas and KNN are not modelled.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use slotcache_rt::{
    Compute, Filter, FilterOp, NamespaceOptions, Protocol, Provider, ProviderConfig, QueryOptions,
    SearchSchema, SortBy, SortOrder,
};
use slotcache_tests::conformance::ALL;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    role: String,
    age: u32,
    bio: String,
}

fn doc(i: u32) -> Doc {
    Doc {
        role: ["admin", "user", "guest"][(i % 3) as usize].into(),
        age: i,
        bio: format!("hello number {i}"),
    }
}

fn opts() -> NamespaceOptions<String, Doc> {
    let schema = SearchSchema::new().tag("role", true).numeric("age", true).text("bio", false);
    NamespaceOptions::default().with_search(schema)
}

fn keys(items: &[(String, Doc)]) -> Vec<String> {
    items.iter().map(|(k, _)| k.clone()).collect()
}

#[test]
fn documents_are_found_filtered_sorted_and_paginated() {
    for (rt, protocol) in ALL.into_iter().flat_map(|rt| [(rt, Protocol::Resp3), (rt, Protocol::Resp2)]) {
        rt.block_on(async move {
            let mut cfg = ProviderConfig::default();
            cfg.protocol = protocol;
            let p = Provider::in_memory(rt.runtime(), cfg).await.expect("provider");
            let ns = p.create_namespace::<String, Doc>("people", opts()).expect("namespace");
            assert!(ns.supports_search());
            for i in 0..10 {
                ns.set(&format!("p{i:02}"), &doc(i), &[]).await.expect("set");
            }
            let bulk: Vec<(String, Doc)> = (10..20).map(|i| (format!("p{i:02}"), doc(i))).collect();
            ns.bulk_set(&bulk, &["bulk"]).await.expect("bulk_set");
            let v = ns.compute(&"p20".to_string(), |_| Compute::Set(doc(20))).await.expect("compute");
            assert_eq!(v, Some(doc(20)));

            let all = ns.query(&QueryOptions::new().page(0, 100)).await.expect("query all");
            assert_eq!(all.total, 21, "{}: every write path stored a document", rt.name());

            // Filters of every modelled type.
            let admins =
                ns.query(&QueryOptions::new().filter(Filter::eq("role", "admin")).page(0, 100)).await;
            let admins = admins.expect("tag filter");
            assert_eq!(admins.total, 7, "0, 3, ... 18");
            assert!(admins.items.iter().all(|(_, d)| d.role == "admin"));
            let young = QueryOptions::new()
                .filter(Filter::eq("role", "user"))
                .filter(Filter::new("age", FilterOp::Lt(10.0)));
            let young = ns.query(&young.page(0, 100)).await.expect("numeric filter");
            assert_eq!(
                keys(&young.items).into_iter().collect::<BTreeSet<_>>(),
                BTreeSet::from(["p01".into(), "p04".into(), "p07".into()])
            );

            // Sorted pagination is exact.
            let mut seen = Vec::new();
            for offset in (0..21).step_by(4) {
                let sort = SortBy { field: "age".into(), order: SortOrder::Desc };
                let page = ns.query(&QueryOptions::new().sort(sort).page(offset, 4)).await.expect("page");
                seen.extend(page.items.into_iter().map(|(_, d)| d.age));
            }
            assert_eq!(seen, (0..21).rev().collect::<Vec<_>>(), "{}", rt.name());

            // Full text.
            let found = ns.search("number 12", &QueryOptions::new().page(0, 10)).await.expect("search");
            assert_eq!(keys(&found.items), vec!["p12".to_string()]);

            // A tag invalidation takes its documents out of reads and results.
            assert_eq!(ns.invalidate_by_tags(&["bulk"]).await.expect("invalidate"), 10);
            let all = ns.query(&QueryOptions::new().page(0, 100)).await.expect("query all");
            assert_eq!((all.total, all.items.len()), (11, 11));
            assert!(keys(&all.items).iter().all(|k| k.as_str() < "p10" || k == "p20"));
            p.close().await;
        });
    }
}
