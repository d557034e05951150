//! `refresh_after` and `set_refreshable_after` work: past the refresh time, `get` returns the old
//! value at once and reloads in the background; the new value replaces it.
//!
//! On a real cluster (3 masters + 1 replica each) and on the in-memory provider (the tests
//! named `..._in_memory`), on tokio, smol and async-std. The
//! reference's weakness this shows fixed: spec §15.21.

mod cache_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use slotcache_rt::NamespaceOptions;
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, eventually, ns, on_both_providers, on_every_runtime, s, string_ns};

const LABEL: &str = "cache-refresh-after";

on_both_providers!(
    past_refresh_after_get_serves_the_old_value_and_reloads_in_background_on,
    LABEL,
    past_refresh_after_get_serves_the_old_value_and_reloads_in_background,
    past_refresh_after_get_serves_the_old_value_and_reloads_in_background_in_memory
);

fn past_refresh_after_get_serves_the_old_value_and_reloads_in_background_on(c: impl Backend) {
    on_every_runtime("past_refresh_after_get_serves_the_old_value_and_reloads_in_background", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "refresh").await;
            let o = NamespaceOptions::<String, String> {
                refresh_after: Some(Duration::from_millis(150)),
                ..Default::default()
            };
            let cache = p.create_namespace(&ns("refresh", rt, "a"), o).expect("namespace");
            let plain = string_ns(&p, &ns("refresh", rt, "b"));
            let loads = Arc::new(AtomicUsize::new(0));
            let loader = |v: &'static str, loads: Arc<AtomicUsize>, delay: Duration| {
                move |_k: String| async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    rt.sleep(delay).await;
                    Ok(s(v))
                }
            };
            assert_eq!(
                cache.get(&s("k"), loader("v1", loads.clone(), Duration::ZERO)).await.expect("get"),
                "v1"
            );
            let at = cache.get_entry(&s("k")).await.expect("entry").expect("found").refreshable_at;
            assert!(at.is_some());
            // Before the refresh time: served, no load.
            assert_eq!(
                cache.get(&s("k"), loader("unused", loads.clone(), Duration::ZERO)).await.expect("get"),
                "v1"
            );
            assert_eq!(loads.load(Ordering::SeqCst), 1);
            rt.sleep(Duration::from_millis(200)).await;
            // Past it: the old value at once, while the reload is held until `get` returned.
            let (release_tx, release_rx) = smol::channel::bounded::<()>(1);
            let l = loads.clone();
            let v = cache
                .get(&s("k"), move |_| async move {
                    l.fetch_add(1, Ordering::SeqCst);
                    let _ = release_rx.recv().await;
                    Ok(s("v2"))
                })
                .await
                .expect("get");
            assert_eq!(v, "v1", "the old value is served without waiting for the reload");
            assert_eq!(cache.get_if_present(&s("k")).await.expect("get"), Some(s("v1")), "until it lands");
            release_tx.try_send(()).expect("the reload is waiting");
            eventually(rt, Duration::from_secs(5), "the reloaded value", || {
                let cache = cache.clone();
                async move { cache.get_if_present(&s("k")).await.expect("get") == Some(s("v2")) }
            })
            .await;
            assert_eq!(loads.load(Ordering::SeqCst), 2);

            // set_refreshable_after on a namespace without refresh_after.
            plain.set(&s("k"), &s("old"), &[]).await.expect("set");
            assert!(plain.set_refreshable_after(&s("k"), Duration::from_millis(50)).await.expect("mark"));
            assert!(
                !plain.set_refreshable_after(&s("missing"), Duration::from_millis(50)).await.expect("mark")
            );
            rt.sleep(Duration::from_millis(100)).await;
            let v = plain.get(&s("k"), loader("new", loads.clone(), Duration::ZERO)).await.expect("get");
            assert_eq!(v, "old");
            eventually(rt, Duration::from_secs(5), "the refreshed value", || {
                let plain = plain.clone();
                async move { plain.get_if_present(&s("k")).await.expect("get") == Some(s("new")) }
            })
            .await;
            p.close().await;
        }
    });
}
