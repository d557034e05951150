//! One test per weakness of the reference (spec §15) that applies to this cache, each named
//! after its item and showing the fix on a real cluster (3 masters + 1 replica each), on
//! tokio, smol and async-std.
//!
//! Not here, and why:
//! - §15.4 (JSON/search storage mode) and §15.11 (search query builder): search is a later
//!   issue; this cache has no search storage mode yet.
//! - §15.22 (documentation claims): not behaviour.
//! - Dropping futures mid-operation (part of §15.8 and §15.14) is also exercised at random in
//!   `cache_cancellation.rs`; the full tag-protocol history check is `tags_history.rs`.

mod cache_support;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use slotcache_core::cache::codec::Binary;
use slotcache_core::cache::transform::Zstd;
use slotcache_rt::{Cache, CacheError, Compute, NamespaceOptions, Provider, ProviderConfig, Ttl, Value};
use slotcache_tests::conformance::Rt;

use cache_support::{
    calls, cluster, config, eventually, exclusive, is_server_error, members, ns, on_every_runtime, provider,
    provider_with, raw, requests, roles, s, scan_keys, shared, string_ns,
};

const LABEL: &str = "cache-fixes";

/// §15.1: fan-out goes to primaries only, so on a cluster where every shard has a replica,
/// iteration yields each entry once, `estimated_size` is exact, `invalidate_all` deletes
/// exactly what there is; no replica ever receives a `SCAN`.
#[test]
fn fix_15_1_fanout_primaries_only() {
    let c = cluster(LABEL);
    let _g = shared();
    let (masters, replicas) = roles(&c);
    assert_eq!((masters.len(), replicas.len()), (3, 3));
    on_every_runtime("fix_15_1_fanout_primaries_only", |rt: Rt| {
        let c = c.clone();
        let masters = masters.clone();
        async move {
            let p = provider(rt, &c, "fanout").await;
            let cache = string_ns(&p, &ns("fanout", rt, "a"));
            let items: Vec<(String, String)> = (0..120).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
            cache.bulk_set(&items[..100], &[]).await.expect("bulk set");
            cache.bulk_set(&items[100..], &["t1", "t2"]).await.expect("tagged bulk set");
            let keys: Vec<String> = cache.keys().map(|k| k.expect("key")).collect().await;
            assert_eq!(keys.len(), 120, "each key once");
            assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 120);
            assert_eq!(cache.entries().count().await, 120);
            assert_eq!(cache.values().count().await, 120);
            assert_eq!(cache.estimated_size().await.expect("size"), 120, "no double count");
            assert_eq!(
                cache.invalidate_all().await.expect("invalidate_all"),
                122,
                "120 entries + 2 tag keys"
            );
            assert_eq!(cache.estimated_size().await.expect("size"), 0);
            assert!(calls(&c, &masters, "scan") > 0);
            p.close().await;
        }
    });
    assert_eq!(calls(&c, &replicas, "scan"), 0, "no SCAN ever reached a replica");
}

/// §15.2: the configuration's global prefix is honoured: every key (data and tag) starts with
/// it, a provider without it does not see those keys, and `invalidate_all` removes them all.
#[test]
fn fix_15_2_global_prefix_honoured() {
    let c = cluster(LABEL);
    let _g = shared();
    let (masters, _) = roles(&c);
    on_every_runtime("fix_15_2_global_prefix_honoured", |rt: Rt| {
        let c = c.clone();
        let masters = masters.clone();
        async move {
            let global = format!("app-{}", rt.name());
            let mut cfg = config(&c, "global");
            cfg.namespace.clone_from(&global);
            let p = provider_with(rt, cfg).await;
            let plain = provider(rt, &c, "no-global").await;
            let name = ns("gp", rt, "users");
            let cache = string_ns(&p, &name);
            let bare = string_ns(&plain, &name);
            cache.set(&s("alice"), &s("A"), &["admin"]).await.expect("set");
            bare.set(&s("bob"), &s("B"), &["admin"]).await.expect("set");
            let data = format!("{global}:{name}:alice");
            assert_eq!(raw(&c, data.as_bytes(), &[b"EXISTS", data.as_bytes()]), Value::Int(1), "{data}");
            let tag = format!("{global}:tag:{{{name}:admin}}");
            assert_eq!(
                raw(&c, tag.as_bytes(), &[b"TYPE", tag.as_bytes()]),
                Value::Simple("zset".into()),
                "{tag}"
            );
            let unprefixed = format!("{name}:alice");
            assert_eq!(raw(&c, unprefixed.as_bytes(), &[b"EXISTS", unprefixed.as_bytes()]), Value::Int(0));
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
            assert!(
                scan_keys(&c, &masters, &format!("{global}:*")).is_empty(),
                "nothing left under the prefix"
            );
            assert_eq!(bare.get_if_present(&s("bob")).await.expect("get"), Some(s("B")));
            plain.close().await;
            p.close().await;
        }
    });
}

