//! Conformance (real cluster, every runtime): a master without replicas killed and restarted.
//!
//! 3 masters, no replicas. One master (a different one on each runtime) is killed with
//! `SIGKILL` while traffic runs on the other shards, then started again from its folder (same
//! port, same `nodes.conf`, so the same node id and slots; its data is gone, nothing is
//! persisted). Shows:
//!
//! - while it is down, its slots fail with a typed error (it is unreachable, or the cluster says
//!   `CLUSTERDOWN` for them), quickly, and the other shards keep serving without an error;
//! - once it is back, the client reconnects by itself (no call, no new client) and serves every
//!   slot of the node again, within a bound (a restarted master refuses queries for about 2 s
//!   while it rejoins: the bound is from its restart);
//! - zero wrong values on the other shards.

use std::time::{Duration, Instant};

use bytes::Bytes;
use slotcache_rt::{Client, Cmd, Value};
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::{ALL, TrafficRun, config, error_kind, keys_on, slot_owners, traffic_plan};

#[test]
fn restarted_master_is_reconnected_and_serves_its_slots_again() {
    let mut cluster = ClusterBuilder::new()
        .masters(3)
        .replicas(0)
        .args(["--cluster-require-full-coverage", "no"])
        .label("conf-restart")
        .start()
        .expect("cluster");
    for (round, rt) in ALL.into_iter().enumerate() {
        let p = rt.name();
        let victim = round;
        let owners = slot_owners(&cluster, 0).expect("owners");
        // Traffic on the other shards; probes spread over every slot range of the victim.
        let others = (0..3).filter(|&m| m != victim);
        let plan = traffic_plan(&cluster, &owners, others, 4, 6, &format!("rs:{p}")).expect("seed");
        let probes = keys_on(&owners, victim, 64, &format!("rs-probe:{p}"));
        let mut cfg = config(&cluster);
        cfg.client.request_timeout = Duration::from_secs(1);
        let c = &mut cluster;
        rt.block_on(async move {
            let cluster = c;
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            let probe = |i: usize| {
                let client = client.clone();
                let key = probes[i % probes.len()].clone();
                async move { client.send(Cmd::new("SET").arg(key.as_str()).arg("x")).await }
            };
            probe(0).await.expect("the victim serves before the kill");
            let run = TrafficRun::start(rt, &client, plan);
            rt.sleep(Duration::from_millis(200)).await;
            let connects_before = client.stats().await.expect("stats").connects;

            cluster.kill(victim).expect("kill");
            let t = Instant::now();
            let down = probe(1).await.expect_err("the killed node's slots fail");
            let down_took = t.elapsed();
            let down_kind = error_kind(&down);
            assert!(down_took < Duration::from_millis(500), "{p}: failing took {down_took:?}: {down}");
            assert!(
                down_kind.starts_with("Unreachable") || down_kind == "Server(CLUSTERDOWN)",
                "{p}: {down:?}"
            );
            rt.sleep(Duration::from_millis(200)).await;

            let t_restart = Instant::now();
            cluster.restart(victim).expect("restart");
            let pinged = t_restart.elapsed();
            // The client is left alone: it must find its way back by itself.
            let mut failures = Vec::new();
            let mut n = 2;
            let mut node_ok: Option<Duration> = None;
            let back = loop {
                if node_ok.is_none() {
                    let info = cluster.cmd_text(victim, ["CLUSTER", "INFO"]).unwrap_or_default();
                    if slotcache_tests::topo::info_field(&info, "cluster_state") == Some("ok") {
                        node_ok = Some(t_restart.elapsed());
                    }
                }
                match probe(n).await {
                    Ok(_) => break Some(t_restart.elapsed()),
                    Err(e) => failures.push(error_kind(&e)),
                }
                n += 1;
                if t_restart.elapsed() > Duration::from_secs(10) {
                    break None;
                }
                rt.sleep(Duration::from_millis(20)).await;
            };
            let back =
                back.unwrap_or_else(|| panic!("{p}: the restarted node never served again: {failures:?}"));
            // Every slot range of the node serves, reads included.
            for k in &probes {
                client.send(Cmd::new("SET").arg(k.as_str()).arg(format!("after:{k}"))).await.expect("set");
                let v = client.send(Cmd::new("GET").arg(k.as_str())).await.expect("get");
                assert_eq!(v, Value::Bulk(Bytes::from(format!("after:{k}"))), "{p}");
            }
            let all = run.finish().await;
            let stats = client.stats().await.expect("stats");
            client.close().await;
            let mut kinds = failures.clone();
            kinds.dedup();
            eprintln!(
                "[figure] restart/{p}: killed node {victim}'s slots failed in {} ms ({down_kind}); restarted \
                 node answered PING after {} ms and said cluster_state:ok after {:?} ms; client served its \
                 slots again {} ms after the restart ({} failed probes before: {kinds:?}); other shards: {} \
                 requests, {} errors; client reconnects {}",
                down_took.as_millis(),
                pinged.as_millis(),
                node_ok.map(|d| d.as_millis()),
                back.as_millis(),
                failures.len(),
                all.ops.len(),
                all.errors().count(),
                stats.connects - connects_before
            );
            assert!(back < Duration::from_secs(5), "{p}: served again only after {back:?}");
            if let Some(ok) = node_ok {
                assert!(
                    back <= ok + Duration::from_millis(200),
                    "{p}: served {back:?} after the restart, the node was ready after {ok:?}"
                );
            }
            assert!(all.wrong.is_empty(), "{p}: wrong values: {:?}", all.wrong);
            assert_eq!(all.errors().count(), 0, "{p}: other shards failed: {:?}", all.error_kinds());
            assert!(stats.connects > connects_before, "{p}: reconnected: {stats:?}");
        });
        cluster.wait_healthy(Duration::from_secs(30)).expect("healthy again");
    }
}
