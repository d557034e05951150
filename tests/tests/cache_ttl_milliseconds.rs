//! TTLs in milliseconds (`PTTL`), and "no expiry" told apart from "missing".
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.15.

mod cache_support;

use std::time::Duration;

use slotcache_rt::Ttl;
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, ns, on_both_providers, on_every_runtime, s, string_ns};

const LABEL: &str = "cache-ttl-milliseconds";

on_both_providers!(
    ttls_are_in_milliseconds_and_no_expiry_is_not_missing_on,
    LABEL,
    ttls_are_in_milliseconds_and_no_expiry_is_not_missing,
    ttls_are_in_milliseconds_and_no_expiry_is_not_missing_in_memory
);

fn ttls_are_in_milliseconds_and_no_expiry_is_not_missing_on(c: impl Backend) {
    on_every_runtime("ttls_are_in_milliseconds_and_no_expiry_is_not_missing", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "pttl").await;
            let cache = string_ns(&p, &ns("pttl", rt, "a"));
            cache
                .set_with_ttl(&s("ms"), &s("v"), Ttl::After(Duration::from_millis(1_234)), &["t"])
                .await
                .expect("set");
            let ttl = cache.get_entry(&s("ms")).await.expect("entry").expect("found").ttl.expect("a TTL");
            assert!(ttl > Duration::from_millis(1_000) && ttl <= Duration::from_millis(1_234), "{ttl:?}");
            assert_ne!(ttl.subsec_millis(), 0, "not whole seconds: {ttl:?}");
            assert!(cache.set_expires_after(&s("ms"), Duration::from_millis(777)).await.expect("pexpire"));
            let ttl = cache.probe_entry(&s("ms")).await.expect("probe").expect("found").ttl.expect("a TTL");
            assert!(ttl > Duration::from_millis(500) && ttl <= Duration::from_millis(777), "{ttl:?}");
            cache.set_with_ttl(&s("never"), &s("v"), Ttl::Never, &[]).await.expect("set");
            assert_eq!(
                cache.get_entry(&s("never")).await.expect("entry").expect("found").ttl,
                None,
                "no expiry"
            );
            assert!(cache.get_entry(&s("missing")).await.expect("entry").is_none(), "missing");
            let default = cache.get_entry(&s("ms")).await.expect("entry").expect("found");
            assert_eq!(default.tags, vec![s("t")]);
            p.close().await;
        }
    });
}
