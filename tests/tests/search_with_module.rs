//! Search and query on a real 3-primary cluster with RediSearch + RedisJSON loaded per shard
//! (no coordinator): every document is found wherever it lives, pagination over the cluster is
//! exact, every filter type and escaping edge case, every write path stores JSON documents, tag
//! invalidation of documents, schema mismatch, timeout (on tokio), and a smoke run on smol and
//! async-std; on every runtime, a custom `index_prefix` (the indexes `FT._LIST` shows on each
//! primary), `supports_search` and `schema`, and sliding expiry of documents.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use slotcache_rt::{
    CacheError, Compute, Distance, Filter, FilterOp, GeoUnit, Knn, NamespaceOptions, Provider,
    ProviderConfig, QueryOptions, SearchError, SearchSchema, SortBy, SortOrder, Ttl, VectorAlgorithm,
};
use slotcache_tests::conformance::{ALL, Rt};
use slotcache_tests::modules::search_module_args;
use slotcache_tests::{Cluster, ClusterBuilder};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    role: String,
    age: u32,
    bio: String,
    loc: String,
    emb: Vec<f32>,
}

fn doc(i: u32) -> Doc {
    Doc {
        role: ["admin", "user", "guest"][(i % 3) as usize].into(),
        age: i,
        bio: format!("hello number {i} from slotcache"),
        loc: format!("{},{}", 2.0 + f64::from(i % 5) * 0.01, 48.8),
        emb: vec![i as f32, 1.0],
    }
}

fn schema() -> SearchSchema {
    SearchSchema::new().tag("role", true).numeric("age", true).text("bio", false).geo("loc").vector(
        "emb",
        VectorAlgorithm::Flat,
        2,
        Distance::L2,
    )
}

fn opts(s: SearchSchema) -> NamespaceOptions<String, Doc> {
    NamespaceOptions::default().with_search(s)
}

fn config(cluster: &Cluster) -> ProviderConfig {
    let seeds: Vec<String> = cluster.seeds().iter().map(ToString::to_string).collect();
    let mut cfg = ProviderConfig::new(seeds);
    cfg.client_name = "slotcache-search-test".into();
    cfg
}

fn keys_of(items: &[(String, Doc)]) -> Vec<String> {
    items.iter().map(|(k, _)| k.clone()).collect()
}

