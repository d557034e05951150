//! A tag key's expiry follows its members (A5): one `Ttl::Never` member makes the tag key
//! persistent, and once the last such member leaves (rewritten with a TTL, invalidated by key,
//! deleted by an invalidation of another of its tags) the key gets back the expiry of its
//! longest-lived remaining member; a persistent tag left with its token alone (after
//! `invalidate_by_tags`) expires after the 60 s grace. Before, `PERSIST` stuck: the tag key
//! stayed forever, so tag metadata grew without bound.
//!
//! Read with raw `PTTL` of the tag key on its master. On a real cluster (3 masters + 1 replica
//! each), on tokio, smol and async-std. The same rule is checked on the simulator's twins in
//! `sim::tag_scripts`, and the twins against this Lua in `tags_scripts_match_twins.rs`.

mod cache_support;

use std::time::Duration;

use slotcache_rt::{Ttl, Value};
use slotcache_tests::Cluster;
use slotcache_tests::conformance::Rt;

use cache_support::{cluster, ns, on_every_runtime, provider, raw, s, shared, string_ns};

const LABEL: &str = "tags-never-member-leaves";

/// The tag key's `PTTL` (-1: no expiry, -2: absent).
fn pttl(c: &Cluster, tag_key: &str) -> i64 {
    match raw(c, tag_key.as_bytes(), &[b"PTTL", tag_key.as_bytes()]) {
        Value::Int(n) => n,
        other => panic!("PTTL {tag_key}: {other:?}"),
    }
}

/// Asserts that the key expires within `(lo, hi]` ms.
fn expires_within(c: &Cluster, tag_key: &str, lo: i64, hi: i64, what: &str) {
    let t = pttl(c, tag_key);
    assert!(t > lo && t <= hi, "{what}: PTTL {t} not in ({lo}, {hi}]");
}

#[test]
fn the_tag_key_expires_again_once_its_last_never_member_leaves() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("the_tag_key_expires_again_once_its_last_never_member_leaves", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "never-leaves").await;
            let name = ns("never", rt, "a");
            let cache = string_ns(&p, &name);
            let tag = format!("tag:{{{name}:t}}");
            let minute = Ttl::After(Duration::from_secs(60));
            cache.set_with_ttl(&s("long"), &s("v"), minute, &["t"]).await.expect("set long");
            expires_within(&c, &tag, 55_000, 60_000, "one member of 60 s");
            cache.set_with_ttl(&s("forever"), &s("v"), Ttl::Never, &["t"]).await.expect("set forever");
            assert_eq!(pttl(&c, &tag), -1, "a member without expiry: persistent");

            // Invalidated by key: the key gets back the expiry of `long`.
            assert!(cache.invalidate(&s("forever")).await.expect("invalidate"));
            expires_within(&c, &tag, 50_000, 60_000, "after the Never member was invalidated");

            // Rewritten with a TTL: the same.
            cache.set_with_ttl(&s("forever"), &s("v"), Ttl::Never, &["t"]).await.expect("set forever");
            assert_eq!(pttl(&c, &tag), -1);
            let short = Ttl::After(Duration::from_secs(5));
            cache.set_with_ttl(&s("forever"), &s("v"), short, &["t"]).await.expect("set again with a TTL");
            expires_within(&c, &tag, 50_000, 60_000, "after the Never member was rewritten with 5 s");

            // Deleted by an invalidation of another of its tags: it leaves `t` too.
            cache.set_with_ttl(&s("forever"), &s("v"), Ttl::Never, &["t", "u"]).await.expect("set forever");
            assert_eq!(pttl(&c, &tag), -1);
            assert_eq!(cache.invalidate_by_tags(&["u"]).await.expect("invalidate u"), 1);
            expires_within(&c, &tag, 50_000, 60_000, "after the Never member was deleted through tag u");

            // Invalidated through the tag itself: the tag keeps its (new) token alone; it had no
            // expiry, so it takes the grace.
            cache.set_with_ttl(&s("forever"), &s("v"), Ttl::Never, &["w"]).await.expect("set forever");
            let w = format!("tag:{{{name}:w}}");
            assert_eq!(pttl(&c, &w), -1);
            assert_eq!(cache.invalidate_by_tags(&["w"]).await.expect("invalidate w"), 1);
            expires_within(&c, &w, 50_000, 60_000, "a persistent tag left with its token alone");
            p.close().await;
        }
    });
}
