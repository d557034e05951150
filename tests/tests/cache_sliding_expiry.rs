//! Sliding expiry (the reference's expiry calculator on read and on update, spec §3.4 and
//! §15.21, which the Go provider never calls), every runtime, on a real cluster and on the
//! in-memory provider (the tests named `..._in_memory`):
//!
//! - `expire_after_read`: `get_if_present`, `get`, `bulk_get`, `bulk_get_with` and
//!   `get_entry` reset the remaining life of what they find (`PTTL` after the read is the read
//!   TTL, not what was left of the write's), in the same round trips as a plain read (the
//!   client's request count); `probe_entry`, iteration and misses change nothing; an entry kept
//!   alive by reads past its write TTL disappears once the reads stop;
//! - the reads of a tagged entry renew its membership in its tags, so an entry that reads keep
//!   alive past its write TTL is still found, deleted and counted by `invalidate_by_tags` (the
//!   membership's score is checked on the server);
//! - `expire_after_update`: a write of a key that exists gets the update TTL, a new key the
//!   create TTL (`set`, `bulk_set`, `compute`, a reload), an explicit TTL wins, and a tagged
//!   update's membership lives as long as the entry.

mod cache_support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use slotcache_rt::{Cache, Compute, NamespaceOptions, Provider, Ttl, Value};
use slotcache_tests::conformance::Rt;

use cache_support::{Backend, ns, on_both_providers, on_every_runtime, requests, s};

const LABEL: &str = "cache-sliding-expiry";

on_both_providers!(
    reads_extend_what_they_find_on,
    LABEL,
    reads_extend_what_they_find,
    reads_extend_what_they_find_in_memory
);
on_both_providers!(
    reads_keep_tagged_entries_listed_in_their_tags_on,
    LABEL,
    reads_keep_tagged_entries_listed_in_their_tags,
    reads_keep_tagged_entries_listed_in_their_tags_in_memory
);
on_both_providers!(
    updates_get_their_own_ttl_on,
    LABEL,
    updates_get_their_own_ttl,
    updates_get_their_own_ttl_in_memory
);

/// The key's `PTTL` on its owner.
fn pttl(c: &impl Backend, key: &str) -> i64 {
    c.raw(key.as_bytes(), &[b"PTTL", key.as_bytes()]).as_int().expect("PTTL")
}

/// The server time of the node owning `key`, in ms.
fn server_ms(c: &impl Backend, key: &str) -> f64 {
    let Value::Array(t) = c.raw(key.as_bytes(), &[b"TIME"]) else { panic!("TIME") };
    let part = |i: usize| -> f64 {
        std::str::from_utf8(t[i].as_bytes().expect("bulk")).expect("text").parse().expect("number")
    };
    part(0) * 1000.0 + part(1) / 1000.0
}

/// The score of `member` in the tag key `tag_key` (its expiry in server ms), if listed.
fn score(c: &impl Backend, tag_key: &str, member: &str) -> Option<f64> {
    let v = c.raw(tag_key.as_bytes(), &[b"ZSCORE", tag_key.as_bytes(), member.as_bytes()]);
    v.as_bytes().map(|b| std::str::from_utf8(b).expect("text").parse().expect("a score"))
}

fn sliding(p: &Provider, name: &str, read: Duration) -> Cache<String, String> {
    let o = NamespaceOptions::<String, String> { expire_after_read: Some(read), ..Default::default() };
    p.create_namespace(name, o).expect("namespace")
}

const SHORT: Duration = Duration::from_secs(5);
const READ: Duration = Duration::from_secs(60);