/// A value of any shape, the Rust counterpart of the reference's `any` values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Any {
    Int(i64),
    Text(String),
    List(Vec<Self>),
    Map(BTreeMap<String, Self>),
}

/// §15.3: values of a dynamic shape (the reference's `(string, any)` namespaces, whose every
/// read failed) read back, through every read path.
#[test]
fn fix_15_3_dynamic_values_read_back() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("fix_15_3_dynamic_values_read_back", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "any").await;
            let cache: Cache<String, Any> =
                p.create_namespace(&ns("any", rt, "a"), NamespaceOptions::default()).expect("namespace");
            let values = [
                Any::Int(42),
                Any::Text(s("hello")),
                Any::List(vec![Any::Int(1), Any::Text(s("two"))]),
                Any::Map(BTreeMap::from([(s("k"), Any::List(vec![]))])),
            ];
            for (i, v) in values.iter().enumerate() {
                cache.set(&format!("v{i}"), v, &["any"]).await.expect("set");
            }
            for (i, v) in values.iter().enumerate() {
                assert_eq!(cache.get_if_present(&format!("v{i}")).await.expect("get").as_ref(), Some(v));
                assert_eq!(&cache.get_entry(&format!("v{i}")).await.expect("entry").expect("found").value, v);
            }
            let keys: Vec<String> = (0..4).map(|i| format!("v{i}")).collect();
            assert_eq!(cache.bulk_get(&keys).await.expect("bulk").len(), 4);
            assert_eq!(cache.values().count().await, 4);
            let v =
                cache.get(&s("loaded"), |_| async { Ok(Any::Text(s("from loader"))) }).await.expect("get");
            assert_eq!(v, Any::Text(s("from loader")));
            let v = cache.compute(&s("v0"), |_| Compute::Set(Any::Int(43))).await.expect("compute");
            assert_eq!(v, Some(Any::Int(43)));
            p.close().await;
        }
    });
}

/// A value whose encoding fails for 13.
#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Fragile(u32);

impl Serialize for Fragile {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        if self.0 == 13 {
            return Err(serde::ser::Error::custom("unlucky number"));
        }
        ser.serialize_u32(self.0)
    }
}

/// §15.5: compute returns the value it computed and wrote (never a re-read), applies
/// sub-second TTLs in milliseconds, and never reports success for a write it did not make:
/// an unencodable value, a zero TTL and a key of another type are errors that leave the entry
/// as it was; only a real concurrent change counts as a conflict, retried a bounded number of
/// times.
#[test]
fn fix_15_5_compute_returns_computed_value_and_checks_writes() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("fix_15_5_compute_returns_computed_value_and_checks_writes", |rt: Rt| {
        let c = c.clone();
        async move {
            let mut cfg = config(&c, "compute-fix");
            cfg.max_compute_retries = 3;
            let p = provider_with(rt, cfg).await;
            let name = ns("cmp", rt, "a");
            let cache: Cache<String, Fragile> =
                p.create_namespace(&name, NamespaceOptions::default()).expect("ns");
            let k = s("k");

            // The computed value, even when what was written is already gone when it returns
            // (1 µs rounds up to 1 ms, never down to "EX 0").
            let v = cache
                .compute_with_ttl(&k, |_| (Fragile(7), Ttl::After(Duration::from_micros(1))))
                .await
                .expect("compute");
            assert_eq!(v, Some(Fragile(7)));
            rt.sleep(Duration::from_millis(20)).await;
            assert_eq!(cache.get_if_present(&k).await.expect("get"), None, "written with PX 1, expired");
            // Sub-second TTLs in milliseconds.
            let v = cache
                .compute_with_ttl(&k, |_| (Fragile(8), Ttl::After(Duration::from_millis(400))))
                .await
                .expect("compute");
            assert_eq!(v, Some(Fragile(8)));
            let ttl = cache.get_entry(&k).await.expect("entry").expect("found").ttl.expect("ttl");
            assert!(ttl > Duration::from_millis(250) && ttl <= Duration::from_millis(400), "{ttl:?}");

            // Failed writes are errors and change nothing.
            cache.set(&k, &Fragile(1), &[]).await.expect("set");
            let e = cache.compute(&k, |_| Compute::Set(Fragile(13))).await;
            assert!(matches!(e, Err(CacheError::Codec(_))), "{e:?}");
            let e = cache.compute_with_ttl(&k, |_| (Fragile(2), Ttl::After(Duration::ZERO))).await;
            assert!(matches!(e, Err(CacheError::InvalidTtl { .. })), "{e:?}");
            let e = cache.compute_if_absent(&s("absent"), || Fragile(13)).await;
            assert!(matches!(e, Err(CacheError::Codec(_))), "{e:?}");
            assert_eq!(cache.get_if_present(&k).await.expect("get"), Some(Fragile(1)), "unchanged");
            assert_eq!(cache.get_if_present(&s("absent")).await.expect("get"), None);
            let list = format!("{name}:list");
            raw(&c, list.as_bytes(), &[b"RPUSH", list.as_bytes(), b"x"]);
            let e = cache.compute(&s("list"), |_| Compute::Set(Fragile(3))).await;
            assert!(is_server_error(&e, b"WRONGTYPE"), "{e:?}");
            assert_eq!(raw(&c, list.as_bytes(), &[b"TYPE", list.as_bytes()]), Value::Simple("list".into()));

            // A real conflict (the key changes between the read and the write) is retried: the
            // function runs again and its value is the one returned.
            let fk = format!("{name}:k");
            let runs = AtomicUsize::new(0);
            let v = cache
                .compute(&k, |cur| {
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        raw(&c, fk.as_bytes(), &[b"SET", fk.as_bytes(), b"100"]);
                    }
                    Compute::Set(Fragile(cur.expect("present").0 + 1))
                })
                .await
                .expect("compute");
            assert_eq!((v, runs.load(Ordering::SeqCst)), (Some(Fragile(101)), 2));
            // Always changed: `ComputeConflict` after exactly max_compute_retries attempts.
            let runs = AtomicUsize::new(0);
            let e = cache
                .compute(&k, |_| {
                    let n = runs.fetch_add(1, Ordering::SeqCst);
                    raw(&c, fk.as_bytes(), &[b"SET", fk.as_bytes(), format!("{}", 200 + n).as_bytes()]);
                    Compute::Set(Fragile(0))
                })
                .await;
            assert_eq!(e, Err(CacheError::ComputeConflict { attempts: 3 }));
            assert_eq!(runs.load(Ordering::SeqCst), 3);
            p.close().await;
        }
    });
}

