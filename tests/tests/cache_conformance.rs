//! The reference's shared conformance suite (spec §14.2), ported case by case to the cache API
//! on a real cluster (3 masters + 1 replica each) and on the in-memory provider (each scenario is
//! two tests, `<name>` and `<name>_in_memory`), on tokio, smol and async-std: CoreOps,
//! BulkOps, ComputeOps, Iteration (exact counts although every shard has a replica), TTL. The
//! Concurrency and ContextCancellation groups are in `cache_concurrency.rs`.
//!
//! Where the reference only asked for a bound (`>= 2`, `>= 1`), the exact figure is asserted,
//! since this implementation gives exact counts. The key and tag layout is checked byte for
//! byte against the reference's (spec §3.1), so Go and Rust services can share a namespace.

mod cache_support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use slotcache_rt::{Cache, CacheError, Compute, NamespaceOptions, Ttl, Value};
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, ns, on_both_providers, on_every_runtime, s};

const LABEL: &str = "cache-conf";

on_both_providers!(core_ops_on, LABEL, core_ops, core_ops_in_memory);
on_both_providers!(bulk_ops_on, LABEL, bulk_ops, bulk_ops_in_memory);
on_both_providers!(compute_ops_on, LABEL, compute_ops, compute_ops_in_memory);
on_both_providers!(
    iteration_exact_counts_on,
    LABEL,
    iteration_exact_counts,
    iteration_exact_counts_in_memory
);
on_both_providers!(ttl_on, LABEL, ttl, ttl_in_memory);
on_both_providers!(
    layout_matches_reference_on,
    LABEL,
    layout_matches_reference,
    layout_matches_reference_in_memory
);

async fn string_ns(p: &slotcache_rt::Provider, name: &str) -> Cache<String, String> {
    p.create_namespace::<String, String>(name, NamespaceOptions::default()).expect("namespace")
}

/// CoreOps: get_if_present, set (overwrite, tags), get with a loader (cached, error),
/// invalidate, get_entry/probe_entry, estimated_size, stats, close.
fn core_ops_on(c: impl Backend) {
    on_every_runtime("core_ops", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "core-ops").await;
            let cache = string_ns(&p, &ns("core", rt, "a")).await;

            // GetIfPresent_Missing / _Found, Set_Basic, Set_Overwrite.
            assert_eq!(cache.get_if_present(&s("missing")).await.expect("miss"), None);
            cache.set(&s("k"), &s("v1"), &[]).await.expect("set");
            assert_eq!(cache.get_if_present(&s("k")).await.expect("hit"), Some(s("v1")));
            cache.set(&s("k"), &s("v2"), &[]).await.expect("overwrite");
            assert_eq!(cache.get_if_present(&s("k")).await.expect("hit"), Some(s("v2")), "second value wins");

            // Set_WithTags: readable.
            cache.set(&s("tagged"), &s("tv"), &["t1", "t2"]).await.expect("tagged set");
            assert_eq!(cache.get_if_present(&s("tagged")).await.expect("hit"), Some(s("tv")));

            // Get_WithLoader, _Cached, _Error.
            let calls = Arc::new(AtomicUsize::new(0));
            for _ in 0..2 {
                let n = calls.clone();
                let v = cache
                    .get(&s("key"), move |k| async move {
                        n.fetch_add(1, Ordering::SeqCst);
                        Ok(format!("loaded-{k}"))
                    })
                    .await
                    .expect("get");
                assert_eq!(v, "loaded-key");
            }
            assert_eq!(calls.load(Ordering::SeqCst), 1, "the second get is served from the cache");
            let e = cache
                .get(&s("err"), |_| async { Err(CacheError::loader(std::io::Error::other("boom"))) })
                .await;
            let Err(CacheError::Loader(source)) = &e else { panic!("the loader's error: {e:?}") };
            let io = source.downcast_ref::<std::io::Error>().expect("the loader's own error, as it is");
            assert_eq!((io.kind(), io.to_string()), (std::io::ErrorKind::Other, "boom".to_string()));
            assert_eq!(e.expect_err("failed").to_string(), "loader failed: boom");
            assert_eq!(cache.get_if_present(&s("err")).await.expect("nothing stored"), None);

            // Invalidate_Existing / _Missing.
            assert!(cache.invalidate(&s("k")).await.expect("invalidate"), "it existed");
            assert_eq!(cache.get_if_present(&s("k")).await.expect("gone"), None);
            assert!(!cache.invalidate(&s("k")).await.expect("missing is no error"));

            // GetEntry_Found / _Missing, ProbeEntry_Found.
            let e = cache.get_entry(&s("tagged")).await.expect("entry").expect("found");
            assert_eq!(e.value, "tv");
            assert_eq!(e.tags, vec![s("t1"), s("t2")]);
            assert!(cache.get_entry(&s("nope")).await.expect("entry").is_none());
            let before = cache.stats();
            let e = cache.probe_entry(&s("tagged")).await.expect("probe").expect("found");
            assert_eq!(e.value, "tv");
            assert_eq!(cache.stats(), before, "a probe is not a read");

            // EstimatedSize: 0 on a fresh namespace, exactly what was stored after.
            let fresh = string_ns(&p, &ns("core", rt, "fresh")).await;
            assert_eq!(fresh.estimated_size().await.expect("size"), 0);
            fresh.set(&s("one"), &s("1"), &[]).await.expect("set");
            assert_eq!(fresh.estimated_size().await.expect("size"), 1);

            // Stats: a hit ratio in [0, 1], and the counts themselves.
            let st = cache.stats();
            let ratio = st.hits as f64 / (st.hits + st.misses) as f64;
            assert!((0.0..=1.0).contains(&ratio), "{st:?}");
            assert!(st.hits >= 4 && st.misses >= 4 && st.loads == 1 && st.load_failures == 1, "{st:?}");

            // Close: a namespace's close is harmless, the provider's ends everything.
            cache.close();
            assert_eq!(cache.get_if_present(&s("tagged")).await.expect("still open"), Some(s("tv")));
            p.close().await;
            assert_eq!(cache.get_if_present(&s("tagged")).await, Err(CacheError::Closed));
        }
    });
}

