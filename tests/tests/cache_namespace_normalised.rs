//! Namespace names are normalised (`users` and `users:` are one cache, sharing its counters);
//! asking again with other types or other options is refused instead of silently ignoring them;
//! unusable names are typed errors.
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.13.

mod cache_support;

use std::sync::Arc;
use std::time::Duration;

use slotcache_core::cache::codec::Binary;
use slotcache_core::cache::transform::Zstd;
use slotcache_rt::{Cache, CacheError, NamespaceOptions, Ttl};
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, ns, on_both_providers, on_every_runtime, s, string_ns};

const LABEL: &str = "cache-namespace-normalised";

on_both_providers!(
    namespace_names_are_normalised_and_conflicts_refused_on,
    LABEL,
    namespace_names_are_normalised_and_conflicts_refused,
    namespace_names_are_normalised_and_conflicts_refused_in_memory
);

fn namespace_names_are_normalised_and_conflicts_refused_on(c: impl Backend) {
    on_every_runtime("namespace_names_are_normalised_and_conflicts_refused", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "normalised").await;
            let name = ns("norm", rt, "users");
            let a = string_ns(&p, &name);
            let b = string_ns(&p, &format!("{name}:"));
            assert_eq!(a.name(), format!("{name}:"));
            assert_eq!(a.name(), b.name());
            a.set(&s("k"), &s("v"), &[]).await.expect("set");
            assert_eq!(b.get_if_present(&s("k")).await.expect("get"), Some(s("v")));
            assert_eq!(a.stats().hits, 1, "one cache, one set of counters");

            let conflict = |e: Result<Cache<String, String>, CacheError>, what: &str| {
                assert!(matches!(e, Err(CacheError::NamespaceConflict { .. })), "{what}: {e:?}");
            };
            let e = p.create_namespace::<String, u64>(&name, NamespaceOptions::default());
            assert!(matches!(e, Err(CacheError::NamespaceConflict { .. })), "other value type: {e:?}");
            let e = p.create_namespace::<u64, String>(&name, NamespaceOptions::default());
            assert!(matches!(e, Err(CacheError::NamespaceConflict { .. })), "other key type: {e:?}");
            let o = NamespaceOptions::<String, String> { codec: Arc::new(Binary), ..Default::default() };
            conflict(p.create_namespace(&name, o), "other codec");
            let o = NamespaceOptions::<String, String> {
                transforms: vec![Arc::new(Zstd::default())],
                ..Default::default()
            };
            conflict(p.create_namespace(&name, o), "other transformers");
            let o = NamespaceOptions::<String, String> {
                refresh_after: Some(Duration::from_secs(1)),
                ..Default::default()
            };
            conflict(p.create_namespace(&name, o), "refresh_after");
            let o = NamespaceOptions::<String, String> {
                cluster_lock: Some(Duration::from_secs(1)),
                ..Default::default()
            };
            conflict(p.create_namespace(&name, o), "cluster_lock");
            let o = NamespaceOptions::<String, String> {
                expiry: Some(Arc::new(|_: &String, _: &String| Ttl::Never)),
                ..Default::default()
            };
            conflict(p.create_namespace(&name, o), "an expiry function");

            for bad in ["", "has{brace", "has}brace", "ctl\u{1}char", "tag:", "keytags:x"] {
                let e = p.create_namespace::<String, String>(bad, NamespaceOptions::default());
                assert!(matches!(e, Err(CacheError::Namespace(_))), "{bad:?}: {e:?}");
            }
            p.close().await;
        }
    });
}
