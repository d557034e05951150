//! Conformance (real cluster): a one-shard cluster whose master is `SIGKILL`ed; the client
//! reaches the promoted replica by itself.
//!
//! 1 master + 1 replica, node timeout 1000 ms, request timeout 1 s; the client's only seed is
//! the master. With a single master there is no majority of masters left to vote, so Valkey
//! never fails over by itself: the operator promotes the replica (`CLUSTER FAILOVER TAKEOVER`)
//! once the master is dead, as the simulator's `crash_primary` does. Once the master is dead the client knows no live primary: it must ask the
//! replica it knows (which learns of its own promotion) for the topology. Before the fix it
//! asked only the primaries it knew, and every request failed `Unreachable` for ever. Shows:
//!
//! - after the promotion, a request succeeds within a bound (`BOUND`), with the value written
//!   and replicated before the kill;
//! - every failure before that is typed (`Unreachable`, `ConnectionLost`, `Timeout`).
//!
//! One runtime (tokio): the scenario kills the cluster's only master, so each runtime would
//! need a cluster of its own, and the fix is in the core, which every runtime drives alike.
//!
//! Prints a `[figure]` line: the times from the kill to the promotion and from the promotion to
//! the first success.

use std::time::{Duration, Instant};

use slotcache_rt::{Client, Cmd, Config, Value};
use slotcache_tests::conformance::{Rt, error_kind, seed_keys};
use slotcache_tests::{ClusterBuilder, Role};

/// How soon after the promotion the client must be served.
const BOUND: Duration = Duration::from_secs(3);

#[test]
fn single_shard_master_killed_the_client_reaches_the_promoted_replica() {
    let mut cluster = ClusterBuilder::new()
        .masters(1)
        .replicas(1)
        .node_timeout(Duration::from_millis(1000))
        .label("conf-1shard")
        .start()
        .expect("cluster");
    assert_eq!(cluster.role(0).expect("role"), Role::Master);
    assert_eq!(cluster.role(1).expect("role"), Role::Replica);
    let key = "one-shard:k".to_owned();
    seed_keys(&cluster, 0, std::slice::from_ref(&key)).expect("seed and replicate");
    let want = format!("{key}|0");
    let mut cfg = Config::new(vec![cluster.node(0).addr()]);
    cfg.client.client_name = Some("slotcache-conformance".into());
    cfg.client.request_timeout = Duration::from_secs(1);
    let rt = Rt::Tokio;
    let cluster = &mut cluster;
    rt.block_on(async move {
        let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
        let get = || client.send(Cmd::new("GET").arg(key.as_str()));
        assert_eq!(get().await.expect("get before the kill"), Value::Bulk(want.clone().into()));

        let t_kill = Instant::now();
        cluster.kill(0).expect("SIGKILL the master");
        // Some requests while the master is dead and nothing is promoted yet.
        for _ in 0..3 {
            let _ = get().await;
        }
        assert_eq!(cluster.cmd_text(1, ["CLUSTER", "FAILOVER", "TAKEOVER"]).expect("takeover"), "OK");
        rt.wait_until(Duration::from_secs(30), Duration::from_millis(10), "the replica's promotion", || {
            Ok(cluster.role(1)? == Role::Master)
        })
        .await
        .expect("promotion");
        let t_promoted = Instant::now();

        // Requests until one succeeds, paced by their own outcome, bounded by BOUND.
        let mut errors = Vec::new();
        let served = loop {
            match get().await {
                Ok(v) => break Some(v),
                Err(e) => errors.push(error_kind(&e)),
            }
            if t_promoted.elapsed() >= BOUND {
                break None;
            }
            rt.sleep(Duration::from_millis(10)).await;
        };
        let t_served = t_promoted.elapsed();
        let stats = client.stats().await.expect("stats");
        client.close().await;
        eprintln!(
            "[figure] one-shard failover: promoted {} ms after the kill; first success {} ms after the \
             promotion; {} failures before it {:?}; refreshes {} (failed {})",
            (t_promoted - t_kill).as_millis(),
            t_served.as_millis(),
            errors.len(),
            errors,
            stats.refreshes,
            stats.refresh_failures
        );
        let served = served.unwrap_or_else(|| panic!("not served {BOUND:?} after the promotion: {errors:?}"));
        assert_eq!(served, Value::Bulk(want.into()), "the replicated value");
        assert!(
            errors
                .iter()
                .all(|e| e.starts_with("Unreachable") || e == "ConnectionLost" || e.starts_with("Timeout")),
            "typed failures only: {errors:?}"
        );
    });
}
