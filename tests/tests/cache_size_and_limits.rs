//! The reference's size and limit methods (spec §5.12), every runtime, on a real cluster (3
//! masters + 1 replica each):
//!
//! - `weighted_size` is the namespace's own weight: exactly the sum of the servers' `MEMORY
//!   USAGE` of its entry keys (checked key by key against the owners), growing with its values,
//!   0 for an empty namespace, and blind to another namespace's (much larger) entries;
//! - `maximum` reads `maxmemory` of every primary (the smallest limit; `None` as soon as one
//!   primary has none), and `set_maximum` sets it on every primary and no replica, only with
//!   `allow_unsafe_flushdb`: without it, a typed `UnsafeSetMaximum` and nothing sent;
//! - `flush_all` is refused without the same setting (typed, nothing sent) and, allowed,
//!   empties every primary (and so their replicas).

mod cache_support;

use std::time::Duration;

use slotcache_rt::{CacheError, Value};
use slotcache_tests::Cluster;
use slotcache_tests::conformance::Rt;

use cache_support::{
    cluster, config, eventually, exclusive, ns, on_every_runtime, provider, provider_with, raw, requests,
    roles, s, shared, string_ns,
};

const LABEL: &str = "cache-size-and-limits";

/// The server's `MEMORY USAGE key SAMPLES 0`, asked of the key's owner.
fn memory_usage(c: &Cluster, key: &str) -> u64 {
    match raw(c, key.as_bytes(), &[b"MEMORY", b"USAGE", key.as_bytes(), b"SAMPLES", b"0"]) {
        Value::Int(n) => u64::try_from(n).expect("positive"),
        other => panic!("MEMORY USAGE {key}: {other:?}"),
    }
}

/// `maxmemory` of node `i`.
fn maxmemory(c: &Cluster, i: usize) -> u64 {
    let Value::Array(v) = c.cmd(i, ["CONFIG", "GET", "maxmemory"]).expect("CONFIG GET") else {
        panic!("CONFIG GET: not an array")
    };
    let n = v.get(1).and_then(Value::as_bytes).expect("a value");
    std::str::from_utf8(n).expect("text").parse().expect("a number")
}

/// Puts every node's `maxmemory` back when dropped (a failed assertion included).
struct Restore<'a>(&'a Cluster, Vec<(usize, u64)>);

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        for (i, m) in &self.1 {
            let _ = self.0.cmd(*i, ["CONFIG", "SET", "maxmemory", &m.to_string()]);
        }
    }
}

#[test]
fn weighted_size_is_the_namespaces_memory_usage() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("weighted_size_is_the_namespaces_memory_usage", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "weighted").await;
            let name = ns("weighted", rt, "a");
            let cache = string_ns(&p, &name);
            assert_eq!(cache.weighted_size().await.expect("empty"), 0, "an empty namespace weighs nothing");
            let items: Vec<(String, String)> =
                (0..60).map(|i| (format!("k{i}"), "x".repeat(10 * i))).collect();
            cache.bulk_set(&items, &[]).await.expect("bulk_set");
            cache.set(&s("tagged"), &s("v"), &["t1", "t2"]).await.expect("set tagged");
            // Another namespace with far larger entries: not counted.
            let other = string_ns(&p, &ns("weighted", rt, "b"));
            let big: Vec<(String, String)> = (0..20).map(|i| (format!("k{i}"), "y".repeat(50_000))).collect();
            other.bulk_set(&big, &[]).await.expect("other namespace");

            let mut keys: Vec<String> = items.iter().map(|(k, _)| format!("{name}:{k}")).collect();
            keys.push(format!("{name}:tagged"));
            let want: u64 = keys.iter().map(|k| memory_usage(&c, k)).sum();
            let got = cache.weighted_size().await.expect("weighted_size");
            eprintln!("[figure] weighted_size/{}: {got} bytes for 61 entries", rt.name());
            assert_eq!(got, want, "{}: the sum of MEMORY USAGE over the namespace's entry keys", rt.name());
            assert!(got < other.weighted_size().await.expect("other") / 10, "{}: scoped", rt.name());

            // A 100 kB value more: at least that much more.
            cache.set(&s("big"), &"z".repeat(100_000), &[]).await.expect("set big");
            let grown = cache.weighted_size().await.expect("weighted_size");
            assert!(grown >= got + 100_000, "{}: {got} -> {grown}", rt.name());
            cache.invalidate_all().await.expect("invalidate_all");
            assert_eq!(cache.weighted_size().await.expect("emptied"), 0);
            other.invalidate_all().await.expect("invalidate_all");
            p.close().await;
        }
    });
}

