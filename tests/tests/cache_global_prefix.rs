//! The configuration's global prefix is honoured: every key (data and tag) starts with it, a
//! provider without it does not see those keys, and `invalidate_all` removes them all.
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.2.

mod cache_support;

use futures_util::StreamExt;
use slotcache_rt::Value;
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, ns, on_both_providers, on_every_runtime, s, string_ns};

const LABEL: &str = "cache-global-prefix";

on_both_providers!(
    global_prefix_starts_every_key_and_separates_providers_on,
    LABEL,
    global_prefix_starts_every_key_and_separates_providers,
    global_prefix_starts_every_key_and_separates_providers_in_memory
);

fn global_prefix_starts_every_key_and_separates_providers_on(c: impl Backend) {
    on_every_runtime("global_prefix_starts_every_key_and_separates_providers", |rt: Rt| {
        let c = c.clone();
        async move {
            let global = format!("app-{}", rt.name());
            let mut cfg = c.config("global");
            cfg.namespace.clone_from(&global);
            let p = c.provider_with(rt, cfg).await;
            let plain = c.provider(rt, "no-global").await;
            let name = ns("gp", rt, "users");
            let cache = string_ns(&p, &name);
            let bare = string_ns(&plain, &name);
            cache.set(&s("alice"), &s("A"), &["admin"]).await.expect("set");
            bare.set(&s("bob"), &s("B"), &["admin"]).await.expect("set");
            let data = format!("{global}:{name}:alice");
            assert_eq!(c.raw(data.as_bytes(), &[b"EXISTS", data.as_bytes()]), Value::Int(1), "{data}");
            let tag = format!("{global}:tag:{{{name}:admin}}");
            assert_eq!(
                c.raw(tag.as_bytes(), &[b"TYPE", tag.as_bytes()]),
                Value::Simple("zset".into()),
                "{tag}"
            );
            let unprefixed = format!("{name}:alice");
            assert_eq!(c.raw(unprefixed.as_bytes(), &[b"EXISTS", unprefixed.as_bytes()]), Value::Int(0));
            // Each provider sees its own.
            assert_eq!(cache.keys().map(|k| k.expect("key")).collect::<Vec<_>>().await, vec![s("alice")]);
            assert_eq!(bare.keys().map(|k| k.expect("key")).collect::<Vec<_>>().await, vec![s("bob")]);
            assert_eq!(bare.get_if_present(&s("alice")).await.expect("get"), None);
            assert_eq!(cache.invalidate_by_tags(&["admin"]).await.expect("by tag"), 1);
            assert_eq!(
                bare.get_if_present(&s("bob")).await.expect("get"),
                Some(s("B")),
                "other prefix untouched"
            );
            cache.set(&s("carol"), &s("C"), &["staff"]).await.expect("set");
            cache.invalidate_all().await.expect("invalidate_all");
            assert!(c.scan_keys(&format!("{global}:*")).is_empty(), "nothing left under the prefix");
            assert_eq!(bare.get_if_present(&s("bob")).await.expect("get"), Some(s("B")));
            plain.close().await;
            p.close().await;
        }
    });
}