/// BulkOps: bulk_get (cached, missing, mixed, empty), bulk_set (tags, empty),
/// invalidate_by_tags (single, multiple, no match: exact counts), invalidate_all, bulk_refresh.
fn bulk_ops_on(c: impl Backend) {
    on_every_runtime("bulk_ops", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "bulk-ops").await;
            let cache = string_ns(&p, &ns("bulk", rt, "a")).await;
            let calls = Arc::new(AtomicUsize::new(0));
            let loader = |calls: Arc<AtomicUsize>| {
                move |keys: Vec<String>| async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(keys.into_iter().map(|k| (k.clone(), format!("loaded-{k}"))).collect())
                }
            };

            // BulkGet_AllCached: two results, loader not called.
            cache.bulk_set(&[(s("c1"), s("v1")), (s("c2"), s("v2"))], &[]).await.expect("bulk set");
            let got =
                cache.bulk_get_with(&[s("c1"), s("c2")], loader(calls.clone())).await.expect("bulk get");
            assert_eq!(got.len(), 2);
            assert_eq!(got[&s("c1")], "v1");
            assert_eq!(calls.load(Ordering::SeqCst), 0, "everything was cached");
            // The same without a loader at all (the reference's nil loader).
            assert_eq!(cache.bulk_get(&[s("c1"), s("c2")]).await.expect("bulk get").len(), 2);

            // BulkGet_AllMissing: loader called once, values stored.
            let got = cache.bulk_get_with(&[s("m1"), s("m2")], loader(calls.clone())).await.expect("load");
            assert_eq!(got, HashMap::from([(s("m1"), s("loaded-m1")), (s("m2"), s("loaded-m2"))]));
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            assert_eq!(cache.get_if_present(&s("m1")).await.expect("stored"), Some(s("loaded-m1")));

            // BulkGet_Mixed.
            let got = cache.bulk_get_with(&[s("c1"), s("x1")], loader(calls.clone())).await.expect("mixed");
            assert_eq!(got, HashMap::from([(s("c1"), s("v1")), (s("x1"), s("loaded-x1"))]));
            assert_eq!(calls.load(Ordering::SeqCst), 2);

            // BulkGet_Empty.
            assert!(cache.bulk_get_with(&[], loader(calls.clone())).await.expect("empty").is_empty());
            assert_eq!(calls.load(Ordering::SeqCst), 2, "no loader call for no key");

            // BulkSet_Basic / _Empty.
            cache.bulk_set(&[], &["t"]).await.expect("empty bulk set");
            let items: Vec<(String, String)> = (0..30).map(|i| (format!("b{i}"), format!("v{i}"))).collect();
            cache.bulk_set(&items, &[]).await.expect("bulk set");
            for (k, v) in &items {
                assert_eq!(cache.get_if_present(k).await.expect("get").as_ref(), Some(v));
            }

            // BulkSet_WithTags: exactly 2 invalidated, both gone.
            cache.bulk_set(&[(s("bt1"), s("1")), (s("bt2"), s("2"))], &["bulk-tag"]).await.expect("tagged");
            assert_eq!(cache.invalidate_by_tags(&["bulk-tag"]).await.expect("by tag"), 2);
            assert_eq!(cache.bulk_get(&[s("bt1"), s("bt2")]).await.expect("gone").len(), 0);

            // InvalidateByTags_Single: exactly 2; the product key survives.
            cache.set(&s("u1"), &s("1"), &["user"]).await.expect("set");
            cache.set(&s("u2"), &s("2"), &["user"]).await.expect("set");
            cache.set(&s("p1"), &s("3"), &["product"]).await.expect("set");
            assert_eq!(cache.invalidate_by_tags(&["user"]).await.expect("user"), 2);
            assert_eq!(cache.get_if_present(&s("p1")).await.expect("kept"), Some(s("3")));
            assert_eq!(cache.get_if_present(&s("u1")).await.expect("gone"), None);

            // InvalidateByTags_Multiple: tag1 + tag2, exactly 3 (one key has both); tag3 survives.
            cache.set(&s("a"), &s("1"), &["tag1"]).await.expect("set");
            cache.set(&s("b"), &s("2"), &["tag2"]).await.expect("set");
            cache.set(&s("ab"), &s("3"), &["tag1", "tag2"]).await.expect("set");
            cache.set(&s("c"), &s("4"), &["tag3"]).await.expect("set");
            assert_eq!(cache.invalidate_by_tags(&["tag1", "tag2"]).await.expect("multi"), 3);
            assert_eq!(cache.get_if_present(&s("c")).await.expect("kept"), Some(s("4")));

            // InvalidateByTags_NoMatch.
            assert_eq!(cache.invalidate_by_tags(&["no-such-tag"]).await.expect("none"), 0);
            assert_eq!(cache.get_if_present(&s("c")).await.expect("kept"), Some(s("4")));
            assert_eq!(cache.invalidate_by_tags(&[]).await.expect("no tags"), 0);

            // InvalidateAll: size > 0 before, == 0 after; InvalidateAll_Empty.
            assert!(cache.estimated_size().await.expect("size") > 0);
            assert!(cache.invalidate_all().await.expect("invalidate_all") > 0);
            assert_eq!(cache.estimated_size().await.expect("size"), 0);
            assert_eq!(cache.invalidate_all().await.expect("empty invalidate_all"), 0);

            // BulkRefresh: stores what the loader returns, in the background.
            let stored = cache
                .bulk_refresh(vec![s("r1"), s("r2")], |keys| async move {
                    Ok(keys.into_iter().map(|k| (k.clone(), format!("fresh-{k}"))).collect())
                })
                .await
                .expect("bulk refresh");
            assert_eq!(stored, 2);
            assert_eq!(cache.get_if_present(&s("r2")).await.expect("refreshed"), Some(s("fresh-r2")));

            // A reload keeps each entry's tags (stored untagged, it would escape their
            // invalidation): refresh and bulk_refresh of tagged entries, with two tag sets.
            cache.set(&s("rt1"), &s("old"), &["rt-a"]).await.expect("set");
            cache.set(&s("rt2"), &s("old"), &["rt-a", "rt-b"]).await.expect("set");
            cache.set(&s("rt3"), &s("old"), &["rt-b"]).await.expect("set");
            let v = cache.refresh(&s("rt1"), |_| async { Ok(s("new")) }).await.expect("refresh");
            assert_eq!(v, "new");
            let stored = cache
                .bulk_refresh(vec![s("rt2"), s("rt3"), s("rt-absent")], |keys| async move {
                    Ok(keys.into_iter().map(|k| (k, s("new"))).collect())
                })
                .await
                .expect("bulk refresh");
            assert_eq!(stored, 3);
            for k in ["rt1", "rt2", "rt3", "rt-absent"] {
                assert_eq!(cache.get_if_present(&s(k)).await.expect("get"), Some(s("new")), "{k}");
            }
            let tags = |k: &'static str| {
                let cache = cache.clone();
                async move { cache.get_entry(&s(k)).await.expect("entry").expect("present").tags }
            };
            assert_eq!(tags("rt1").await, vec![s("rt-a")]);
            assert_eq!(tags("rt2").await, vec![s("rt-a"), s("rt-b")]);
            assert_eq!(tags("rt3").await, vec![s("rt-b")]);
            assert!(tags("rt-absent").await.is_empty(), "absent before: stored untagged");
            assert_eq!(cache.invalidate_by_tags(&["rt-a"]).await.expect("by tag"), 2);
            assert_eq!(cache.invalidate_by_tags(&["rt-b"]).await.expect("by tag"), 1);
            assert_eq!(cache.get_if_present(&s("rt-absent")).await.expect("kept"), Some(s("new")));
            p.close().await;
        }
    });
}

