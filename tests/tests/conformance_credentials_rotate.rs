//! Conformance (real cluster, every runtime): credentials that rotate under load.
//!
//! 3 masters, no replicas, an ACL user `rot` with password `old` on every node. A client started
//! with [`Client::connect_with_credentials`] (a provider asked every 50 ms) runs a load of
//! `SET`/`GET` from 8 tasks while the password rotates the way managed services do it:
//!
//! 1. `ACL SETUSER rot >new` on every node (both passwords valid), then the provider returns
//!    `new`: the client re-authenticates its open connections with `AUTH rot new`;
//! 2. `ACL SETUSER rot <old` on every node (the old password removed);
//! 3. `CLIENT KILL USER rot` on every node: every connection is replaced, and the new ones can
//!    only authenticate with `new`.
//!
//! Shows: no request of the load fails; after step 3 the client serves, so connections opened
//! after the rotation use the new password; credentials the servers refuse are the typed
//! [`RequestError::Auth`] (`WRONGPASS`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slotcache_core::ServerErrorKind;
use slotcache_rt::{
    BoxFuture, Client, Cmd, Credentials, CredentialsProvider, Error, Password, RequestError, SharedError,
};
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::{ALL, config};

/// A provider that returns whatever the test put in it, and counts its calls.
struct Vault {
    current: Mutex<Credentials>,
    calls: AtomicU64,
}

impl CredentialsProvider for Vault {
    fn credentials(&self) -> BoxFuture<Result<Credentials, SharedError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let c = self.current.lock().map(|c| c.clone()).map_err(|_| SharedError::new("poisoned"));
        Box::pin(async move { c })
    }
}

fn creds(password: &str) -> Credentials {
    Credentials { username: Some("rot".into()), password: Password::new(password) }
}

/// Waits (bounded) until `cond` holds.
async fn until(rt: slotcache_tests::conformance::Rt, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        rt.sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn a_password_rotated_under_load_fails_no_request() {
    let c = ClusterBuilder::new().masters(3).replicas(0).label("conf-rotate").start().expect("cluster");
    let acl = |args: &[&str]| {
        for i in c.live() {
            c.conn(i).expect("conn").cmd_ok(args.iter().copied()).expect("ACL SETUSER");
        }
    };
    for rt in ALL {
        let p = rt.name();
        acl(&["ACL", "SETUSER", "rot", "reset", "on", ">old", "~*", "+@all"]);
        rt.block_on(async {
            let vault = Arc::new(Vault { current: Mutex::new(creds("old")), calls: AtomicU64::new(0) });
            let mut cfg = config(&c);
            cfg.client.connections_per_node = 2;
            let client =
                Client::connect_with_credentials(rt.runtime(), cfg, vault.clone(), Duration::from_millis(50))
                    .await
                    .expect("connect with the old password");

            let stop = Arc::new(AtomicBool::new(false));
            let done = Arc::new(AtomicU64::new(0));
            let mut tasks = Vec::new();
            for t in 0..8 {
                let (client, stop, done) = (client.clone(), stop.clone(), done.clone());
                tasks.push(rt.spawn(async move {
                    let mut failures = Vec::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("rot:{t}:{}", i % 50);
                        if let Err(e) = client.send(Cmd::new("SET").arg(key.as_str()).arg(i)).await {
                            failures.push(e.to_string());
                        }
                        if let Err(e) = client.send(Cmd::new("GET").arg(key.as_str())).await {
                            failures.push(e.to_string());
                        }
                        i += 1;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    failures
                }));
            }
            let progress = |n: u64| {
                let done = done.clone();
                let from = done.load(Ordering::Relaxed);
                move || done.load(Ordering::Relaxed) >= from + n
            };
            until(rt, "load", progress(200)).await;

            // 1. Both passwords valid, then the provider hands out the new one.
            acl(&["ACL", "SETUSER", "rot", ">new"]);
            let before = vault.calls.load(Ordering::SeqCst);
            *vault.current.lock().expect("vault") = creds("new");
            // Two calls later, the first call's re-authentication has finished (the refresh
            // task asks, re-authenticates, then sleeps).
            until(rt, "the provider's turn", || vault.calls.load(Ordering::SeqCst) >= before + 2).await;
            until(rt, "load", progress(200)).await;

            // 2. The old password removed; 3. every connection replaced.
            acl(&["ACL", "SETUSER", "rot", "<old"]);
            until(rt, "load", progress(200)).await;
            let stats_before = client.stats().await.expect("stats");
            for i in c.live() {
                let _ = c.conn(i).expect("conn").cmd(["CLIENT", "KILL", "USER", "rot"]);
            }
            let reconnected = || {
                let client = client.clone();
                async move { client.stats().await.map(|s| s.connects).unwrap_or(0) }
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while reconnected().await <= stats_before.connects {
                assert!(Instant::now() < deadline, "{p}: no new connection after CLIENT KILL");
                rt.sleep(Duration::from_millis(5)).await;
            }
            until(rt, "load", progress(500)).await;
            stop.store(true, Ordering::Relaxed);
            let mut failures = Vec::new();
            for t in tasks {
                failures.extend(t.await);
            }
            let stats = client.stats().await.expect("stats");
            eprintln!(
                "[figure] rotate/{p}: {} iterations, {} failures, connects {} -> {}",
                done.load(Ordering::Relaxed),
                failures.len(),
                stats_before.connects,
                stats.connects
            );
            assert!(failures.is_empty(), "{p}: requests failed during the rotation: {failures:?}");
            assert!(stats.connects > stats_before.connects, "{p}: new connections were opened: {stats:?}");
            // New connections can only have authenticated with the new password.
            let v = client.send(Cmd::new("ACL").arg("WHOAMI")).await.expect("whoami");
            assert_eq!(v.as_str(), Some("rot"), "{p}");

            // A password the servers refuse is a typed error.
            let e = client.set_credentials(creds("wrong")).await.expect_err("a wrong password");
            match &e {
                Error::Request(RequestError::Auth { error, .. }) => {
                    assert_eq!(error.kind(), &ServerErrorKind::WrongPass, "{p}: {e}");
                }
                other => panic!("{p}: expected Auth, got {other:?}"),
            }
            client.close().await;
        });
    }
}
