//! Provider and namespace settings that change what reaches the servers, each shown on a real
//! cluster (3 masters + 1 replica each), every runtime, by a check that fails if the setting
//! were ignored:
//!
//! - `client_name`: every connection to every primary carries it (`CLIENT LIST`);
//! - `default_ttl`: an entry written without a TTL (`set`, `bulk_set`, a loader's store,
//!   `compute`) has that `PTTL`, not the 1 h default;
//! - `atomic_operation_timeout`: a compute against a stopped primary (`SIGSTOP`) fails with
//!   the timeout of that budget, within about it;
//! - `flush_timeout`: `invalidate_all` and `flush_all` with a stopped primary fail with the
//!   timeout of that budget, within about it;
//! - non-string key encoders: `DecimalKeys` (the default of integer keys) and `Base64Keys`
//!   (a marshalled struct as unpadded base64url) write the reference's exact key bytes, and
//!   iteration decodes them back.

mod cache_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use slotcache_rt::{Base64Keys, CacheError, Compute, KeyMarshal, NamespaceOptions, Value};
use slotcache_tests::Cluster;
use slotcache_tests::conformance::Rt;

use cache_support::{
    cluster, config, exclusive, ns, on_every_runtime, provider, provider_with, raw, roles, s, shared, stop,
    string_ns,
};

const LABEL: &str = "cache-provider-settings";

/// The key's `PTTL` on its owner.
fn pttl(c: &Cluster, key: &str) -> i64 {
    raw(c, key.as_bytes(), &[b"PTTL", key.as_bytes()]).as_int().expect("PTTL")
}

#[test]
fn client_name_is_on_every_connection() {
    let c = cluster(LABEL);
    let _g = shared();
    let (masters, _) = roles(&c);
    on_every_runtime("client_name_is_on_every_connection", |rt: Rt| {
        let (c, masters) = (c.clone(), masters.clone());
        async move {
            let name = format!("settings-name-{}", rt.name());
            let mut cfg = config(&c, "unused");
            cfg.client_name.clone_from(&name);
            let p = provider_with(rt, cfg).await;
            let cache = string_ns(&p, &ns("name", rt, "a"));
            // A key on every primary (its hash tag keeps the slot under the namespace prefix), so
            // that the client has a connection to each.
            for &m in &masters {
                let k = c.key_owned_by(m, &format!("name-{}", rt.name())).expect("a key");
                cache.set(&k, &s("v"), &[]).await.expect("set");
            }
            for &m in &masters {
                let list = c.cmd_text(m, ["CLIENT", "LIST"]).expect("CLIENT LIST");
                let named = list.lines().filter(|l| l.contains(&format!(" name={name} "))).count();
                assert!(named >= 1, "{}: master {m} has no connection named {name}:\n{list}", rt.name());
            }
            p.close().await;
        }
    });
}

#[test]
fn default_ttl_is_the_ttl_of_entries_written_without_one() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("default_ttl_is_the_ttl_of_entries_written_without_one", |rt: Rt| {
        let c = c.clone();
        async move {
            let mut cfg = config(&c, "default-ttl");
            cfg.default_ttl = Duration::from_secs(7 * 60);
            let p = provider_with(rt, cfg).await;
            let name = ns("dttl", rt, "a");
            let cache = string_ns(&p, &name);
            cache.set(&s("set"), &s("v"), &["t"]).await.expect("set");
            cache.bulk_set(&[(s("bulk"), s("v"))], &[]).await.expect("bulk_set");
            cache.get(&s("loaded"), |_| async { Ok(s("v")) }).await.expect("get");
            cache.compute(&s("computed"), |_| Compute::Set(s("v"))).await.expect("compute");
            for k in ["set", "bulk", "loaded", "computed"] {
                let ms = pttl(&c, &format!("{name}:{k}"));
                assert!((415_000..=420_000).contains(&ms), "{}: {k}: PTTL {ms}, not 7 min", rt.name());
            }
            p.close().await;
        }
    });
}

/// `compute` against a stopped primary: the error is the compute's timeout, with its budget.
#[test]
fn atomic_operation_timeout_bounds_compute() {
    let c = cluster(LABEL);
    let _g = exclusive();
    let (masters, _) = roles(&c);
    on_every_runtime("atomic_operation_timeout_bounds_compute", |rt: Rt| {
        let (c, masters) = (c.clone(), masters.clone());
        async move {
            let mut cfg = config(&c, "atomic-timeout");
            cfg.atomic_operation_timeout = Duration::from_millis(300);
            let p = provider_with(rt, cfg).await;
            let name = ns("atomic", rt, "a");
            let cache = string_ns(&p, &name);
            // A hash-tagged key: the namespaced key stays in the slot of `masters[0]`.
            let key = c.key_owned_by(masters[0], &format!("atomic-{}", rt.name())).expect("a key");
            let owner = c.owner_of_key(format!("{name}:{key}").as_bytes()).expect("owner");
            assert_eq!(owner, masters[0]);
            cache.set(&key, &s("v"), &[]).await.expect("set");
            let stopped = stop(&c, owner);
            let t = Instant::now();
            let e = cache.compute(&key, |_| Compute::Set(s("w"))).await;
            let took = t.elapsed();
            drop(stopped);
            assert!(
                matches!(e, Err(CacheError::Timeout { op: "compute", timeout_ms: 300 })),
                "{}: {e:?}",
                rt.name()
            );
            assert!(took < Duration::from_millis(1500), "{}: took {took:?}", rt.name());
            // Back to normal once the node runs again.
            c.wait_healthy(Duration::from_secs(20)).expect("healthy");
            assert_eq!(cache.compute(&key, |_| Compute::Set(s("w"))).await.expect("compute"), Some(s("w")));
            p.close().await;
        }
    });
}