/// ComputeOps: compute (create, update, delete, no-op), compute_if_absent,
/// compute_if_present, compute_with_ttl, with the function-call counts of the reference.
fn compute_ops_on(c: impl Backend) {
    on_every_runtime("compute_ops", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "compute-ops").await;
            let cache = string_ns(&p, &ns("compute", rt, "a")).await;

            // Compute_CreateNew.
            let v = cache
                .compute(&s("new"), |cur| {
                    assert!(cur.is_none(), "fn sees found = false");
                    Compute::Set(s("new-value"))
                })
                .await
                .expect("create");
            assert_eq!(v, Some(s("new-value")));
            assert_eq!(cache.get_if_present(&s("new")).await.expect("stored"), Some(s("new-value")));

            // Compute_UpdateExisting.
            cache.set(&s("up"), &s("original"), &[]).await.expect("set");
            let v = cache
                .compute(&s("up"), |cur| {
                    assert_eq!(cur.map(String::as_str), Some("original"));
                    Compute::Set(s("updated"))
                })
                .await
                .expect("update");
            assert_eq!(v, Some(s("updated")));

            // Compute_Delete.
            let v = cache.compute(&s("up"), |_| Compute::Delete).await.expect("delete");
            assert_eq!(v, None);
            assert_eq!(cache.get_if_present(&s("up")).await.expect("gone"), None);

            // Compute_Noop.
            cache.set(&s("noop"), &s("original"), &[]).await.expect("set");
            assert_eq!(
                cache.compute(&s("noop"), |_| Compute::Keep).await.expect("keep"),
                Some(s("original"))
            );
            assert_eq!(cache.compute(&s("absent"), |_| Compute::Keep).await.expect("keep"), None);

            // ComputeIfAbsent_Absent / _Present.
            let mut n = 0;
            let r = cache
                .compute_if_absent(&s("ia"), || {
                    n += 1;
                    s("computed")
                })
                .await
                .expect("absent");
            assert_eq!((r, n), ((s("computed"), true), 1));
            cache.set(&s("ip"), &s("existing"), &[]).await.expect("set");
            let mut n = 0;
            let r = cache
                .compute_if_absent(&s("ip"), || {
                    n += 1;
                    s("other")
                })
                .await
                .expect("present");
            assert_eq!((r, n), ((s("existing"), false), 0));

            // ComputeIfPresent_Absent / _Present.
            let mut n = 0;
            let r = cache
                .compute_if_present(&s("nothing"), |_| {
                    n += 1;
                    Compute::Set(s("x"))
                })
                .await
                .expect("absent");
            assert_eq!((r, n), (None, 0));
            let mut n = 0;
            let r = cache
                .compute_if_present(&s("ip"), |cur| {
                    n += 1;
                    assert_eq!(cur, "existing");
                    Compute::Set(s("updated"))
                })
                .await
                .expect("present");
            assert_eq!((r, n), (Some(s("updated")), 1));

            // ComputeWithTTL: 5 s, readable, with that TTL.
            let v = cache
                .compute_with_ttl(&s("ttl"), |_| (s("computed"), Ttl::After(Duration::from_secs(5))))
                .await
                .expect("with ttl");
            assert_eq!(v, Some(s("computed")));
            let e = cache.get_entry(&s("ttl")).await.expect("entry").expect("found");
            assert_eq!(e.value, "computed");
            let ttl = e.ttl.expect("a TTL");
            assert!(ttl > Duration::from_secs(4) && ttl <= Duration::from_secs(5), "{ttl:?}");
            p.close().await;
        }
    });
}

