//! `SCAN` patterns are escaped: a namespace named with `* ? [ ] \` sees only its own keys, although
//! another namespace's keys match its name read as a glob. Namespaces whose prefixes overlap are
//! refused.
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.10.

mod cache_support;

use futures_util::StreamExt;
use slotcache_rt::{CacheError, NamespaceOptions};
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, on_both_providers, on_every_runtime, s, string_ns};

const LABEL: &str = "cache-namespace-glob-escaped";

on_both_providers!(
    glob_characters_in_a_namespace_are_escaped_and_overlaps_refused_on,
    LABEL,
    glob_characters_in_a_namespace_are_escaped_and_overlaps_refused,
    glob_characters_in_a_namespace_are_escaped_and_overlaps_refused_in_memory
);

fn glob_characters_in_a_namespace_are_escaped_and_overlaps_refused_on(c: impl Backend) {
    on_every_runtime("glob_characters_in_a_namespace_are_escaped_and_overlaps_refused", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "glob").await;
            let r = rt.name();
            // Read as a glob, `a*b?c[d]e\` matches `aXXbYcde:`... (the `\:` is a literal `:`).
            let globby = string_ns(&p, &format!("{r}-a*b?c[d]e\\"));
            let victim = string_ns(&p, &format!("{r}-aXXbYcde"));
            for i in 0..5 {
                globby.set(&format!("g{i}"), &s("mine"), &["t"]).await.expect("set");
                victim.set(&format!("v{i}"), &s("other"), &["t"]).await.expect("set");
            }
            assert_eq!(globby.keys().count().await, 5);
            assert_eq!(globby.estimated_size().await.expect("size"), 5);
            assert_eq!(globby.invalidate_all().await.expect("invalidate_all"), 6, "5 entries + the tag key");
            assert_eq!(victim.keys().count().await, 5, "the other namespace is intact");
            assert_eq!(victim.get_if_present(&s("v0")).await.expect("get"), Some(s("other")));
            assert_eq!(victim.invalidate_by_tags(&["t"]).await.expect("by tag"), 5);

            // Overlapping prefixes, either way round, are refused.
            string_ns(&p, &format!("{r}-user"));
            for name in [format!("{r}-user:admin"), format!("{r}-user:admin:")] {
                let e = p.create_namespace::<String, String>(&name, NamespaceOptions::default());
                assert!(matches!(&e, Err(CacheError::Config(m)) if m.contains("overlap")), "{name}: {e:?}");
            }
            string_ns(&p, &format!("{r}-org:team:"));
            let e = p.create_namespace::<String, String>(&format!("{r}-org"), NamespaceOptions::default());
            assert!(matches!(&e, Err(CacheError::Config(m)) if m.contains("overlap")), "{e:?}");
            p.close().await;
        }
    });
}