#[test]
fn maximum_and_set_maximum_change_every_primary_only_when_allowed() {
    let c = cluster(LABEL);
    let _g = exclusive();
    let (masters, replicas) = roles(&c);
    let _restore = Restore(&c, c.live().into_iter().map(|i| (i, maxmemory(&c, i))).collect());
    on_every_runtime("maximum_and_set_maximum_change_every_primary_only_when_allowed", |rt: Rt| {
        let (c, masters, replicas) = (c.clone(), masters.clone(), replicas.clone());
        async move {
            let limit = |i: usize| maxmemory(&c, i);
            let replica_limits: Vec<u64> = replicas.iter().map(|&i| limit(i)).collect();
            // Refused without the setting, before anything is sent.
            let p = provider(rt, &c, "maximum").await;
            let before = requests(&p).await;
            let e = p.set_maximum(Some(1 << 30)).await;
            assert!(matches!(e, Err(CacheError::UnsafeSetMaximum)), "{e:?}");
            assert_eq!(requests(&p).await, before, "nothing sent");
            // Reading is allowed: no limit on these servers' defaults, or the smallest.
            let want =
                masters.iter().map(|&i| limit(i)).try_fold(u64::MAX, |m, l| (l != 0).then(|| m.min(l)));
            assert_eq!(p.maximum().await.expect("maximum"), want);
            p.close().await;

            let mut cfg = config(&c, "maximum-allowed");
            cfg.allow_unsafe_flushdb = true;
            let p = provider_with(rt, cfg).await;
            let mib = |n: u64| n << 20;
            p.set_maximum(Some(mib(300))).await.expect("set_maximum");
            for &m in &masters {
                assert_eq!(limit(m), mib(300), "{}: master {m}", rt.name());
            }
            let now: Vec<u64> = replicas.iter().map(|&i| limit(i)).collect();
            assert_eq!(now, replica_limits, "{}: replicas keep theirs", rt.name());
            assert_eq!(p.maximum().await.expect("maximum"), Some(mib(300)));
            // Primaries that differ: the smallest; one without a limit: none.
            c.cmd(masters[1], ["CONFIG", "SET", "maxmemory", &mib(200).to_string()]).expect("raw set");
            assert_eq!(p.maximum().await.expect("maximum"), Some(mib(200)));
            c.cmd(masters[2], ["CONFIG", "SET", "maxmemory", "0"]).expect("raw set");
            assert_eq!(p.maximum().await.expect("maximum"), None);
            p.set_maximum(None).await.expect("no limit");
            assert!(masters.iter().all(|&m| limit(m) == 0), "{}", rt.name());
            assert_eq!(p.maximum().await.expect("maximum"), None);
            p.close().await;
        }
    });
}

#[test]
fn flush_all_empties_every_primary_only_when_allowed() {
    let c = cluster(LABEL);
    let _g = exclusive();
    let (masters, _) = roles(&c);
    on_every_runtime("flush_all_empties_every_primary_only_when_allowed", |rt: Rt| {
        let (c, masters) = (c.clone(), masters.clone());
        async move {
            let dbsize = |i: usize| c.cmd(i, ["DBSIZE"]).expect("DBSIZE").as_int().expect("int");
            let p = provider(rt, &c, "flush").await;
            let a = string_ns(&p, &ns("flush", rt, "a"));
            let items: Vec<(String, String)> = (0..100).map(|i| (format!("k{i}"), s("v"))).collect();
            a.bulk_set(&items, &["t"]).await.expect("bulk_set");
            c.cmd(masters[0], ["SET", &c.key_owned_by(masters[0], "foreign").expect("key"), "x"])
                .expect("raw");
            let before = requests(&p).await;
            assert!(matches!(p.flush_all().await, Err(CacheError::UnsafeFlush)));
            assert_eq!(requests(&p).await, before, "nothing sent");
            assert!(masters.iter().all(|&m| dbsize(m) > 0), "{}: every primary holds keys", rt.name());
            p.close().await;

            let mut cfg = config(&c, "flush-allowed");
            cfg.allow_unsafe_flushdb = true;
            let p = provider_with(rt, cfg).await;
            p.flush_all().await.expect("flush_all");
            for &m in &masters {
                assert_eq!(dbsize(m), 0, "{}: master {m} emptied (foreign keys too)", rt.name());
            }
            eventually(rt, Duration::from_secs(5), "the replicas to follow", || {
                let empty = c.live().into_iter().all(|i| dbsize(i) == 0);
                async move { empty }
            })
            .await;
            let a = string_ns(&p, &ns("flush", rt, "a"));
            assert_eq!(a.get_if_present(&s("k1")).await.expect("get"), None);
            p.close().await;
        }
    });
}