/// Iteration: empty, three items (entries, keys, values: exactly 3 each although every shard
/// has a replica), early break.
fn iteration_exact_counts_on(c: impl Backend) {
    on_every_runtime("iteration_exact_counts", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "iteration").await;
            let cache = string_ns(&p, &ns("iter", rt, "a")).await;

            // All_Empty, Keys_Empty, Values_Empty.
            assert_eq!(cache.entries().count().await, 0);
            assert_eq!(cache.keys().count().await, 0);
            assert_eq!(cache.values().count().await, 0);

            // All_WithItems, Keys_WithItems, Values_WithItems: exactly 3.
            for i in 0..3 {
                cache.set(&format!("k{i}"), &format!("v{i}"), &[]).await.expect("set");
            }
            let entries: Vec<(String, String)> = cache.entries().map(|r| r.expect("entry")).collect().await;
            assert_eq!(entries.len(), 3, "{entries:?}");
            let map: HashMap<_, _> = entries.into_iter().collect();
            assert_eq!(map.len(), 3);
            assert_eq!(map[&s("k1")], "v1");
            let keys: Vec<String> = cache.keys().map(|r| r.expect("key")).collect().await;
            assert_eq!(keys.len(), 3, "{keys:?}");
            assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 3, "no duplicates");
            let values: Vec<String> = cache.values().map(|r| r.expect("value")).collect().await;
            assert_eq!(values.len(), 3, "{values:?}");

            // All_EarlyBreak: stopping after 3 of 10 stops the iteration.
            for i in 3..10 {
                cache.set(&format!("k{i}"), &format!("v{i}"), &[]).await.expect("set");
            }
            let mut seen = 0;
            let mut stream = cache.entries();
            while let Some(e) = stream.next().await {
                e.expect("entry");
                seen += 1;
                if seen == 3 {
                    break;
                }
            }
            drop(stream);
            assert_eq!(seen, 3);
            assert_eq!(cache.keys().count().await, 10);
            p.close().await;
        }
    });
}

