//! A user's unit test with the in-memory provider: no cluster, no network, and tokio's paused
//! clock drives the node's TTLs, so an hour-long expiry is tested in no time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use slotcache_tokio::{NamespaceOptions, ProviderConfig, Ttl};

#[tokio::test(start_paused = true)]
async fn ttls_follow_the_paused_clock() {
    let provider = slotcache_tokio::memory_provider(ProviderConfig::default()).await.expect("provider");
    let users =
        provider.create_namespace::<String, String>("users", NamespaceOptions::default()).expect("ns");
    let k = "alice".to_string();

    users
        .set_with_ttl(&k, &"Alice".into(), Ttl::After(Duration::from_secs(3600)), &["team:red"])
        .await
        .expect("set");
    tokio::time::advance(Duration::from_secs(3599)).await;
    assert_eq!(users.get_if_present(&k).await.expect("get"), Some("Alice".into()), "one second left");
    let ttl = users.get_entry(&k).await.expect("entry").expect("present").ttl.expect("a ttl");
    assert!(ttl <= Duration::from_secs(1), "{ttl:?}");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(users.get_if_present(&k).await.expect("get"), None, "expired on the paused clock");

    // A loader runs once; the tag invalidation removes what it stored.
    let calls = Arc::new(AtomicUsize::new(0));
    for _ in 0..2 {
        let n = calls.clone();
        let v = users
            .get(&k, move |k| async move {
                n.fetch_add(1, Ordering::SeqCst);
                Ok(format!("loaded {k}"))
            })
            .await
            .expect("get");
        assert_eq!(v, "loaded alice");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    users.set(&k, &"Alice".into(), &["team:red"]).await.expect("set");
    assert_eq!(users.invalidate_by_tags(&["team:red"]).await.expect("invalidate"), 1);
    assert_eq!(users.get_if_present(&k).await.expect("get"), None);
    provider.close().await;
}
