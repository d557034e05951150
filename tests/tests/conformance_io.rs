//! Conformance (real cluster, every runtime) for the driver's own socket handling: values larger
//! than one read or one write, deep pipelines, and connections the server closes under the client.

use std::time::{Duration, Instant};

use bytes::Bytes;
use slotcache_rt::{Client, Cmd, Value};
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::{ALL, config};

#[test]
fn large_values_deep_pipelines_and_killed_connections_on_every_runtime() {
    let cluster = ClusterBuilder::new().masters(3).replicas(0).label("conf-io").start().expect("cluster");
    for rt in ALL {
        let cfg = config(&cluster);
        let p = rt.name();
        rt.block_on(async {
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            // 4 MiB each way: many reads, and writes the socket cannot take at once.
            let big = Bytes::from((0..4 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
            client.send(Cmd::new("SET").arg(format!("{p}:big")).arg(big.clone())).await.expect("set big");
            let v = client.send(Cmd::new("GET").arg(format!("{p}:big"))).await.expect("get big");
            assert_eq!(v, Value::Bulk(big), "{p}");
            // Many requests in flight at once from many tasks, replies in order per task.
            let tasks: Vec<_> = (0..32)
                .map(|t| {
                    let c = client.clone();
                    rt.spawn(async move {
                        for i in 0..200 {
                            let k = format!("{p}:t{t}:{i}");
                            c.send(Cmd::new("SET").arg(k.as_str()).arg(i)).await.expect("set");
                            let v = c.send(Cmd::new("GET").arg(k.as_str())).await.expect("get");
                            assert_eq!(v, Value::Bulk(Bytes::from(i.to_string())));
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await;
            }
            let cmds = (0..5000).map(|i| Cmd::new("GET").arg(format!("{p}:t0:{}", i % 200))).collect();
            let replies = client.pipeline(cmds).await.expect("pipeline");
            assert_eq!(replies.len(), 5000);
            assert!(replies.iter().enumerate().all(|(i, r)| {
                r.as_ref().is_ok_and(|v| *v == Value::Bulk(Bytes::from((i % 200).to_string())))
            }));
            // The servers close every client connection: the client notices and reconnects.
            let before = client.stats().await.expect("stats");
            for m in 0..3 {
                cluster.cmd(m, ["CLIENT", "KILL", "TYPE", "normal"]).expect("client kill");
            }
            let t0 = Instant::now();
            let mut ok = 0;
            while ok < 50 && t0.elapsed() < Duration::from_secs(10) {
                match client.send(Cmd::new("GET").arg(format!("{p}:t1:{ok}"))).await {
                    Ok(v) => {
                        assert_eq!(v, Value::Bulk(Bytes::from(ok.to_string())), "{p}");
                        ok += 1;
                    }
                    Err(e) => {
                        eprintln!("{p}: while reconnecting: {e}");
                        rt.sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            assert_eq!(ok, 50, "{p}: the client did not recover within 10 s");
            let after = client.stats().await.expect("stats");
            assert!(after.disconnects > before.disconnects, "{p}: {before:?} -> {after:?}");
            client.close().await;
        });
    }
}