fn reads_extend_what_they_find_on(c: impl Backend) {
    on_every_runtime("reads_extend_what_they_find", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "sliding-read").await;
            let name = ns("slide", rt, "read");
            let cache = sliding(&p, &name, READ);
            let key = |k: &str| format!("{name}:{k}");
            let short = Ttl::After(SHORT);
            for k in ["a", "b", "c", "d", "e", "f", "g", "p"] {
                cache.set_with_ttl(&s(k), &s("v"), short, &[]).await.expect("set");
            }
            cache.set_with_ttl(&s("never"), &s("v"), Ttl::Never, &[]).await.expect("set");
            let extended = |k: &str| pttl(&c, &key(k)) > 50_000;
            assert!(!extended("a"), "written with 5 s");

            // A read is one request, as without sliding expiry.
            let before = requests(&p).await;
            assert_eq!(cache.get_if_present(&s("a")).await.expect("get"), Some(s("v")));
            assert_eq!(requests(&p).await - before, 1, "{}: one request", rt.name());
            assert!(extended("a"), "{}: get_if_present extends", rt.name());
            let got = cache.get(&s("b"), |_| async { Ok(s("loaded")) }).await.expect("get");
            assert_eq!(got, s("v"));
            assert!(extended("b"), "{}: get's hit extends", rt.name());
            let found = cache.bulk_get(&[s("c"), s("d"), s("missing")]).await.expect("bulk_get");
            assert_eq!(found.len(), 2);
            assert!(extended("c") && extended("d"), "{}: bulk_get extends", rt.name());
            let wanted = [s("e"), s("new")];
            let found = cache
                .bulk_get_with(&wanted, |m| async move { Ok(m.into_iter().map(|k| (k, s("n"))).collect()) })
                .await
                .expect("bulk_get_with");
            assert_eq!(found.len(), 2);
            assert!(extended("e"), "{}: bulk_get_with's hits extend", rt.name());
            let entry = cache.get_entry(&s("f")).await.expect("get_entry").expect("present");
            assert!(entry.ttl.is_some_and(|t| t > Duration::from_secs(50)), "{:?}", entry.ttl);
            assert!(extended("f"));
            assert_eq!(pttl(&c, &key("never")), -1);
            cache.get_if_present(&s("never")).await.expect("get");
            assert!(extended("never"), "{}: an entry without expiry gets the read TTL", rt.name());
            // Neither probe_entry nor iteration nor a miss changes anything.
            let entry = cache.probe_entry(&s("p")).await.expect("probe").expect("present");
            assert!(entry.ttl.is_some_and(|t| t <= SHORT), "{:?}", entry.ttl);
            let all: Vec<_> = cache.entries().collect().await;
            assert_eq!(all.len(), 10);
            assert!(!extended("g") && !extended("p"), "{}: probe and iteration leave the TTL", rt.name());
            assert_eq!(cache.get_if_present(&s("missing")).await.expect("miss"), None);
            assert_eq!(pttl(&c, &key("missing")), -2, "a miss creates nothing");

            // Kept alive by reads past its write TTL; gone once they stop.
            let quick = sliding(&p, &ns("slide", rt, "quick"), Duration::from_millis(400));
            quick
                .set_with_ttl(&s("k"), &s("v"), Ttl::After(Duration::from_millis(300)), &[])
                .await
                .expect("set");
            for _ in 0..8 {
                rt.sleep(Duration::from_millis(100)).await;
                assert_eq!(quick.get_if_present(&s("k")).await.expect("get"), Some(s("v")), "{}", rt.name());
            }
            rt.sleep(Duration::from_millis(600)).await;
            assert_eq!(quick.get_if_present(&s("k")).await.expect("get"), None, "{}: expired", rt.name());
            p.close().await;
        }
    });
}