/// TTL: set_with_ttl of 200 ms (present, then absent after 300 ms), set_expires_after of
/// 200 ms, a 1 h TTL still present.
fn ttl_on(c: impl Backend) {
    on_every_runtime("ttl", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "ttl").await;
            let cache = string_ns(&p, &ns("ttl", rt, "a")).await;
            let short = Ttl::After(Duration::from_millis(200));
            cache.set_with_ttl(&s("lazy"), &s("v"), short, &[]).await.expect("set");
            cache.set(&s("expires"), &s("v"), &[]).await.expect("set");
            assert!(
                cache.set_expires_after(&s("expires"), Duration::from_millis(200)).await.expect("pexpire")
            );
            cache
                .set_with_ttl(&s("hour"), &s("v"), Ttl::After(Duration::from_secs(3600)), &[])
                .await
                .expect("1h");
            assert_eq!(cache.get_if_present(&s("lazy")).await.expect("present"), Some(s("v")));
            rt.sleep(Duration::from_millis(300)).await;
            assert_eq!(cache.get_if_present(&s("lazy")).await.expect("expired"), None);
            assert_eq!(cache.get_if_present(&s("expires")).await.expect("expired"), None);
            assert_eq!(cache.get_if_present(&s("hour")).await.expect("present"), Some(s("v")));
            assert!(!cache.set_expires_after(&s("lazy"), Duration::from_secs(1)).await.expect("missing"));
            p.close().await;
        }
    });
}

/// The stored layout is the reference's (spec §3.1, §14.1 `ClusterHashTag` and `TagPrefixes`):
/// data key `NS UK` holding the bare JSON bytes, tag key `tag:{NS tag}`; no `keytags:` key.
fn layout_matches_reference_on(c: impl Backend) {
    on_every_runtime("layout_matches_reference", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "layout").await;
            let name = ns("layout", rt, "users");
            let cache = string_ns(&p, &name).await;
            cache.set(&s("alice"), &s("hello"), &[]).await.expect("set");
            let fk = format!("{name}:alice");
            assert_eq!(
                c.raw(fk.as_bytes(), &[b"GET", fk.as_bytes()]),
                Value::Bulk(bytes::Bytes::from_static(b"\"hello\"")),
                "untagged values are the reference's bare JSON bytes"
            );
            cache.set(&s("bob"), &s("hi"), &["admin"]).await.expect("set");
            let tk = format!("tag:{{{name}:admin}}");
            assert_eq!(c.raw(tk.as_bytes(), &[b"TYPE", tk.as_bytes()]), Value::Simple("zset".into()));
            let rk = format!("keytags:{name}:bob");
            assert_eq!(c.raw(rk.as_bytes(), &[b"EXISTS", rk.as_bytes()]), Value::Int(0));
            // A Go service's plain value is readable as is.
            let gk = format!("{name}:from-go");
            c.raw(gk.as_bytes(), &[b"SET", gk.as_bytes(), b"\"written by go\""]);
            assert_eq!(cache.get_if_present(&s("from-go")).await.expect("read"), Some(s("written by go")));
            p.close().await;
        }
    });
}
