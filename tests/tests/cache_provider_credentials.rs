//! A cache provider with credentials that rotate, every runtime, on a real cluster (3 masters,
//! 1 replica each).
//!
//! An ACL user `cache-rot` with password `old` on every node. A provider started with
//! [`Provider::connect_with_credentials`] (a credentials provider asked every 50 ms) serves a
//! load of tagged `set`s, `get_if_present`s and `invalidate_by_tags` from 4 tasks while the
//! password rotates: both passwords valid, the credentials provider hands out `new`, `old`
//! removed, then `CLIENT KILL USER cache-rot` on every node so every connection is replaced.
//!
//! Shows: no cache operation fails while the password rotates; while connections are killed,
//! the only failures are those of `invalidate_by_tags` whose connection died under it (the
//! typed [`RequestError::ConnectionLost`]: its script may have run and is not sent twice; or
//! [`CacheError::NotDurable`]: the `WAIT` that had to follow it on that connection could not),
//! the documented outcome of a lost connection, not of the credentials; none once the new
//! connections are up; new
//! connections were opened, so they authenticated with `new`; a credentials provider that fails
//! at start-up is the typed [`CacheError::Credentials`], keeping its source.

mod cache_support;

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slotcache_rt::{
    BoxFuture, CacheError, Credentials, CredentialsProvider, NamespaceOptions, Password, Provider,
    RequestError, SharedError,
};
use slotcache_tests::conformance::Rt;

use cache_support::{cluster, config, eventually, ns, on_every_runtime, shared};

const USER: &str = "cache-rot";

/// A credentials provider that returns what the test put in it (or fails), counting its calls.
struct Vault {
    current: Mutex<Result<Credentials, String>>,
    calls: AtomicU64,
}

impl CredentialsProvider for Vault {
    fn credentials(&self) -> BoxFuture<Result<Credentials, SharedError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let c = match self.current.lock() {
            Ok(c) => c.clone().map_err(SharedError::new),
            Err(_) => Err(SharedError::new("poisoned")),
        };
        Box::pin(async move { c })
    }
}

/// Waits (at most `timeout`) until `cond` holds.
async fn until(rt: Rt, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    eventually(rt, timeout, what, || {
        let now = cond();
        async move { now }
    })
    .await;
}

fn creds(password: &str) -> Result<Credentials, String> {
    Ok(Credentials { username: Some(USER.into()), password: Password::new(password) })
}

