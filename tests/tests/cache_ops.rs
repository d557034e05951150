//! Cache API on a real cluster (3 masters + 3 replicas), every runtime: typed values, TTLs,
//! tags (replace semantics, exact counts), invalidate, compute family, bulk get/set across
//! slots, loaders with single-flight, entries with millisecond TTLs, iteration with exact counts
//! on a cluster with replicas, invalidate_all without FLUSHDB, and typed errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use slotcache_rt::{CacheError, Compute, NamespaceOptions, Provider, ProviderConfig, Ttl};
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::ALL;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    age: u32,
    tags: Vec<String>,
}

fn user(i: u32) -> User {
    User { name: format!("user {i} ✓"), age: i, tags: vec!["a".into(), "b".into()] }
}

#[test]
fn cache_operations_on_every_runtime() {
    let cluster = ClusterBuilder::new().masters(3).replicas(1).label("cache-ops").start().expect("cluster");
    let seeds: Vec<String> = cluster.seeds().iter().map(ToString::to_string).collect();
    for rt in ALL {
        let seeds = seeds.clone();
        rt.block_on(async move {
            let p = rt.name();
            let mut cfg = ProviderConfig::new(seeds);
            cfg.client_name = "slotcache-cache-test".into();
            let provider = Provider::connect(rt.runtime(), cfg).await.expect("provider");
            let users = provider
                .create_namespace::<String, User>(&format!("users-{p}"), NamespaceOptions::default())
                .expect("namespace");
            // Same name, same types: the same cache; other types: an error.
            assert!(
                provider
                    .create_namespace::<String, User>(&format!("users-{p}:"), NamespaceOptions::default())
                    .is_ok()
            );
            let e = provider
                .create_namespace::<String, String>(&format!("users-{p}"), NamespaceOptions::default());
            assert!(matches!(e, Err(CacheError::NamespaceConflict { .. })), "{e:?}");

            // set / get_if_present / typed values / unicode and punctuated keys.
            for i in 0..50 {
                users.set(&format!("k:{i}/ü {{x}}"), &user(i), &[]).await.expect("set");
            }
            for i in 0..50 {
                assert_eq!(
                    users.get_if_present(&format!("k:{i}/ü {{x}}")).await.expect("get"),
                    Some(user(i))
                );
            }
            assert_eq!(users.get_if_present(&"absent".to_string()).await.expect("miss"), None);

            // TTLs: milliseconds, one meaning for zero, no-expiry told apart from missing.
            users
                .set_with_ttl(&"short".into(), &user(1), Ttl::After(Duration::from_millis(150)), &[])
                .await
                .expect("ttl");
            let info = users.get_entry(&"short".into()).await.expect("entry").expect("present");
            assert!(info.ttl.expect("has ttl") <= Duration::from_millis(150));
            users.set_with_ttl(&"forever".into(), &user(2), Ttl::Never, &[]).await.expect("never");
            assert_eq!(users.get_entry(&"forever".into()).await.expect("entry").expect("present").ttl, None);
            assert!(users.probe_entry(&"missing".into()).await.expect("probe").is_none());
            let e = users.set_with_ttl(&"zero".into(), &user(3), Ttl::After(Duration::ZERO), &[]).await;
            assert!(matches!(e, Err(CacheError::InvalidTtl { .. })), "{e:?}");
            rt.sleep(Duration::from_millis(250)).await;
            assert_eq!(users.get_if_present(&"short".into()).await.expect("expired"), None);

            // Tags: exact counts, replace semantics, invalidate removes memberships.
            for i in 0..20 {
                let tags: &[&str] = if i % 2 == 0 { &["even", "all"] } else { &["odd", "all"] };
                users.set(&format!("t:{i}"), &user(i), tags).await.expect("tagged set");
            }
            users.set(&"t:0".into(), &user(0), &["odd"]).await.expect("re-set replaces tags");
            users.invalidate(&"t:2".into()).await.expect("invalidate");
            assert_eq!(
                users.invalidate_by_tags(&["even"]).await.expect("even"),
                8,
                "t:4..t:18 even, t:0 moved, t:2 gone"
            );
            assert_eq!(users.get_if_present(&"t:0".into()).await.expect("get"), Some(user(0)));
            assert_eq!(users.invalidate_by_tags(&["odd", "all"]).await.expect("odd+all"), 11, "t:0 + 10 odd");
            for i in 0..20 {
                assert_eq!(users.get_if_present(&format!("t:{i}")).await.expect("get"), None, "t:{i}");
            }
            assert_eq!(users.invalidate_by_tags(&["all"]).await.expect("again"), 0);

            // Compute family.
            let counter = provider
                .create_namespace::<String, u64>(&format!("counters-{p}"), NamespaceOptions::default())
                .expect("ns");
            let k = "c".to_string();
            let (v, stored) = counter.compute_if_absent(&k, || 10).await.expect("absent");
            assert_eq!((v, stored), (10, true));
            let (v, stored) = counter.compute_if_absent(&k, || 99).await.expect("present");
            assert_eq!((v, stored), (10, false));
            assert_eq!(
                counter.compute(&k, |c| Compute::Set(c.copied().unwrap_or(0) + 5)).await.expect("compute"),
                Some(15)
            );
            assert_eq!(counter.compute_if_present(&k, |_| Compute::Delete).await.expect("delete"), None);
            assert_eq!(counter.compute_if_present(&k, |c| Compute::Set(c + 1)).await.expect("absent"), None);
            // Concurrent increments: no lost update.
            let tasks: Vec<_> = (0..8)
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
            assert_eq!(counter.get_if_present(&"n".into()).await.expect("n"), Some(80));

            // Bulk across slots.
            let items: Vec<(String, User)> = (0..200).map(|i| (format!("b:{i}"), user(i))).collect();
            users.bulk_set(&items, &["bulk"]).await.expect("bulk set");
            let keys: Vec<String> = (0..250).map(|i| format!("b:{i}")).collect();
            let got = users.bulk_get(&keys).await.expect("bulk get");
            assert_eq!(got.len(), 200);
            assert_eq!(got[&"b:7".to_string()], user(7));
            let loads = Arc::new(AtomicUsize::new(0));
            let l = loads.clone();
            let got = users
                .bulk_get_with(&keys, move |missing| async move {
                    l.fetch_add(missing.len(), Ordering::SeqCst);
                    Ok(missing.into_iter().map(|k| (k, user(999))).collect())
                })
                .await
                .expect("bulk get with loader");
            assert_eq!(got.len(), 250);
            assert_eq!(loads.load(Ordering::SeqCst), 50);

            // Loader with single-flight: 20 concurrent callers, one load.
            let calls = Arc::new(AtomicUsize::new(0));
            let waiters: Vec<_> = (0..20)
                .map(|_| {
                    let users = users.clone();
                    let calls = calls.clone();
                    rt.spawn(async move {
                        users
                            .get(&"loaded".to_string(), move |_k| async move {
                                calls.fetch_add(1, Ordering::SeqCst);
                                Ok(user(42))
                            })
                            .await
                    })
                })
                .collect();
            for w in waiters {
                assert_eq!(w.await.expect("loaded"), user(42));
            }
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{p}: one load for 20 concurrent callers");
            let e = users.get(&"nf".to_string(), |_| async { Err(CacheError::NotFound) }).await;
            assert_eq!(e, Err(CacheError::NotFound));
            assert_eq!(users.get_if_present(&"nf".into()).await.expect("not cached"), None);

            // Iteration: exact counts on a cluster with replicas (primaries only).
            let ns_size = 50 + 1 + 200 + 50 + 1; // k:*, forever, b:* (+50 loaded), loaded
            let n_keys = users.keys().count().await;
            assert_eq!(n_keys, ns_size, "{p}: keys streamed once each");
            let mut n_entries = 0;
            let mut entries = users.entries();
            while let Some(e) = entries.next().await {
                e.expect("entry");
                n_entries += 1;
            }
            assert_eq!(n_entries, ns_size);
            assert_eq!(users.estimated_size().await.expect("size"), ns_size as u64);
            let s = users.stats();
            assert!(s.hits > 50 && s.misses > 0 && s.loads >= 2, "{s:?}");

            // invalidate_all: only this namespace, tag metadata included.
            let other = provider
                .create_namespace::<String, u64>(&format!("other-{p}"), NamespaceOptions::default())
                .expect("ns");
            other.set(&"keep".into(), &1, &["x"]).await.expect("set");
            assert!(users.invalidate_all().await.expect("invalidate_all") >= ns_size as u64);
            assert_eq!(users.keys().count().await, 0);
            assert_eq!(other.get_if_present(&"keep".into()).await.expect("other kept"), Some(1));
            assert!(matches!(provider.flush_all().await, Err(CacheError::UnsafeFlush)));
            provider.close().await;
            assert!(matches!(users.get_if_present(&"x".into()).await, Err(CacheError::Closed)));
        });
    }
}