/// §15.6: a zero TTL is refused with `InvalidTtl` before anything is sent (set, set_with_ttl,
/// bulk_set through an expiry function, set_expires_after, which would otherwise delete the
/// key, compute_with_ttl; a zero default TTL at construction); sub-millisecond TTLs round up.
#[test]
fn fix_15_6_zero_ttl_rejected_before_sending() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("fix_15_6_zero_ttl_rejected_before_sending", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "zero-ttl").await;
            let cache = string_ns(&p, &ns("zttl", rt, "a"));
            let o =
                NamespaceOptions::<String, String> {
                    expiry: Some(Arc::new(|_k: &String, v: &String| {
                        if v == "zero" { Ttl::After(Duration::ZERO) } else { Ttl::Default }
                    })),
                    ..Default::default()
                };
            let by_fn = p.create_namespace(&ns("zttl", rt, "fn"), o).expect("namespace");
            cache.set(&s("k"), &s("v"), &["t"]).await.expect("set");
            let zero = Ttl::After(Duration::ZERO);
            let before = requests(&p).await;
            let invalid = |e: Result<(), CacheError>| matches!(e, Err(CacheError::InvalidTtl { .. }));
            assert!(invalid(cache.set_with_ttl(&s("k"), &s("w"), zero, &["t"]).await));
            assert!(invalid(by_fn.set(&s("k"), &s("zero"), &[]).await));
            assert!(invalid(by_fn.bulk_set(&[(s("a"), s("fine")), (s("b"), s("zero"))], &[]).await));
            assert!(invalid(cache.set_expires_after(&s("k"), Duration::ZERO).await.map(drop)));
            assert_eq!(requests(&p).await, before, "nothing was sent");
            let e = cache.compute_with_ttl(&s("k"), |_| (s("w"), zero)).await;
            assert!(matches!(e, Err(CacheError::InvalidTtl { .. })), "{e:?}");
            assert_eq!(
                cache.get_if_present(&s("k")).await.expect("get"),
                Some(s("v")),
                "not deleted, not changed"
            );
            assert_eq!(by_fn.get_if_present(&s("a")).await.expect("get"), None, "no part of the bulk set");
            // 1 µs is 1 ms, not 0 (which the server refuses, or which deletes with PEXPIRE).
            cache
                .set_with_ttl(&s("tiny"), &s("v"), Ttl::After(Duration::from_micros(1)), &[])
                .await
                .expect("set");
            assert!(cache.set_expires_after(&s("k"), Duration::from_micros(1)).await.expect("pexpire"));
            rt.sleep(Duration::from_millis(20)).await;
            assert_eq!(cache.get_if_present(&s("k")).await.expect("get"), None);
            // A zero default TTL: refused at construction, before any connection (no server at
            // this address).
            let mut cfg = ProviderConfig::new(["127.0.0.1:1"]);
            cfg.default_ttl = Duration::ZERO;
            let e = Provider::connect(rt.runtime(), cfg).await;
            assert!(matches!(e, Err(CacheError::InvalidTtl { .. })), "{e:?}");
            p.close().await;
        }
    });
}

