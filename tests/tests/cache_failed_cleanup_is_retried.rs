//! A failed clean-up is retried by the next invalidation of the tag (A6).
//!
//! `invalidate_by_tags` swaps the tag's token, which also erases the tag's member list, then
//! deletes the old members. Here the delete of one member cannot run: its primary is paused
//! for writes (`CLIENT PAUSE .. WRITE`) past the call's short `bulk_operation_timeout`, and the
//! cache's connections to it are killed before the pause ends, so the queued delete never
//! runs. The call must fail, and the entry survives (stale: never served). Then, with the node
//! back, a second `invalidate_by_tags` of the tag must delete it: the first call listed it in
//! the tag again. Afterwards no key of the namespace carries the tag's old token (raw scan of
//! the masters). The test-only variant with bug A6 (no re-listing) is run too, and the
//! survivor must still be there after the second call: what this test checks would catch it.
//!
//! On a real cluster (3 masters + 1 replica each), on tokio, smol and async-std.

mod cache_support;

use std::time::Duration;

use bytes::Bytes;
use slotcache_rt::cache::testing;
use slotcache_rt::{Cache, CacheError, Value};
use slotcache_tests::Cluster;
use slotcache_tests::conformance::Rt;

use cache_support::{
    cluster, config, exclusive, ns, on_every_runtime, provider_with, raw, roles, s, scan_keys, string_ns,
};

const LABEL: &str = "cache-failed-cleanup-is-retried";

/// The tag's current token (raw `ZRANGEBYSCORE tag -1 -1`).
fn token(c: &Cluster, tag_key: &str) -> Bytes {
    match raw(c, tag_key.as_bytes(), &[b"ZRANGEBYSCORE", tag_key.as_bytes(), b"-1", b"-1"]) {
        Value::Array(v) => v.first().and_then(Value::as_bytes).expect("a token").slice(1..),
        other => panic!("{tag_key}: {other:?}"),
    }
}

/// The keys of namespace `name` on the masters whose stored bytes hold `token`.
fn carrying(c: &Cluster, masters: &[usize], name: &str, token: &[u8]) -> Vec<Bytes> {
    scan_keys(c, masters, &format!("{name}:*"))
        .into_iter()
        .filter(|k| match raw(c, k, &[b"GET", k]) {
            Value::Bulk(v) => v.windows(token.len()).any(|w| w == token),
            _ => false,
        })
        .collect()
}

/// Runs the scenario on `cache` (namespace `name`), invalidating with `invalidate`; returns the
/// keys still carrying the old token after the second invalidation.
async fn scenario<F>(
    c: &Cluster,
    masters: &[usize],
    cache: &Cache<String, String>,
    name: &str,
    invalidate: F,
) -> Vec<Bytes>
where
    F: AsyncFn(&Cache<String, String>) -> Result<u64, CacheError>,
{
    let tag_key = format!("tag:{{{name}:t}}");
    let tag_node = c.owner_of_key(tag_key.as_bytes()).expect("owner");
    // A key whose primary is not the tag's (the re-listing must be able to run).
    let user_key = (0..200)
        .map(|i| format!("k{i}"))
        .find(|k| c.owner_of_key(format!("{name}:{k}").as_bytes()).expect("owner") != tag_node)
        .expect("a key on another primary");
    let data_node = c.owner_of_key(format!("{name}:{user_key}").as_bytes()).expect("owner");
    cache.set(&user_key, &s("v"), &["t"]).await.expect("set");
    let old = token(c, &tag_key);

    // The delete of the entry is held past the call's budget, then its connection is killed.
    c.cmd(data_node, ["CLIENT", "PAUSE", "3000", "WRITE"]).expect("CLIENT PAUSE");
    let first = invalidate(cache).await;
    c.cmd(data_node, ["CLIENT", "KILL", "TYPE", "normal"]).expect("CLIENT KILL");
    c.cmd(data_node, ["CLIENT", "UNPAUSE"]).expect("CLIENT UNPAUSE");
    assert!(first.is_err(), "the delete round failed, so the call fails: {first:?}");
    eprintln!("[figure] {name}: the first invalidation failed: {}", first.expect_err("checked"));
    assert_eq!(cache.get_if_present(&user_key).await.expect("get"), None, "stale: never served");
    assert_eq!(carrying(c, masters, name, &old).len(), 1, "the entry survived the failed delete");

    // The node is back: the next invalidation of the tag is the retry.
    let _ = invalidate(cache).await.expect("second invalidation");
    carrying(c, masters, name, &old)
}

#[test]
fn a_failed_clean_up_is_retried_by_the_next_invalidation() {
    let c = cluster(LABEL);
    let _only_me = exclusive();
    let (masters, _) = roles(&c);
    on_every_runtime("a_failed_clean_up_is_retried_by_the_next_invalidation", |rt: Rt| {
        let (c, masters) = (c.clone(), masters.clone());
        async move {
            let mut cfg = config(&c, LABEL);
            cfg.bulk_operation_timeout = Duration::from_millis(300);
            let p = provider_with(rt, cfg).await;

            let name = ns(LABEL, rt, "fixed");
            let cache = string_ns(&p, &name);
            let left =
                scenario(&c, &masters, &cache, &name, async |cache| cache.invalidate_by_tags(&["t"]).await)
                    .await;
            assert!(left.is_empty(), "the survivor was listed again and deleted by the retry: {left:?}");

            // Bug A6 reintroduced: nothing lists the survivor, and the retry cannot find it.
            let name = ns(LABEL, rt, "a6");
            let cache = string_ns(&p, &name);
            let left = scenario(&c, &masters, &cache, &name, async |cache| {
                testing::invalidate_by_tags_without_relisting(cache, &["t"]).await
            })
            .await;
            assert_eq!(left.len(), 1, "the A6 variant leaks the survivor");
            p.close().await;
        }
    });
}