/// `invalidate_all` and `flush_all` with a stopped primary: the error is the operation's
/// timeout, with the `flush_timeout` budget.
#[test]
fn flush_timeout_bounds_invalidate_all_and_flush_all() {
    let c = cluster(LABEL);
    let _g = exclusive();
    let (masters, _) = roles(&c);
    on_every_runtime("flush_timeout_bounds_invalidate_all_and_flush_all", |rt: Rt| {
        let (c, masters) = (c.clone(), masters.clone());
        async move {
            let mut cfg = config(&c, "flush-timeout");
            cfg.flush_timeout = Duration::from_millis(300);
            cfg.allow_unsafe_flushdb = true;
            let p = provider_with(rt, cfg).await;
            let cache = string_ns(&p, &ns("flusht", rt, "a"));
            cache
                .bulk_set(&(0..30).map(|i| (format!("k{i}"), s("v"))).collect::<Vec<_>>(), &[])
                .await
                .expect("bulk");
            for (op, expect) in [("invalidate_all", "invalidate_all"), ("flush_all", "flush_all")] {
                let stopped = stop(&c, masters[1]);
                let t = Instant::now();
                let e = if op == "invalidate_all" {
                    cache.invalidate_all().await.map(drop)
                } else {
                    p.flush_all().await
                };
                let took = t.elapsed();
                drop(stopped);
                assert!(
                    matches!(&e, Err(CacheError::Timeout { op, timeout_ms: 300 }) if *op == expect),
                    "{}: {op}: {e:?}",
                    rt.name()
                );
                assert!(took < Duration::from_millis(1500), "{}: {op} took {took:?}", rt.name());
                c.wait_healthy(Duration::from_secs(20)).expect("healthy");
            }
            p.close().await;
        }
    });
}

/// A struct key marshalled as 2 + 4 big-endian bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct UserId {
    tenant: u16,
    id: u32,
}

#[derive(Clone, Copy, Debug, Default)]
struct UserIdBytes;

impl KeyMarshal for UserIdBytes {
    type Key = UserId;

    fn marshal(
        &self,
        key: &UserId,
        out: &mut Vec<u8>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        out.extend_from_slice(&key.tenant.to_be_bytes());
        out.extend_from_slice(&key.id.to_be_bytes());
        Ok(())
    }

    fn unmarshal(&self, bytes: &[u8]) -> Result<UserId, Box<dyn std::error::Error + Send + Sync>> {
        let [t0, t1, i0, i1, i2, i3] = bytes else { return Err("not 6 bytes".into()) };
        Ok(UserId { tenant: u16::from_be_bytes([*t0, *t1]), id: u32::from_be_bytes([*i0, *i1, *i2, *i3]) })
    }
}

#[test]
fn non_string_key_encoders_write_the_reference_bytes() {
    let c = cluster(LABEL);
    let _g = shared();
    on_every_runtime("non_string_key_encoders_write_the_reference_bytes", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = provider(rt, &c, "key-encoders").await;
            let exists = |k: String| raw(&c, k.as_bytes(), &[b"EXISTS", k.as_bytes()]) == Value::Int(1);

            // Integers in decimal (DecimalKeys, the default of integer keys).
            let name = ns("keys", rt, "dec");
            let ints = p.create_namespace::<i64, String>(&name, NamespaceOptions::default()).expect("ns");
            for k in [42, -7, 0] {
                ints.set(&k, &format!("v{k}"), &["t"]).await.expect("set");
                assert!(exists(format!("{name}:{k}")), "{}: {name}:{k}", rt.name());
            }
            assert_eq!(ints.get_if_present(&-7).await.expect("get"), Some(s("v-7")));
            let keys: BTreeSet<i64> = ints.keys().map(|k| k.expect("decodes")).collect().await;
            assert_eq!(keys, BTreeSet::from([-7, 0, 42]), "{}: iteration decodes them", rt.name());
            assert_eq!(ints.invalidate_by_tags(&["t"]).await.expect("tags"), 3);

            // A struct key, marshalled, as unpadded base64url (the URL alphabet: `-` and `_`).
            let name = ns("keys", rt, "b64");
            let o = NamespaceOptions::<UserId, String>::with_key_encoder(std::sync::Arc::new(Base64Keys(
                UserIdBytes,
            )));
            let users = p.create_namespace(&name, o).expect("ns");
            let (a, b) = (UserId { tenant: 0xfbff, id: 1 }, UserId { tenant: 7, id: 256 });
            users.set(&a, &s("alice"), &[]).await.expect("set");
            users.set(&b, &s("bob"), &[]).await.expect("set");
            assert!(exists(format!("{name}:-_8AAAAB")), "{}: the reference's bytes for {a:?}", rt.name());
            assert!(exists(format!("{name}:AAcAAAEA")), "{}: the reference's bytes for {b:?}", rt.name());
            assert_eq!(users.get_if_present(&a).await.expect("get"), Some(s("alice")));
            let all: BTreeSet<(UserId, String)> =
                users.entries().map(|e| e.expect("decodes")).collect().await;
            assert_eq!(all, BTreeSet::from([(a, s("alice")), (b, s("bob"))]), "{}", rt.name());
            p.close().await;
        }
    });
}