/// §15.7: no tag rot. Counts are exact (expired, invalidated, rewritten-without-the-tag and
/// already-deleted entries are not counted); an invalidated entry leaves its other tags (by
/// `invalidate` and by `invalidate_by_tags`); expired members are pruned; a tag's key expires
/// with its last member; setting a key again replaces its tags; `invalidate_all` removes the
/// tag keys too.
#[test]
fn fix_15_7_tag_rot() {
    let c = cluster(LABEL);
    let _g = shared();
    let (masters, _) = roles(&c);
    on_every_runtime("fix_15_7_tag_rot", |rt: Rt| {
        let c = c.clone();
        let masters = masters.clone();
        async move {
            let p = provider(rt, &c, "tag-rot").await;
            let name = ns("rot", rt, "a");
            let cache = string_ns(&p, &name);
            let tag_key = |t: &str| format!("tag:{{{name}:{t}}}");
            let fk = |k: &str| Bytes::from(format!("{name}:{k}"));
            let short = Ttl::After(Duration::from_millis(50));

            // Exact counts: of five entries written with `t`, two still carry it.
            cache.set_with_ttl(&s("expired"), &s("v"), short, &["t"]).await.expect("set");
            for k in ["invalidated", "untagged", "retagged", "live"] {
                cache.set(&s(k), &s("v"), &["t"]).await.expect("set");
            }
            cache.invalidate(&s("invalidated")).await.expect("invalidate");
            cache.set(&s("untagged"), &s("v2"), &[]).await.expect("rewritten without the tag");
            cache.set(&s("retagged"), &s("v2"), &["t"]).await.expect("rewritten with the tag");
            rt.sleep(Duration::from_millis(100)).await;
            assert_eq!(cache.invalidate_by_tags(&["t"]).await.expect("by tag"), 2, "retagged + live");
            assert_eq!(cache.get_if_present(&s("untagged")).await.expect("get"), Some(s("v2")));
            assert_eq!(cache.invalidate_by_tags(&["t"]).await.expect("again"), 0, "no phantom");

            // `invalidate` removes the key from all its tags.
            cache.set(&s("k1"), &s("v"), &["x", "y"]).await.expect("set");
            cache.invalidate(&s("k1")).await.expect("invalidate");
            assert!(!members(&c, &tag_key("x")).contains(&fk("k1")));
            assert!(!members(&c, &tag_key("y")).contains(&fk("k1")));

            // `invalidate_by_tags` removes what it deleted from the entry's other tags.
            cache.set(&s("k2"), &s("v"), &["x", "y", "z"]).await.expect("set");
            cache.set(&s("k3"), &s("v"), &["y"]).await.expect("set");
            assert!(members(&c, &tag_key("y")).contains(&fk("k2")));
            assert_eq!(cache.invalidate_by_tags(&["x"]).await.expect("x"), 1);
            assert_eq!(members(&c, &tag_key("y")), vec![fk("k3")], "k2 left y");
            assert!(members(&c, &tag_key("z")).is_empty(), "k2 left z");
            assert_eq!(cache.invalidate_by_tags(&["y", "z"]).await.expect("y"), 1, "k3 only");

            // Expired members are pruned by the next write to the tag; the tag key lives as
            // long as its longest-lived member, and then goes.
            cache.set_with_ttl(&s("brief"), &s("v"), short, &["p"]).await.expect("set");
            rt.sleep(Duration::from_millis(100)).await;
            cache
                .set_with_ttl(&s("other"), &s("v"), Ttl::After(Duration::from_millis(300)), &["p"])
                .await
                .expect("set");
            assert_eq!(members(&c, &tag_key("p")), vec![fk("other")], "the expired member was pruned");
            let tk = tag_key("p");
            let pttl = raw(&c, tk.as_bytes(), &[b"PTTL", tk.as_bytes()]).as_int().expect("pttl");
            assert!(pttl > 0 && pttl <= 300, "tag key TTL {pttl}");
            rt.sleep(Duration::from_millis(400)).await;
            assert_eq!(
                raw(&c, tk.as_bytes(), &[b"EXISTS", tk.as_bytes()]),
                Value::Int(0),
                "metadata expired"
            );

            // Setting a key again replaces its tags.
            cache.set(&s("k4"), &s("v"), &["old"]).await.expect("set");
            cache.set(&s("k4"), &s("v2"), &["new"]).await.expect("set");
            assert_eq!(cache.invalidate_by_tags(&["old"]).await.expect("old"), 0);
            assert_eq!(cache.get_if_present(&s("k4")).await.expect("get"), Some(s("v2")));
            assert_eq!(cache.invalidate_by_tags(&["new"]).await.expect("new"), 1);

            // invalidate_all leaves no tag key (nor any `keytags:` key) behind.
            cache.set(&s("k5"), &s("v"), &["q", "r"]).await.expect("set");
            cache.invalidate_all().await.expect("invalidate_all");
            assert!(scan_keys(&c, &masters, &format!("tag:{{{name}:*")).is_empty());
            assert!(scan_keys(&c, &masters, &format!("keytags:{name}:*")).is_empty());
            assert!(scan_keys(&c, &masters, &format!("{name}:*")).is_empty());
            p.close().await;
        }
    });
}