fn reads_keep_tagged_entries_listed_in_their_tags_on(c: impl Backend) {
    on_every_runtime("reads_keep_tagged_entries_listed_in_their_tags", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "sliding-tags").await;
            let name = ns("slide", rt, "tags");
            let cache = sliding(&p, &name, Duration::from_secs(2));
            let tag_key = format!("tag:{{{name}:t}}");
            let member = format!("{name}:kept");
            cache
                .set_with_ttl(&s("kept"), &s("v"), Ttl::After(Duration::from_millis(300)), &["t"])
                .await
                .expect("set");
            // The token check of a read renews the membership: scored now + 2 s on the server.
            assert_eq!(cache.get_if_present(&s("kept")).await.expect("get"), Some(s("v")));
            let (now, sc) = (server_ms(&c, &tag_key), score(&c, &tag_key, &member).expect("listed"));
            assert!(sc > now + 1500.0, "{}: score {sc} vs now {now}", rt.name());
            // Kept alive by reads well past its write TTL.
            for _ in 0..6 {
                rt.sleep(Duration::from_millis(100)).await;
                assert_eq!(cache.get_if_present(&s("kept")).await.expect("get"), Some(s("v")));
            }
            // Another write to the tag prunes the members whose expiry has passed: not this one.
            cache.set(&s("other"), &s("w"), &["t"]).await.expect("set");
            assert!(score(&c, &tag_key, &member).is_some(), "{}: still listed", rt.name());
            assert_eq!(cache.invalidate_by_tags(&["t"]).await.expect("invalidate"), 2, "{}", rt.name());
            assert_eq!(pttl(&c, &member), -2, "{}: deleted, not left stale", rt.name());
            p.close().await;
        }
    });
}

fn updates_get_their_own_ttl_on(c: impl Backend) {
    on_every_runtime("updates_get_their_own_ttl", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = c.provider(rt, "sliding-update").await;
            let name = ns("slide", rt, "update");
            let o = NamespaceOptions::<String, String> {
                expiry: Some(Arc::new(|_: &String, _: &String| Ttl::After(SHORT))),
                expire_after_update: Some(Arc::new(|_: &String, _: &String| Ttl::After(READ))),
                ..Default::default()
            };
            let cache = p.create_namespace(&name, o).expect("namespace");
            let key = |k: &str| format!("{name}:{k}");
            let created = |k: &str| (1..=5000).contains(&pttl(&c, &key(k)));
            let updated = |k: &str| pttl(&c, &key(k)) > 50_000;
            cache.set(&s("a"), &s("1"), &[]).await.expect("set");
            assert!(created("a"), "{}: a new entry gets the create TTL", rt.name());
            cache.set(&s("a"), &s("2"), &[]).await.expect("set again");
            assert!(updated("a"), "{}: an update gets the update TTL", rt.name());
            cache
                .set_with_ttl(&s("a"), &s("3"), Ttl::After(Duration::from_secs(2)), &[])
                .await
                .expect("explicit");
            assert!((1..=2000).contains(&pttl(&c, &key("a"))), "{}: an explicit TTL wins", rt.name());

            cache.set(&s("b"), &s("1"), &[]).await.expect("set");
            cache.bulk_set(&[(s("b"), s("2")), (s("c"), s("1"))], &[]).await.expect("bulk_set");
            assert!(updated("b") && created("c"), "{}: bulk_set decides per key", rt.name());

            assert_eq!(
                cache.compute(&s("d"), |_| Compute::Set(s("1"))).await.expect("compute"),
                Some(s("1"))
            );
            assert!(created("d"), "{}: compute creating", rt.name());
            cache
                .compute(&s("d"), |v| Compute::Set(format!("{}+", v.expect("present"))))
                .await
                .expect("compute");
            assert!(updated("d"), "{}: compute updating", rt.name());

            cache.set(&s("e"), &s("1"), &[]).await.expect("set");
            cache.refresh(&s("e"), |_| async { Ok(s("reloaded")) }).await.expect("refresh");
            assert!(updated("e"), "{}: a reload of an existing entry is an update", rt.name());

            // A tagged update: the membership lives as long as the entry (the longer TTL).
            cache.set(&s("f"), &s("1"), &["t"]).await.expect("set");
            cache.set(&s("f"), &s("2"), &["t"]).await.expect("set again");
            let tag_key = format!("tag:{{{name}:t}}");
            let (now, sc) = (server_ms(&c, &tag_key), score(&c, &tag_key, &key("f")).expect("listed"));
            assert!(sc > now + 50_000.0 && updated("f"), "{}: score {sc}, now {now}", rt.name());
            p.close().await;
        }
    });
}
