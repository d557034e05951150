//! A zero TTL is refused with `InvalidTtl` before anything is sent (set, set_with_ttl, bulk_set
//! through an expiry function, set_expires_after, which would otherwise delete the key,
//! compute_with_ttl; a zero default TTL at construction); sub-millisecond TTLs round up.
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.6.

mod cache_support;

use std::sync::Arc;
use std::time::Duration;

use slotcache_rt::{CacheError, NamespaceOptions, Provider, ProviderConfig, Ttl};
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, ns, on_both_providers, on_every_runtime, requests, s, string_ns};

const LABEL: &str = "cache-zero-ttl-refused";

on_both_providers!(
    zero_ttl_is_refused_before_anything_is_sent_on,
    LABEL,
    zero_ttl_is_refused_before_anything_is_sent,
    zero_ttl_is_refused_before_anything_is_sent_in_memory
);

fn zero_ttl_is_refused_before_anything_is_sent_on(c: impl Backend) {
    on_every_runtime("zero_ttl_is_refused_before_anything_is_sent", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "zero-ttl").await;
            let cache = string_ns(&p, &ns("zttl", rt, "a"));
            let o =
                NamespaceOptions::<String, String> {
                    expiry: Some(Arc::new(|_k: &String, v: &String| {
                        if v == "zero" { Ttl::After(Duration::ZERO) } else { Ttl::Default }
                    })),
                    ..Default::default()
                };
            let by_fn = p.create_namespace(&ns("zttl", rt, "fn"), o).expect("namespace");
            cache.set(&s("k"), &s("v"), &["t"]).await.expect("set");
            let zero = Ttl::After(Duration::ZERO);
            let before = requests(&p).await;
            let invalid = |e: Result<(), CacheError>| matches!(e, Err(CacheError::InvalidTtl { .. }));
            assert!(invalid(cache.set_with_ttl(&s("k"), &s("w"), zero, &["t"]).await));
            assert!(invalid(by_fn.set(&s("k"), &s("zero"), &[]).await));
            assert!(invalid(by_fn.bulk_set(&[(s("a"), s("fine")), (s("b"), s("zero"))], &[]).await));
            assert!(invalid(cache.set_expires_after(&s("k"), Duration::ZERO).await.map(drop)));
            assert_eq!(requests(&p).await, before, "nothing was sent");
            let e = cache.compute_with_ttl(&s("k"), |_| (s("w"), zero)).await;
            assert!(matches!(e, Err(CacheError::InvalidTtl { .. })), "{e:?}");
            assert_eq!(
                cache.get_if_present(&s("k")).await.expect("get"),
                Some(s("v")),
                "not deleted, not changed"
            );
            assert_eq!(by_fn.get_if_present(&s("a")).await.expect("get"), None, "no part of the bulk set");
            // 1 µs is 1 ms, not 0 (which the server refuses, or which deletes with PEXPIRE).
            cache
                .set_with_ttl(&s("tiny"), &s("v"), Ttl::After(Duration::from_micros(1)), &[])
                .await
                .expect("set");
            assert!(cache.set_expires_after(&s("k"), Duration::from_micros(1)).await.expect("pexpire"));
            rt.sleep(Duration::from_millis(20)).await;
            assert_eq!(cache.get_if_present(&s("k")).await.expect("get"), None);
            // A zero default TTL: refused at construction, before any connection (no server at
            // this address).
            let mut cfg = ProviderConfig::new(["127.0.0.1:1"]);
            cfg.default_ttl = Duration::ZERO;
            let e = Provider::connect(rt.runtime(), cfg).await;
            assert!(matches!(e, Err(CacheError::InvalidTtl { .. })), "{e:?}");
            p.close().await;
        }
    });
}