/// §15.8: tag operations race safely. A tagged set racing an invalidation of its tag either
/// loses (a miss) or stays findable: once both are done, a later invalidation of the tag
/// always makes it a miss. (The full history check under failover and migration is
/// `tags_history.rs`.)
#[test]
fn fix_15_8_tag_races_leave_no_orphan() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("fix_15_8_tag_races_leave_no_orphan", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "tag-race").await;
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

/// §15.9: errors surface. A key of another type, a corrupt entry or a tag key of another type
/// is an error, never a miss: `get_if_present`, `get_entry` and `bulk_get` fail, and
/// `bulk_get_with` does not call its loader (which would overwrite what is there); tagged
/// writes and invalidations fail when a tag's key is unusable.
#[test]
fn fix_15_9_errors_surface() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("fix_15_9_errors_surface", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "errors").await;
            let name = ns("err", rt, "a");
            let cache = string_ns(&p, &name);
            cache.set(&s("good"), &s("v"), &[]).await.expect("set");
            let list = format!("{name}:list");
            raw(&c, list.as_bytes(), &[b"RPUSH", list.as_bytes(), b"x"]);
            let corrupt = format!("{name}:corrupt");
            raw(&c, corrupt.as_bytes(), &[b"SET", corrupt.as_bytes(), b"\0not an envelope"]);
            let garbage = format!("{name}:garbage");
            raw(&c, garbage.as_bytes(), &[b"SET", garbage.as_bytes(), b"{not json"]);

            let e = cache.get_if_present(&s("list")).await;
            assert!(is_server_error(&e, b"WRONGTYPE"), "{e:?}");
            let e = cache.get_entry(&s("list")).await;
            assert!(is_server_error(&e, b"WRONGTYPE"), "{e:?}");
            assert!(matches!(cache.get_if_present(&s("corrupt")).await, Err(CacheError::Corrupt { .. })));
            assert!(matches!(cache.get_if_present(&s("garbage")).await, Err(CacheError::Codec(_))));

            let loads = Arc::new(AtomicUsize::new(0));
            for bad in ["list", "corrupt", "garbage"] {
                let keys = [s("good"), s(bad), s("missing")];
                let e = cache.bulk_get(&keys).await;
                assert!(e.is_err(), "{bad}: {e:?}");
                let l = loads.clone();
                let e = cache
                    .bulk_get_with(&keys, move |ks| async move {
                        l.fetch_add(1, Ordering::SeqCst);
                        Ok(ks.into_iter().map(|k| (k, s("loaded"))).collect())
                    })
                    .await;
                assert!(e.is_err(), "{bad}: {e:?}");
            }
            assert_eq!(loads.load(Ordering::SeqCst), 0, "no loader call over a read error");
            assert_eq!(raw(&c, list.as_bytes(), &[b"TYPE", list.as_bytes()]), Value::Simple("list".into()));

            // A tag whose key holds something else: the tagged write and the invalidation fail.
            let tk = format!("tag:{{{name}:broken}}");
            raw(&c, tk.as_bytes(), &[b"SET", tk.as_bytes(), b"not a sorted set"]);
            let e = cache.set(&s("t"), &s("v"), &["broken"]).await;
            assert!(e.is_err(), "{e:?}");
            assert_eq!(cache.get_if_present(&s("t")).await.expect("get"), None, "no value without its tag");
            assert!(cache.invalidate_by_tags(&["broken"]).await.is_err());
            assert!(cache.invalidate_by_tags(&["fine", "broken"]).await.is_err());
            p.close().await;
        }
    });
}

/// §15.10: `SCAN` patterns are escaped: a namespace named with `* ? [ ] \` sees only its own
/// keys, although another namespace's keys match its name read as a glob. Namespaces whose
/// prefixes overlap are refused.
#[test]
fn fix_15_10_glob_escaped() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("fix_15_10_glob_escaped", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "glob").await;
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

/// §15.12: closing a namespace does not close the shared client: it and every other namespace
/// keep working; only the provider's close ends them.
#[test]
fn fix_15_12_namespace_close_keeps_client() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("fix_15_12_namespace_close_keeps_client", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "close").await;
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

