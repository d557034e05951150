//! Closing a namespace does not close the shared client: it and every other namespace keep working;
//! only the provider's close ends them.
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.12.

mod cache_support;

use slotcache_rt::CacheError;
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, ns, on_both_providers, on_every_runtime, s, string_ns};

const LABEL: &str = "cache-namespace-close";

on_both_providers!(
    closing_a_namespace_keeps_the_shared_client_on,
    LABEL,
    closing_a_namespace_keeps_the_shared_client,
    closing_a_namespace_keeps_the_shared_client_in_memory
);

fn closing_a_namespace_keeps_the_shared_client_on(c: impl Backend) {
    on_every_runtime("closing_a_namespace_keeps_the_shared_client", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "close").await;
            let a = string_ns(&p, &ns("close", rt, "a"));
            let b = string_ns(&p, &ns("close", rt, "b"));
            a.set(&s("k"), &s("v"), &[]).await.expect("set");
            a.close();
            b.close();
            b.set(&s("k"), &s("w"), &[]).await.expect("b still works");
            assert_eq!(a.get_if_present(&s("k")).await.expect("a still works"), Some(s("v")));
            let again = string_ns(&p, &ns("close", rt, "a"));
            assert_eq!(again.get_if_present(&s("k")).await.expect("get"), Some(s("v")));
            p.close().await;
            assert_eq!(b.get_if_present(&s("k")).await, Err(CacheError::Closed));
        }
    });
}
