//! Conformance (real cluster, every runtime): ACL users.
//!
//! 3 masters, no replicas. A user `app` is created on every node (`ACL SETUSER` over raw
//! connections) that may touch only `acl:*` keys and run only what the client needs for itself
//! (`HELLO`, `PING`, `CLUSTER SHARDS` / `CLUSTER SLOTS`, `CLIENT SETNAME`) plus `GET`, `SET`
//! and `MGET`. Shows:
//!
//! - within its rights the user works: single keys on every shard, a split `MGET`;
//! - a command outside them (`DEL`), or a key outside its pattern, is a typed `NOPERM` server
//!   error, and the client goes on serving;
//! - a wrong password is a typed authentication error (`WRONGPASS`, naming the node) at
//!   [`Client::connect`], quickly;
//! - a user that may not read the topology (`CLUSTER SHARDS`/`SLOTS`) is told so at
//!   [`Client::connect`]: the error names `NOPERM`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use slotcache_core::ServerErrorKind;
use slotcache_rt::{Client, Cmd, Error, Password, RequestError, Value};
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::{ALL, config, keys_on, slot_owners};

const USER: &str = "app";
const PASSWORD: &str = "s3cret-app";

#[test]
fn acl_user_works_within_its_rights_and_gets_typed_errors_outside_them() {
    let c = ClusterBuilder::new().masters(3).replicas(0).label("conf-acl").start().expect("cluster");
    for i in c.live() {
        let mut conn = c.conn(i).expect("conn");
        conn.cmd_ok([
            "ACL",
            "SETUSER",
            USER,
            "reset",
            "on",
            &format!(">{PASSWORD}"),
            "~acl:*",
            "+hello",
            "+ping",
            "+cluster|shards",
            "+cluster|slots",
            "+client|setname",
            "+get",
            "+set",
            "+mget",
        ])
        .expect("ACL SETUSER");
        // A user that may not read the topology.
        conn.cmd_ok(["ACL", "SETUSER", "blind", "reset", "on", ">blind-pw", "~*", "+hello", "+ping", "+get"])
            .expect("ACL SETUSER");
    }
    let owners = slot_owners(&c, 0).expect("owners");
    for rt in ALL {
        let p = rt.name();
        let keys: Vec<String> = (0..3).flat_map(|m| keys_on(&owners, m, 20, &format!("acl:{p}"))).collect();
        let keys: Vec<String> = keys.into_iter().map(|k| format!("acl:{k}")).collect();
        let user_cfg = |password: &str| {
            let mut cfg = config(&c);
            cfg.client.username = Some(USER.into());
            cfg.client.password = Some(Password::new(password));
            cfg.client.request_timeout = Duration::from_secs(1);
            cfg
        };
        rt.block_on(async {
            let client = Client::connect(rt.runtime(), user_cfg(PASSWORD)).await.expect("connect as app");
            for k in &keys {
                let r = client.send(Cmd::new("SET").arg(k.as_str()).arg(format!("v:{k}"))).await;
                assert_eq!(r.expect("SET within its rights").as_str(), Some("OK"), "{p}");
            }
            let mut mget = Cmd::new("MGET");
            for k in &keys {
                mget.push_arg(k.as_str());
            }
            let Value::Array(vals) = client.send(mget).await.expect("MGET") else { panic!("array") };
            let want: Vec<Value> = keys.iter().map(|k| Value::Bulk(Bytes::from(format!("v:{k}")))).collect();
            assert_eq!(vals, want, "{p}");
            let who = client.send(Cmd::new("PING")).await.expect("PING");
            assert_eq!(who.as_str(), Some("PONG"));

            // A command it may not run.
            let e = client.send(Cmd::new("DEL").arg(keys[0].as_str())).await.expect_err("DEL is not allowed");
            eprintln!("[figure] acl/{p}: DEL outside its rights: {e}");
            assert_noperm(&e, p);
            // A key outside its pattern.
            let e = client.send(Cmd::new("GET").arg(format!("other:{p}"))).await.expect_err("key pattern");
            eprintln!("[figure] acl/{p}: a key outside its pattern: {e}");
            assert_noperm(&e, p);
            // And it goes on serving.
            let v = client.send(Cmd::new("GET").arg(keys[1].as_str())).await.expect("GET after NOPERM");
            assert_eq!(v, want[1], "{p}");
            let stats = client.stats().await.expect("stats");
            assert_eq!(stats.disconnects, 0, "{p}: NOPERM closes nothing: {stats:?}");
            client.close().await;

            // A wrong password.
            let t = Instant::now();
            let e = Client::connect(rt.runtime(), user_cfg("wrong")).await.expect_err("wrong password");
            let took = t.elapsed();
            eprintln!("[figure] acl/{p}: wrong password refused in {} ms: {e}", took.as_millis());
            match &e {
                Error::Request(RequestError::Auth { addr, error }) => {
                    assert_eq!(error.kind(), &ServerErrorKind::WrongPass, "{p}: {e}");
                    assert!(c.index_of_addr(addr).is_some(), "{p}: names a node: {e}");
                }
                other => panic!("{p}: expected an Auth error, got {other:?}"),
            }
            assert!(took < Duration::from_millis(500), "{p}: took {took:?}");

            // A user that may not read the topology.
            let mut cfg = config(&c);
            cfg.client.username = Some("blind".into());
            cfg.client.password = Some(Password::new("blind-pw"));
            cfg.client.request_timeout = Duration::from_millis(600);
            let e = Client::connect(rt.runtime(), cfg).await.expect_err("no CLUSTER permission");
            eprintln!("[figure] acl/{p}: a user without CLUSTER SHARDS/SLOTS: {e}");
            assert!(e.to_string().contains("NOPERM"), "{p}: {e}");
        });
    }
}

fn assert_noperm(e: &Error, p: &str) {
    match e {
        Error::Request(RequestError::Server(s)) => assert_eq!(s.kind(), &ServerErrorKind::NoPerm, "{p}: {e}"),
        other => panic!("{p}: expected a NOPERM server error, got {other:?}"),
    }
}