/// §15.13: namespace names are normalised (`users` and `users:` are one cache, sharing its
/// counters); asking again with other types or other options is refused instead of silently
/// ignoring them; unusable names are typed errors.
#[test]
fn fix_15_13_namespace_normalised() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("fix_15_13_namespace_normalised", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "normalised").await;
            let name = ns("norm", rt, "users");
            let a = string_ns(&p, &name);
            let b = string_ns(&p, &format!("{name}:"));
            assert_eq!(a.name(), format!("{name}:"));
            assert_eq!(a.name(), b.name());
            a.set(&s("k"), &s("v"), &[]).await.expect("set");
            assert_eq!(b.get_if_present(&s("k")).await.expect("get"), Some(s("v")));
            assert_eq!(a.stats().hits, 1, "one cache, one set of counters");

            let conflict = |e: Result<Cache<String, String>, CacheError>, what: &str| {
                assert!(matches!(e, Err(CacheError::NamespaceConflict { .. })), "{what}: {e:?}");
            };
            let e = p.create_namespace::<String, u64>(&name, NamespaceOptions::default());
            assert!(matches!(e, Err(CacheError::NamespaceConflict { .. })), "other value type: {e:?}");
            let e = p.create_namespace::<u64, String>(&name, NamespaceOptions::default());
            assert!(matches!(e, Err(CacheError::NamespaceConflict { .. })), "other key type: {e:?}");
            let o = NamespaceOptions::<String, String> { codec: Arc::new(Binary), ..Default::default() };
            conflict(p.create_namespace(&name, o), "other codec");
            let o = NamespaceOptions::<String, String> {
                transforms: vec![Arc::new(Zstd::default())],
                ..Default::default()
            };
            conflict(p.create_namespace(&name, o), "other transformers");
            let o = NamespaceOptions::<String, String> {
                refresh_after: Some(Duration::from_secs(1)),
                ..Default::default()
            };
            conflict(p.create_namespace(&name, o), "refresh_after");
            let o = NamespaceOptions::<String, String> {
                cluster_lock: Some(Duration::from_secs(1)),
                ..Default::default()
            };
            conflict(p.create_namespace(&name, o), "cluster_lock");
            let o = NamespaceOptions::<String, String> {
                expiry: Some(Arc::new(|_: &String, _: &String| Ttl::Never)),
                ..Default::default()
            };
            conflict(p.create_namespace(&name, o), "an expiry function");

            for bad in ["", "has{brace", "has}brace", "ctl\u{1}char", "tag:", "keytags:x"] {
                let e = p.create_namespace::<String, String>(bad, NamespaceOptions::default());
                assert!(matches!(e, Err(CacheError::Namespace(_))), "{bad:?}: {e:?}");
            }
            p.close().await;
        }
    });
}

/// §15.14: `get` falls back to its loader when the read fails (the value is still returned),
/// and the shared load is detached from its callers: the first caller dropping its future
/// neither fails the others nor stops the load, which stores its value.
#[test]
fn fix_15_14_get_falls_back_and_detached_load() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("fix_15_14_get_falls_back_and_detached_load", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "detached").await;
            let name = ns("detach", rt, "a");
            let cache = string_ns(&p, &name);

            // A read error (a key of another type): the loader's value is returned and stored.
            let list = format!("{name}:list");
            raw(&c, list.as_bytes(), &[b"RPUSH", list.as_bytes(), b"x"]);
            let v = cache.get(&s("list"), |_| async { Ok(s("loaded")) }).await.expect("falls back");
            assert_eq!(v, "loaded");
            assert_eq!(cache.get_if_present(&s("list")).await.expect("stored"), Some(s("loaded")));

            // The first caller gives up; the second, joined to the same load, gets the value,
            // the loader ran once, and the value is stored although nobody waits any more.
            let loads = Arc::new(AtomicUsize::new(0));
            let (release_tx, release_rx) = smol::channel::bounded::<()>(1);
            let l = loads.clone();
            let slow = s("slow");
            let first = cache.get(&slow, move |_| async move {
                l.fetch_add(1, Ordering::SeqCst);
                let _ = release_rx.recv().await;
                Ok(s("slow value"))
            });
            cache_support::drop_when(rt, first, "the first caller's load to start", || {
                loads.load(Ordering::SeqCst) == 1
            })
            .await;
            let misses = cache.stats().misses;
            let l = loads.clone();
            let second = {
                let cache = cache.clone();
                rt.spawn(async move {
                    cache
                        .get(&s("slow"), move |_| async move {
                            l.fetch_add(1, Ordering::SeqCst);
                            Ok(s("second loader"))
                        })
                        .await
                })
            };
            // Its read missed: it is joining the load (or, if it lost the race, reads its value).
            eventually(rt, Duration::from_secs(5), "the second caller's miss", || {
                let n = cache.stats().misses;
                async move { n > misses }
            })
            .await;
            release_tx.try_send(()).expect("the load is still running");
            assert_eq!(second.await.expect("second caller"), "slow value");
            assert_eq!(loads.load(Ordering::SeqCst), 1);

            // Nobody waits at all: the load still completes and stores.
            let (release_tx, release_rx) = smol::channel::bounded::<()>(1);
            let key = s("abandoned");
            let l = loads.clone();
            let abandoned = cache.get(&key, move |_| async move {
                l.fetch_add(1, Ordering::SeqCst);
                let _ = release_rx.recv().await;
                Ok(s("stored anyway"))
            });
            cache_support::drop_when(rt, abandoned, "the abandoned load to start", || {
                loads.load(Ordering::SeqCst) == 2
            })
            .await;
            release_tx.try_send(()).expect("the load is still running");
            eventually(rt, Duration::from_secs(5), "the abandoned load's value", || {
                let cache = cache.clone();
                async move { cache.get_if_present(&s("abandoned")).await.expect("get").is_some() }
            })
            .await;
            p.close().await;
        }
    });
}

