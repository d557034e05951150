//! Conformance (real cluster, every runtime): get/set for keys in every slot range, MGET and DEL
//! split per slot and reassembled in order, pipelines across slots, fan-out to all primaries,
//! counters, and typed errors for refused input.

use bytes::Bytes;
use slotcache_rt::{Client, Cmd, Error, Value};
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::{ALL, config};

#[test]
fn get_set_split_pipeline_fanout_on_every_runtime() {
    let cluster = ClusterBuilder::new().masters(3).replicas(0).label("conf-basic").start().expect("cluster");
    for rt in ALL {
        let cfg = config(&cluster);
        rt.block_on(async move {
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            let p = rt.name();
            // Keys spread over every slot range; each owner gets its share.
            for i in 0..600 {
                client
                    .send(Cmd::new("SET").arg(format!("{p}:k:{i}")).arg(format!("v{i}")))
                    .await
                    .expect("set");
            }
            for i in (0..600).step_by(7) {
                let v = client.send(Cmd::new("GET").arg(format!("{p}:k:{i}"))).await.expect("get");
                assert_eq!(v, Value::Bulk(Bytes::from(format!("v{i}"))), "{p}");
            }
            // MGET across slots, in the caller's order, misses included.
            let mut mget = Cmd::new("MGET");
            for i in 0..700 {
                mget.push_arg(format!("{p}:k:{i}"));
            }
            let Value::Array(vals) = client.send(mget).await.expect("mget") else { panic!("array") };
            assert_eq!(vals.len(), 700);
            for (i, v) in vals.iter().enumerate() {
                let want = if i < 600 { Value::Bulk(Bytes::from(format!("v{i}"))) } else { Value::Nil };
                assert_eq!(v, &want, "{p} position {i}");
            }
            // A pipeline across slots keeps order.
            let cmds = (0..100).map(|i| Cmd::new("GET").arg(format!("{p}:k:{i}"))).collect();
            let replies = client.pipeline(cmds).await.expect("pipeline");
            for (i, r) in replies.into_iter().enumerate() {
                assert_eq!(r.expect("get"), Value::Bulk(Bytes::from(format!("v{i}"))));
            }
            // Fan-out: the primaries' DBSIZEs sum to what this runtime wrote so far (and more from
            // the runtimes before it).
            let per = client.all_primaries(Cmd::new("DBSIZE")).await.expect("fan-out");
            assert_eq!(per.len(), 3);
            let total: i64 =
                per.iter().map(|(_, r)| r.as_ref().expect("dbsize").as_int().expect("int")).sum();
            assert!(total >= 600, "{p}: {total}");
            assert_eq!(client.send(Cmd::new("DBSIZE")).await.expect("merged").as_int(), Some(total));
            // DEL split per slot sums.
            let mut del = Cmd::new("DEL");
            for i in 0..600 {
                del.push_arg(format!("{p}:k:{i}"));
            }
            assert_eq!(client.send(del).await.expect("del"), Value::Int(600));
            // Refused before sending: cross-slot RENAME, connection-state commands.
            let e = client.send(Cmd::new("RENAME").arg("a").arg("b")).await.expect_err("cross-slot");
            assert!(matches!(e, Error::Submit(_)), "{e:?}");
            let e = client.send(Cmd::new("MULTI")).await.expect_err("connection-scoped");
            assert!(matches!(e, Error::Submit(_)), "{e:?}");
            let stats = client.stats().await.expect("stats");
            assert_eq!(stats.moved, 0, "{p}: routing needed no redirect: {stats:?}");
            assert!(stats.connects >= 3, "{p}: {stats:?}");
            client.close().await;
            let e = client.send(Cmd::new("PING")).await.expect_err("closed");
            assert_eq!(e, Error::Closed);
        });
    }
}

#[test]
fn unreachable_seeds_are_named_in_the_error() {
    // A port nobody listens on (bound then dropped).
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    for rt in ALL {
        let mut cfg = slotcache_rt::Config::new(vec![slotcache_rt::NodeAddr::new("127.0.0.1", port)]);
        cfg.client.request_timeout = std::time::Duration::from_millis(300);
        let e = rt.block_on(Client::connect(rt.runtime(), cfg)).expect_err("nobody answers");
        let msg = e.to_string();
        assert!(msg.contains(&format!("127.0.0.1:{port}")), "{}: the seed is named: {msg}", rt.name());
    }
}