#[test]
fn cache_operations_survive_a_password_rotation() {
    let c = cluster("cache-credentials");
    let _g = shared();
    let acl = |args: &[&str]| {
        for i in c.live() {
            c.cmd(i, args.iter().copied()).expect("ACL");
        }
    };
    on_every_runtime("cache_operations_survive_a_password_rotation", |rt: Rt| {
        let c = c.clone();
        async move {
            let p = rt.name();
            acl(&["ACL", "SETUSER", USER, "reset", "on", ">old", "~*", "&*", "+@all"]);

            // A credentials provider that fails at start-up: a typed error with its source.
            let broken = Arc::new(Vault { current: Mutex::new(Err("vault sealed".into())), calls: 0.into() });
            let e = Provider::connect_with_credentials(
                rt.runtime(),
                config(&c, "rot"),
                broken,
                Duration::from_secs(1),
            )
            .await
            .expect_err("a failing credentials provider");
            assert!(matches!(e, CacheError::Credentials(_)), "{p}: {e:?}");
            let source = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
            assert!(source.contains("vault sealed"), "{p}: the source is kept: {e:?}");

            let vault = Arc::new(Vault { current: Mutex::new(creds("old")), calls: 0.into() });
            let interval = Duration::from_millis(50);
            let provider =
                Provider::connect_with_credentials(rt.runtime(), config(&c, "rot"), vault.clone(), interval)
                    .await
                    .expect("connect with the old password");
            let cache = provider
                .create_namespace::<String, String>(&ns("rot", rt, "a"), NamespaceOptions::default())
                .expect("namespace");

            // 0: rotating, 1: connections being killed, 2: after the kill.
            let phase = Arc::new(AtomicU8::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicU64::new(0));
            let mut tasks = Vec::new();
            for t in 0..4 {
                let (cache, stop, done, phase) = (cache.clone(), stop.clone(), done.clone(), phase.clone());
                tasks.push(rt.spawn(async move {
                    let mut failures: Vec<(u8, &str, CacheError)> = Vec::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("k{t}:{}", i % 20);
                        let tag = format!("t{}", i % 3);
                        if let Err(e) = cache.set(&key, &i.to_string(), &[tag.as_str()]).await {
                            failures.push((phase.load(Ordering::SeqCst), "set", e));
                        }
                        if let Err(e) = cache.get_if_present(&key).await {
                            failures.push((phase.load(Ordering::SeqCst), "get_if_present", e));
                        }
                        if i % 10 == 9
                            && let Err(e) = cache.invalidate_by_tags(&[tag.as_str()]).await
                        {
                            failures.push((phase.load(Ordering::SeqCst), "invalidate_by_tags", e));
                        }
                        i += 1;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    failures
                }));
            }
            let progress = |n: u64| {
                let from = done.load(Ordering::Relaxed);
                let done = done.clone();
                move || done.load(Ordering::Relaxed) >= from + n
            };
            until(rt, "load", Duration::from_secs(20), progress(100)).await;

            // Both passwords valid, then the credentials provider hands out the new one; two
            // calls later the first call's re-authentication has finished.
            acl(&["ACL", "SETUSER", USER, ">new"]);
            let before = vault.calls.load(Ordering::SeqCst);
            *vault.current.lock().expect("vault") = creds("new");
            until(rt, "the provider's turn", Duration::from_secs(10), || {
                vault.calls.load(Ordering::SeqCst) >= before + 2
            })
            .await;
            until(rt, "load", Duration::from_secs(20), progress(100)).await;

            // The old password removed, every connection replaced.
            acl(&["ACL", "SETUSER", USER, "<old"]);
            let connects_before = provider.client().stats().await.expect("stats").connects;
            phase.store(1, Ordering::SeqCst);
            for i in c.live() {
                let _ = c.cmd(i, ["CLIENT", "KILL", "USER", USER]);
            }
            let reconnected = || {
                let client = provider.client().clone();
                async move { client.stats().await.map(|s| s.connects).unwrap_or(0) > connects_before }
            };
            eventually(rt, Duration::from_secs(10), "new connections", reconnected).await;
            until(rt, "load after the kill", Duration::from_secs(20), progress(100)).await;
            phase.store(2, Ordering::SeqCst);
            until(rt, "load after the reconnection", Duration::from_secs(20), progress(200)).await;
            stop.store(true, Ordering::Relaxed);
            let mut failures = Vec::new();
            for t in tasks {
                failures.extend(t.await);
            }
            let connects = provider.client().stats().await.expect("stats").connects;
            eprintln!(
                "[figure] cache rotate/{p}: {} iterations, {} failures, connects {connects_before} -> {connects}",
                done.load(Ordering::Relaxed),
                failures.len(),
            );
            let lost_in_kill = failures
                .iter()
                .filter(|(at, op, e)| {
                    *at == 1
                        && *op == "invalidate_by_tags"
                        && matches!(
                            e,
                            CacheError::Request(RequestError::ConnectionLost { .. })
                                | CacheError::NotDurable { .. }
                        )
                })
                .count();
            eprintln!(
                "[figure] cache rotate/{p}: {lost_in_kill} invalidations lost with a killed connection"
            );
            assert_eq!(lost_in_kill, failures.len(), "{p}: unexpected failures: {failures:?}");
            assert!(connects > connects_before, "{p}: connections were replaced after CLIENT KILL");
            provider.close().await;
        }
    });
}