/// §15.15: TTLs in milliseconds (`PTTL`), and "no expiry" told apart from "missing".
#[test]
fn fix_15_15_ms_ttls_and_missing_vs_no_expiry() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("fix_15_15_ms_ttls_and_missing_vs_no_expiry", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "pttl").await;
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

/// §15.16: iteration streams page by page: taking the first key costs one `SCAN` page, not the
/// whole keyspace, and `keys()` never fetches a value (no `GET`/`MGET` on any primary while it
/// runs, per `INFO commandstats`).
#[test]
fn fix_15_16_iteration_streams() {
    let c = cluster(LABEL);
    let _g = exclusive();
    let (masters, _) = roles(&c);
    on_every_runtime("fix_15_16_iteration_streams", |rt: Rt| {
        let c = c.clone();
        let masters = masters.clone();
        async move {
            let p = provider(rt, &c, "streams").await;
            let cache = string_ns(&p, &ns("stream", rt, "a"));
            let items: Vec<(String, String)> =
                (0..3000).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
            for chunk in items.chunks(500) {
                cache.bulk_set(chunk, &[]).await.expect("bulk set");
            }
            let before =
                (calls(&c, &masters, "scan"), calls(&c, &masters, "mget"), calls(&c, &masters, "get"));
            let first = cache.keys().next().await.expect("a key").expect("key");
            assert!(first.starts_with('k'));
            let after_one = calls(&c, &masters, "scan");
            assert!(after_one - before.0 <= 2, "{} SCAN pages for one key", after_one - before.0);
            let n = cache.keys().count().await;
            assert_eq!(n, 3000);
            let scans = calls(&c, &masters, "scan") - after_one;
            assert!(scans >= 3, "paged: {scans} SCAN pages for 3000 keys on 3 primaries");
            assert_eq!(calls(&c, &masters, "mget"), before.1, "keys() fetched values");
            assert_eq!(calls(&c, &masters, "get"), before.2, "keys() fetched values");
            // entries() fetches each page's values with MGET.
            assert_eq!(cache.entries().count().await, 3000);
            assert!(calls(&c, &masters, "mget") > before.1);
            p.close().await;
        }
    });
}

/// §15.17: `estimated_size` with a node too slow for its budget is a typed `Timeout`, never a
/// silently partial count.
#[test]
fn fix_15_17_estimated_size_errors_not_partial() {
    // A node is stopped: nothing else runs meanwhile.
    let c = cluster(LABEL);
    let _g = exclusive();
    on_every_runtime("fix_15_17_estimated_size_errors_not_partial", |rt: Rt| {
        let c = c.clone();
        async move {
            let mut cfg = config(&c, "size-timeout");
            cfg.bulk_operation_timeout = Duration::from_millis(150);
            let p = provider_with(rt, cfg).await;
            let cache = string_ns(&p, &ns("size", rt, "a"));
            let items: Vec<(String, String)> = (0..30).map(|i| (format!("k{i}"), s("v"))).collect();
            cache.bulk_set(&items, &[]).await.expect("bulk set");
            assert_eq!(cache.estimated_size().await.expect("size"), 30);
            let (masters, _) = roles(&c);
            let stopped = cache_support::stop(&c, masters[1]);
            let started = Instant::now();
            let e = cache.estimated_size().await;
            assert!(matches!(e, Err(CacheError::Timeout { op: "estimated_size", .. })), "{e:?}");
            assert!(
                started.elapsed() < Duration::from_millis(1500),
                "within its budget: {:?}",
                started.elapsed()
            );
            drop(stopped);
            assert_eq!(cache.estimated_size().await.expect("size"), 30);
            p.close().await;
        }
    });
}

