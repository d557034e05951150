//! Tag operations race safely. A tagged set racing an invalidation of its tag either loses (a miss)
//! or stays findable: once both are done, a later invalidation of the tag always makes it a miss.
//! (The full history check under failover and migration is `tags_history.rs`.)
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.8.
//!
//! Dropping futures mid-operation is exercised at random in `cache_cancellation.rs`.

mod cache_support;

use slotcache_tests::conformance::Rt;

use cache_support::{Backend, ns, on_both_providers, on_every_runtime, s, string_ns};

const LABEL: &str = "cache-tag-race-no-orphan";

on_both_providers!(
    tagged_set_racing_its_tag_invalidation_leaves_no_orphan_on,
    LABEL,
    tagged_set_racing_its_tag_invalidation_leaves_no_orphan,
    tagged_set_racing_its_tag_invalidation_leaves_no_orphan_in_memory
);

fn tagged_set_racing_its_tag_invalidation_leaves_no_orphan_on(c: impl Backend) {
    on_every_runtime("tagged_set_racing_its_tag_invalidation_leaves_no_orphan", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "tag-race").await;
            let cache = string_ns(&p, &ns("race", rt, "a"));
            for i in 0..40 {
                let k = format!("k{i}");
                let (w, inv) = {
                    let (a, b) = (cache.clone(), cache.clone());
                    let k2 = k.clone();
                    futures_util::join!(
                        rt.spawn(async move { a.set(&k2, &s("v"), &["race"]).await }),
                        rt.spawn(async move { b.invalidate_by_tags(&["race"]).await })
                    )
                };
                w.expect("set");
                inv.expect("invalidate");
                let visible = cache.get_if_present(&k).await.expect("get").is_some();
                let n = cache.invalidate_by_tags(&["race"]).await.expect("invalidate again");
                assert!(!visible || n >= 1, "a visible value is found by the tag");
                assert_eq!(cache.get_if_present(&k).await.expect("get"), None, "round {i}");
            }
            p.close().await;
        }
    });
}