#[test]
fn search_across_every_shard() {
    let args = search_module_args().expect("search modules");
    let mut cluster =
        ClusterBuilder::new().masters(3).replicas(0).args(args).label("search").start().expect("cluster");
    let cfg = config(&cluster);

    // Every write path stores documents that every shard's index finds.
    let masters_seen = Rt::Tokio.block_on(async {
        let provider = Provider::connect(Rt::Tokio.runtime(), cfg.clone()).await.expect("provider");
        let ns = provider.create_namespace::<String, Doc>("people", opts(schema())).expect("namespace");
        for i in 0..20 {
            ns.set(&format!("p{i}"), &doc(i), &[]).await.expect("set");
        }
        for i in 20..30 {
            ns.set_with_ttl(&format!("p{i}"), &doc(i), Ttl::After(Duration::from_secs(600)), &[])
                .await
                .expect("set_with_ttl");
        }
        let bulk: Vec<(String, Doc)> = (30..50).map(|i| (format!("p{i}"), doc(i))).collect();
        ns.bulk_set(&bulk, &["bulk"]).await.expect("bulk_set");
        for i in 50..60 {
            let v = ns.compute(&format!("p{i}"), |_| Compute::Set(doc(i))).await.expect("compute");
            assert_eq!(v, Some(doc(i)));
        }
        // Reads of every kind see the documents.
        assert_eq!(ns.get_if_present(&"p3".to_string()).await.expect("get"), Some(doc(3)));
        let e = ns.get_entry(&"p40".to_string()).await.expect("entry").expect("present");
        assert_eq!((e.value, e.tags), (doc(40), vec!["bulk".to_string()]));
        let e = ns.get_entry(&"p25".to_string()).await.expect("entry").expect("present");
        assert!(e.ttl.is_some_and(|t| t > Duration::from_secs(500)), "{:?}", e.ttl);
        let keys: Vec<String> = (0..60).map(|i| format!("p{i}")).collect();
        assert_eq!(ns.bulk_get(&keys).await.expect("bulk_get").len(), 60);
        let loaded = ns.get(&"p70".to_string(), |_| async { Ok(doc(70)) }).await.expect("loader");
        assert_eq!(loaded, doc(70));
        // compute on an existing document keeps its tags and rewrites it as a document.
        ns.compute(&"p41".to_string(), |v| Compute::Set(Doc { age: 1041, ..v.cloned().expect("present") }))
            .await
            .expect("compute existing");

        let all = ns.query(&QueryOptions::new().page(0, 1000)).await.expect("query all");
        assert_eq!(all.total, 61, "every document on every shard");
        let got: BTreeSet<String> = keys_of(&all.items).into_iter().collect();
        let want: BTreeSet<String> = (0..61).map(|i| format!("p{}", if i == 60 { 70 } else { i })).collect();
        assert_eq!(got, want);

        // Invalidation by tag removes documents (DEL_IF_STALE_JSON) from reads and from search.
        assert_eq!(ns.invalidate_by_tags(&["bulk"]).await.expect("invalidate tag"), 20);
        assert_eq!(ns.get_if_present(&"p35".to_string()).await.expect("get"), None);
        let all = ns.query(&QueryOptions::new().page(0, 1000)).await.expect("query all");
        assert_eq!(all.total, 41);
        // Several tags on one document: counted once, and not again through the other tag.
        ns.set(&"multi".to_string(), &doc(80), &["x", "y"]).await.expect("set");
        ns.set(&"multi2".to_string(), &doc(81), &["x", "y"]).await.expect("set");
        assert_eq!(ns.invalidate_by_tags(&["x", "y"]).await.expect("both"), 2);
        ns.set(&"multi".to_string(), &doc(80), &["x", "y"]).await.expect("set");
        assert_eq!(ns.invalidate_by_tags(&["x"]).await.expect("x"), 1);
        assert_eq!(ns.invalidate_by_tags(&["y"]).await.expect("y"), 0);
        assert!(ns.invalidate(&"p0".to_string()).await.expect("invalidate"));
        assert_eq!(ns.query(&QueryOptions::new().page(0, 1000)).await.expect("q").total, 40);
        keys
    });
    let spread: HashSet<usize> = masters_seen
        .iter()
        .map(|k| cluster.owner_of_key(format!("people:{k}").as_bytes()).expect("owner"))
        .collect();
    assert_eq!(spread.len(), 3, "the documents live on all 3 primaries");

    Rt::Tokio.block_on(async {
        let provider = Provider::connect(Rt::Tokio.runtime(), cfg.clone()).await.expect("provider");
        let ns = provider.create_namespace::<String, Doc>("pages", opts(schema())).expect("namespace");
        let items: Vec<(String, Doc)> = (0..57).map(|i| (format!("k{i:02}"), doc(i))).collect();
        ns.bulk_set(&items, &[]).await.expect("bulk_set");

        // Sorted pagination over the cluster is exact, both directions.
        for order in [SortOrder::Asc, SortOrder::Desc] {
            let mut seen = Vec::new();
            let mut offset = 0;
            loop {
                let sort = SortBy { field: "age".into(), order };
                let r = ns.query(&QueryOptions::new().sort(sort).page(offset, 7)).await.expect("page");
                assert_eq!(r.total, 57);
                if r.items.is_empty() {
                    break;
                }
                seen.extend(r.items.into_iter().map(|(_, d)| d.age));
                offset += 7;
                assert!(offset < 100, "bounded");
            }
            let mut want: Vec<u32> = (0..57).collect();
            if order == SortOrder::Desc {
                want.reverse();
            }
            assert_eq!(seen, want, "{order:?}");
        }
        // Unsorted pages are disjoint and cover everything.
        let mut seen = Vec::new();
        for p in 0..6 {
            let r = ns.query(&QueryOptions::new().page(p * 10, 10)).await.expect("page");
            seen.extend(keys_of(&r.items));
        }
        let uniq: HashSet<&String> = seen.iter().collect();
        assert_eq!((seen.len(), uniq.len()), (57, 57));

        // Filters, by field type.
        let count = |r: Result<slotcache_rt::SearchResults<String, Doc>, CacheError>| r.expect("query").total;
        let q = |f: Filter| QueryOptions::new().filter(f).page(0, 100);
        assert_eq!(count(ns.query(&q(Filter::eq("role", "admin"))).await), 19);
        assert_eq!(count(ns.query(&q(Filter::ne("role", "admin"))).await), 38);
        assert_eq!(count(ns.query(&q(Filter::any_of("role", ["admin", "guest"]))).await), 38);
        assert_eq!(count(ns.query(&q(Filter::prefix("role", "gu"))).await), 19);
        assert_eq!(count(ns.query(&q(Filter::eq("age", 7))).await), 1);
        assert_eq!(count(ns.query(&q(Filter::ne("age", 7))).await), 56);
        assert_eq!(count(ns.query(&q(Filter::new("age", FilterOp::Gt(50.0)))).await), 6);
        assert_eq!(count(ns.query(&q(Filter::new("age", FilterOp::Ge(50.0)))).await), 7);
        assert_eq!(count(ns.query(&q(Filter::new("age", FilterOp::Lt(5.0)))).await), 5);
        assert_eq!(count(ns.query(&q(Filter::new("age", FilterOp::Le(5.0)))).await), 6);
        assert_eq!(count(ns.query(&q(Filter::between("age", 10.0, 19.0))).await), 10);
        assert_eq!(count(ns.query(&q(Filter::any_of("age", [1, 2, 3]))).await), 3);
        assert_eq!(count(ns.query(&q(Filter::eq("bio", "number 12"))).await), 1);
        assert_eq!(count(ns.query(&q(Filter::prefix("bio", "slotc"))).await), 57);
        let near =
            Filter::new("loc", FilterOp::Within { lon: 2.0, lat: 48.8, radius: 100.0, unit: GeoUnit::M });
        assert_eq!(count(ns.query(&q(near)).await), 12, "i % 5 == 0");
        let both = QueryOptions::new()
            .filter(Filter::eq("role", "user"))
            .filter(Filter::new("age", FilterOp::Lt(10.0)));
        assert_eq!(count(ns.query(&both).await), 3);
        // Full-text search (scored) with a filter.
        let r = ns.search("number 33", &QueryOptions::new()).await.expect("search");
        assert_eq!(keys_of(&r.items), ["k33"]);
        assert_eq!(ns.search("hello", &q(Filter::eq("role", "guest"))).await.expect("search").total, 19);

        // Nearest neighbours over the cluster (emb = [age, 1]), alone, filtered and paginated.
        let near = |k: usize| Knn { field: "emb".into(), k, vector: vec![20.2, 1.0] };
        let ages = |r: slotcache_rt::SearchResults<String, Doc>| {
            r.items.into_iter().map(|(_, d)| d.age).collect::<Vec<_>>()
        };
        let r = ns.query(&QueryOptions::new().nearest(near(3))).await.expect("knn");
        assert_eq!((r.total, ages(r)), (3, vec![20, 21, 19]));
        let r = ns
            .query(&QueryOptions::new().nearest(near(2)).filter(Filter::eq("role", "user")))
            .await
            .expect("knn");
        assert_eq!(ages(r), [19, 22]);
        let r = ns.query(&QueryOptions::new().nearest(near(5)).page(2, 2)).await.expect("knn page");
        assert_eq!(ages(r), [19, 22]);
        let bad = QueryOptions::new().nearest(Knn { field: "emb".into(), k: 3, vector: vec![1.0] });
        assert!(matches!(ns.query(&bad).await, Err(CacheError::Search(SearchError::InvalidFilter(_)))));

        // Invalid filters are typed errors, never a wider query.
        for f in [
            Filter::eq("nope", "x"),
            Filter::eq("role", 3),
            Filter::eq("age", "3"),
            Filter::new("role", FilterOp::Gt(1.0)),
            Filter::any_of::<&str>("role", []),
            Filter::eq("role", ""),
        ] {
            let e = ns.query(&q(f.clone())).await;
            assert!(matches!(e, Err(CacheError::Search(SearchError::InvalidFilter(_)))), "{f:?}: {e:?}");
        }
        let bad_sort = QueryOptions::new().sort(SortBy { field: "bio".into(), order: SortOrder::Asc });
        assert!(matches!(ns.query(&bad_sort).await, Err(CacheError::Search(SearchError::InvalidFilter(_)))));

        // The remaining paths on documents: iteration, expiry and refresh changes, invalidate_all.
        let mut n = 0;
        let mut it = ns.entries();
        while let Some(e) = it.next().await {
            let (k, d) = e.expect("entry");
            assert_eq!(format!("k{:02}", d.age), k);
            n += 1;
        }
        assert_eq!(n, 57);
        assert!(ns.set_expires_after(&"k01".into(), Duration::from_secs(30)).await.expect("expire"));
        let e = ns.get_entry(&"k01".into()).await.expect("entry").expect("present");
        assert!(e.ttl.is_some_and(|t| t <= Duration::from_secs(30)), "{:?}", e.ttl);
        assert!(ns.set_refreshable_after(&"k02".into(), Duration::from_secs(60)).await.expect("refresh"));
        let e = ns.get_entry(&"k02".into()).await.expect("entry").expect("present");
        assert!(e.refreshable_at.is_some());
        assert_eq!(e.value, doc(2));
        assert_eq!(ns.invalidate_all().await.expect("invalidate_all"), 57);
        assert_eq!(ns.query(&QueryOptions::new()).await.expect("empty").total, 0);
    });

    // Escaping edge cases: every value finds exactly its own document.
    Rt::Tokio.block_on(async {
        let provider = Provider::connect(Rt::Tokio.runtime(), cfg.clone()).await.expect("provider");
        let s = SearchSchema::new().tag("role", false).numeric("age", false);
        let ns = provider.create_namespace::<String, Doc>("escapes", opts(s)).expect("namespace");
        let values = [
            "a-b",
            "x@y",
            "{br}",
            "p|q",
            "with space",
            "back\\slash",
            "ünï✓",
            "c:d,e.f",
            "-lead",
            "a*b",
            "q\"t'",
            "(x)",
            "tab\there",
            "a-b-c",
        ];
        for (i, v) in values.iter().enumerate() {
            let d = Doc { role: (*v).to_string(), ..doc(i as u32) };
            ns.set(&format!("e{i}"), &d, &[]).await.expect("set");
        }
        for (i, v) in values.iter().enumerate() {
            let r = ns.query(&QueryOptions::new().filter(Filter::eq("role", *v))).await.expect("query");
            assert_eq!(keys_of(&r.items), [format!("e{i}")], "value {v:?}");
        }
        // Pseudo-random values over the nastiest characters (deterministic), each found alone.
        let alphabet: Vec<char> = "-@{}|\\ :,.<>[]\"'!#$%^&*()+=~`/?;éü✓漢a1_".chars().collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut randoms = Vec::new();
        for i in 0..40 {
            let mut v = format!("r{i}");
            for _ in 0..8 {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                v.push(alphabet[usize::try_from(x >> 33).unwrap_or(0) % alphabet.len()]);
            }
            randoms.push(v);
        }
        let items: Vec<(String, Doc)> = randoms
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("r{i}"), Doc { role: v.clone(), ..doc(100 + i as u32) }))
            .collect();
        ns.bulk_set(&items, &[]).await.expect("bulk_set");
        for (i, v) in randoms.iter().enumerate() {
            let r =
                ns.query(&QueryOptions::new().filter(Filter::eq("role", v.as_str()))).await.expect("query");
            assert_eq!(keys_of(&r.items), [format!("r{i}")], "value {v:?}");
        }
        let r =
            ns.query(&QueryOptions::new().filter(Filter::any_of("role", ["p|q", "{br}"]))).await.expect("in");
        assert_eq!(r.total, 2);
        let r = ns.query(&QueryOptions::new().filter(Filter::prefix("role", "a-b"))).await.expect("prefix");
        assert_eq!(r.total, 2, "a-b and a-b-c");
        let r = ns.query(&QueryOptions::new().filter(Filter::prefix("role", "ün"))).await.expect("prefix");
        assert_eq!(keys_of(&r.items), ["e6"]);

        // A non-object value cannot be stored in a searchable namespace.
        let plain = provider
            .create_namespace::<String, String>(
                "escapes-str",
                NamespaceOptions::default().with_search(SearchSchema::new().tag("x", false)),
            )
            .expect("namespace");
        assert!(matches!(plain.set(&"a".into(), &"text".into(), &[]).await, Err(CacheError::Codec(_))));

        // A plain namespace still works and cannot search.
        let other =
            provider.create_namespace::<String, String>("plain", NamespaceOptions::default()).expect("ns");
        other.set(&"a".into(), &"b".into(), &[]).await.expect("set");
        assert_eq!(other.get_if_present(&"a".into()).await.expect("get"), Some("b".into()));
        assert!(matches!(other.query(&QueryOptions::new()).await, Err(CacheError::SearchNotSupported(_))));
    });

    // Schema mismatch: an index built with another schema is detected, not reused.
    Rt::Tokio.block_on(async {
        let p1 = Provider::connect(Rt::Tokio.runtime(), cfg.clone()).await.expect("provider");
        let a = p1
            .create_namespace::<String, Doc>("mismatch", opts(SearchSchema::new().tag("role", false)))
            .expect("ns");
        a.ensure_search_index().await.expect("created");
        let p2 = Provider::connect(Rt::Tokio.runtime(), cfg.clone()).await.expect("provider");
        let b = p2
            .create_namespace::<String, Doc>("mismatch", opts(SearchSchema::new().tag("role", true)))
            .expect("ns");
        let e = b.query(&QueryOptions::new()).await;
        assert!(matches!(e, Err(CacheError::Search(SearchError::SchemaMismatch(_)))), "{e:?}");
        let c = p2
            .create_namespace::<String, Doc>("mismatch2", opts(SearchSchema::new().numeric("role", false)))
            .expect("ns");
        c.ensure_search_index().await.expect("other namespace");
        // Dropped indexes are re-created on the next search.
        a.drop_search_index().await.expect("drop");
        a.set(&"z".into(), &doc(1), &[]).await.expect("set");
        assert_eq!(a.query(&QueryOptions::new()).await.expect("recreated").total, 1);
    });

    // Smoke on smol and async-std.
    for rt in [Rt::Smol, Rt::AsyncStd] {
        rt.block_on(async {
            let provider = Provider::connect(rt.runtime(), cfg.clone()).await.expect("provider");
            let ns = provider.create_namespace::<String, Doc>(rt.name(), opts(schema())).expect("namespace");
            let items: Vec<(String, Doc)> = (0..12).map(|i| (format!("s{i}"), doc(i))).collect();
            ns.bulk_set(&items, &[]).await.expect("bulk_set");
            let r = ns
                .query(&QueryOptions::new().filter(Filter::eq("role", "user")).page(0, 100))
                .await
                .expect("q");
            assert_eq!(r.total, 4);
            assert_eq!(ns.get_if_present(&"s4".into()).await.expect("get"), Some(doc(4)));
        });
    }

    // Every runtime: a custom `index_prefix` names the index on every primary (and the default
    // prefix names none); the namespace says it supports search and gives its schema; sliding
    // expiry on documents (the read extends them through JSON_GET_TOUCH, an update gets its own
    // TTL through JSON_WRITE).
    let masters = cluster.masters().expect("masters");
    for rt in ALL {
        let p = rt.name();
        let mut pcfg = cfg.clone();
        pcfg.index_prefix = format!("custom-idx-{p}:");
        rt.block_on(async {
            let provider = Provider::connect(rt.runtime(), pcfg.clone()).await.expect("provider");
            let name = format!("prefixed-{p}");
            let plain =
                provider.create_namespace::<String, Doc>(&format!("plain-{p}"), NamespaceOptions::default());
            let plain = plain.expect("namespace");
            assert!(!plain.supports_search() && plain.schema().is_none(), "{p}");
            let mut o = opts(SearchSchema::new().tag("role", true).numeric("age", true));
            o.expiry = Some(std::sync::Arc::new(|_: &String, _: &Doc| Ttl::After(Duration::from_secs(5))));
            o.expire_after_update =
                Some(std::sync::Arc::new(|_: &String, _: &Doc| Ttl::After(Duration::from_secs(60))));
            o.expire_after_read = Some(Duration::from_secs(120));
            let ns = provider.create_namespace::<String, Doc>(&name, o).expect("namespace");
            assert!(ns.supports_search(), "{p}");
            assert_eq!(ns.schema(), Some(&SearchSchema::new().tag("role", true).numeric("age", true)), "{p}");
            for i in 0..9 {
                ns.set(&format!("d{i}"), &doc(i), &[]).await.expect("set");
            }
            assert_eq!(ns.query(&QueryOptions::new().page(0, 100)).await.expect("query").total, 9, "{p}");
            for &m in &masters {
                let slotcache_rt::Value::Array(listed) = cluster.cmd(m, ["FT._LIST"]).expect("FT._LIST")
                else {
                    panic!("FT._LIST: not an array")
                };
                let names: Vec<String> = listed
                    .iter()
                    .filter_map(|v| v.as_bytes())
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .collect();
                let ours = format!("custom-idx-{p}:{name}{{");
                let n = names.iter().filter(|i| i.starts_with(&ours)).count();
                assert_eq!(n, 1, "{p}: master {m} has one index named {ours}..}}: {names:?}");
                let default = format!("index:{name}{{");
                assert!(
                    !names.iter().any(|i| i.starts_with(&default)),
                    "{p}: the default prefix names nothing"
                );
            }
            let pttl = |k: &str| {
                let key = format!("{name}:{k}");
                let owner = cluster.owner_of_key(key.as_bytes()).expect("owner");
                cluster.cmd(owner, ["PTTL", key.as_str()]).expect("PTTL").as_int().expect("int")
            };
            assert!(pttl("d1") <= 5000, "{p}: created with 5 s");
            assert_eq!(ns.get_if_present(&"d1".to_string()).await.expect("get"), Some(doc(1)));
            assert!(pttl("d1") > 100_000, "{p}: the read extended the document");
            ns.set(&"d2".to_string(), &doc(20), &[]).await.expect("update");
            assert!((50_000..=60_000).contains(&pttl("d2")), "{p}: the update's TTL");
            assert!(pttl("d3") <= 5000, "{p}: untouched");
            provider.close().await;
        });
    }

    // search_timeout bounds the whole call: a frozen primary makes it time out.
    let mut tcfg = cfg;
    tcfg.search_timeout = Duration::from_millis(300);
    let frozen = cluster.masters().expect("masters")[1];
    Rt::Tokio.block_on(async {
        let provider = Provider::connect(Rt::Tokio.runtime(), tcfg).await.expect("provider");
        let ns = provider.create_namespace::<String, Doc>("people", opts(schema())).expect("namespace");
        ns.ensure_search_index().await.expect("index");
        cluster.pause(frozen).expect("pause");
        let t0 = std::time::Instant::now();
        let e = ns.query(&QueryOptions::new()).await;
        let took = t0.elapsed();
        cluster.resume(frozen).expect("resume");
        assert!(matches!(e, Err(CacheError::Timeout { op: "query", .. })), "{e:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        // Working again once the node is back.
        assert!(ns.query(&QueryOptions::new()).await.is_ok());
    });
}