/// §15.18: bulk operations are pipelined and bounded. `bulk_get` of 50 keys is one pipelined
/// request and needs no loader; it has a time budget (a slow node makes it a typed `Timeout`,
/// not a hang); `bulk_refresh` stores what its loader returns with one pipeline (after one that
/// reads the entries' tags), not one request per item.
#[test]
fn fix_15_18_bulk_ops_pipelined_and_bounded() {
    // A node is stopped: nothing else runs meanwhile.
    let c = cluster(LABEL);
    let _g = exclusive();
    on_every_runtime("fix_15_18_bulk_ops_pipelined_and_bounded", |rt: Rt| {
        let c = c.clone();
        async move {
            let mut cfg = config(&c, "bulk-bounded");
            cfg.bulk_operation_timeout = Duration::from_millis(150);
            let p = provider_with(rt, cfg).await;
            let cache = string_ns(&p, &ns("bulkb", rt, "a"));
            let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
            let before = requests(&p).await;
            let stored = cache
                .bulk_refresh(
                    keys.clone(),
                    |ks| async move { Ok(ks.into_iter().map(|k| (k, s("v"))).collect()) },
                )
                .await
                .expect("bulk refresh");
            assert_eq!(stored, 50);
            // One pipeline reads the entries' tags (kept by the reload), one stores the values.
            assert_eq!(requests(&p).await - before, 2, "50 values stored by one pipeline");
            let before = requests(&p).await;
            assert_eq!(cache.bulk_get(&keys).await.expect("bulk get").len(), 50);
            assert_eq!(requests(&p).await - before, 1, "50 values read by one pipeline");
            let (masters, _) = roles(&c);
            let stopped = cache_support::stop(&c, masters[2]);
            let started = Instant::now();
            let e = cache.bulk_get(&keys).await;
            assert!(matches!(e, Err(CacheError::Timeout { op: "bulk_get", .. })), "{e:?}");
            assert!(
                started.elapsed() < Duration::from_millis(1500),
                "within its budget: {:?}",
                started.elapsed()
            );
            drop(stopped);
            p.close().await;
        }
    });
}

/// §15.19: statistics are per namespace (client-side counters), not the server's totals.
#[test]
fn fix_15_19_stats_per_namespace() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("fix_15_19_stats_per_namespace", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "stats").await;
            let a = string_ns(&p, &ns("stats", rt, "a"));
            let b = string_ns(&p, &ns("stats", rt, "b"));
            a.set(&s("k"), &s("v"), &[]).await.expect("set");
            for _ in 0..3 {
                a.get_if_present(&s("k")).await.expect("hit");
            }
            a.get_if_present(&s("nope")).await.expect("miss");
            b.get(&s("x"), |_| async { Ok(s("loaded")) }).await.expect("load");
            b.get(&s("x"), |_| async { Ok(s("again")) }).await.expect("hit");
            let _ = b.get(&s("y"), |_| async { Err(CacheError::NotFound) }).await;
            let (sa, sb) = (a.stats(), b.stats());
            assert_eq!((sa.hits, sa.misses, sa.loads, sa.load_failures), (3, 1, 0, 0), "{sa:?}");
            assert_eq!((sb.hits, sb.misses, sb.loads, sb.load_failures), (1, 2, 1, 1), "{sb:?}");
            assert!(sb.load_time > Duration::ZERO);
            p.close().await;
        }
    });
}

/// §15.20: with `send_to_replicas`, values are read from replicas, but everything that must see
/// the latest write stays on primaries: tag checks (an invalidated entry is a miss at once)
/// and compute's read (it always sees the write just made).
#[test]
fn fix_15_20_replica_reads_keep_tag_checks_on_primaries() {
    let c = cluster(LABEL);
    let _g = shared();
    let (_, replicas) = roles(&c);
    on_every_runtime("fix_15_20_replica_reads_keep_tag_checks_on_primaries", |rt: Rt| {
        let c = c.clone();
        let replicas = replicas.clone();
        async move {
            let mut cfg = config(&c, "replica-reads");
            cfg.send_to_replicas = true;
            let p = provider_with(rt, cfg).await;
            let cache = string_ns(&p, &ns("replica", rt, "a"));
            let gets_before = calls(&c, &replicas, "get");
            for i in 0..20 {
                let k = format!("k{i}");
                cache.set(&k, &format!("v{i}"), &["t"]).await.expect("set");
                let v =
                    cache.compute_if_present(&k, |v| Compute::Set(format!("{v}+"))).await.expect("compute");
                assert_eq!(v, Some(format!("v{i}+")), "compute read the primary");
            }
            eventually(rt, Duration::from_secs(5), "replicas to serve the values", || {
                let cache = cache.clone();
                async move { cache.get_if_present(&s("k19")).await.expect("get") == Some(s("v19+")) }
            })
            .await;
            assert!(calls(&c, &replicas, "get") > gets_before, "reads went to replicas");
            assert_eq!(cache.invalidate_by_tags(&["t"]).await.expect("by tag"), 20);
            for i in 0..20 {
                assert_eq!(cache.get_if_present(&format!("k{i}")).await.expect("get"), None, "k{i}");
            }
            p.close().await;
        }
    });
    assert_eq!(calls(&c, &replicas, "zrangebyscore"), 0, "tag checks never went to a replica");
}

/// §15.21: `refresh_after` and `set_refreshable_after` work: past the refresh time, `get`
/// returns the old value at once and reloads in the background; the new value replaces it.
#[test]
fn fix_15_21_refreshable_after_reloads_in_background() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("fix_15_21_refreshable_after_reloads_in_background", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "refresh").await;
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
