//! Conformance (real cluster, every runtime): a master SIGKILLed under traffic.
//!
//! 3 masters + 3 replicas, node timeout 1000 ms, request timeout 1 s. The nodes run with
//! `cluster-require-full-coverage no`, so the surviving masters keep answering for their own
//! slots while the dead master's slots are unserved: whatever the healthy shards' traffic meets
//! is then the client's doing, not the servers' `CLUSTERDOWN` policy (with full coverage every
//! node refuses every key between the failure report and the promotion).
//!
//! 24 tasks (8 per shard) write and read their own keys, spread over every slot of their shard,
//! for a bounded time; one master is killed with `SIGKILL` mid-run (a different one on each
//! runtime, so the one cluster serves all three). Every value is `<key>|<sequence number>`, so
//! a reply for another key, a value never written, or a missing key is detected. Shows:
//!
//! - zero wrong values (and no stale read on a healthy shard);
//! - the client follows the promoted replica by itself (MOVED and topology refresh);
//! - errors happen only on the killed shard and only inside the failover window (from the kill
//!   until shortly after the promotion); the healthy shards never stall (no error, and no gap in
//!   their successes longer than a fraction of the window);
//! - the killed shard serves again soon after the promotion.
//!
//! Prints `[figure]` lines per runtime: the failover window seen by the client, errors (total,
//! killed shard, healthy shards), and the time from the promotion to the first success.

use std::time::Duration;

use slotcache_rt::Client;
use slotcache_tests::Role;
use slotcache_tests::conformance::{
    ALL, FailoverRound, Op, Traffic, TrafficRun, config, failover_cluster, traffic_plan,
};

const TASKS_PER_SHARD: usize = 8;
const KEYS_PER_TASK: usize = 8;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Traffic before the kill.
const WARM_UP: Duration = Duration::from_millis(600);
/// Traffic after the promotion.
const AFTER: Duration = Duration::from_millis(1500);
/// How long after the promotion errors on the killed shard are still tolerated.
const SETTLE: Duration = Duration::from_millis(1000);

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[test]
fn master_killed_under_traffic_on_every_runtime() {
    let mut cluster = failover_cluster("conf-failover");
    for (round, rt) in ALL.into_iter().enumerate() {
        let p = rt.name();
        // A different original master each round; its replica takes over.
        let FailoverRound { victim, replica, masters, owners } = FailoverRound::new(&cluster, round, p);

        // Keys: 8 tasks per shard, 8 keys each, spread over the shard's slots. Seeded with
        // sequence 0 and replicated before the kill, so a nil read is a wrong value.
        let plan = traffic_plan(
            &cluster,
            &owners,
            masters.iter().copied(),
            TASKS_PER_SHARD,
            KEYS_PER_TASK,
            &format!("fo:{p}"),
        )
        .expect("seed");

        let mut cfg = config(&cluster);
        cfg.client.request_timeout = REQUEST_TIMEOUT;
        let cluster = &mut cluster;
        rt.block_on(async move {
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            let run = TrafficRun::start(rt, &client, plan);
            let t0 = run.t0;
            rt.sleep(WARM_UP).await;

            let t_kill = t0.elapsed();
            cluster.kill(victim).expect("kill");
            let promoted = rt
                .wait_until(Duration::from_secs(30), Duration::from_millis(10), "the replica's promotion", || {
                    Ok(cluster.role(replica)? == Role::Master)
                })
                .await;
            let t_promoted = t0.elapsed();
            let agreed = rt
                .wait_until(Duration::from_secs(30), Duration::from_millis(20), "every node to agree", || {
                    let id = cluster.node(replica).id().to_owned();
                    for v in cluster.live() {
                        let entries = cluster.cluster_nodes(v)?;
                        if !entries.iter().any(|e| e.id == id && e.role() == Role::Master && !e.slots.is_empty()) {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                })
                .await;
            let t_agreed = t0.elapsed();
            rt.sleep(AFTER).await;
            let mut all = Traffic::default();
            let mut healthy_stale = 0;
            for (m, seen) in run.finish_each().await {
                if m != victim {
                    healthy_stale += seen.stale;
                }
                all.merge(seen);
            }
            let stats = client.stats().await.expect("stats");
            client.close().await;
            promoted.expect("promotion");
            agreed.expect("agreement");

            let errors: Vec<&Op> = all.errors().collect();
            let killed_errors: Vec<&Op> = errors.iter().copied().filter(|o| o.tag == victim).collect();
            let healthy_errors: Vec<&Op> = errors.iter().copied().filter(|o| o.tag != victim).collect();
            let kinds = all.error_kinds();
            let first_err = killed_errors.iter().map(|o| o.end).min();
            let last_err = killed_errors.iter().map(|o| o.end).max();
            let window = last_err.map_or(Duration::ZERO, |l| l.saturating_sub(t_kill));
            let first_ok_after = all
                .ops
                .iter()
                .filter(|o| o.tag == victim && o.start >= t_kill && o.error.is_none())
                .map(|o| o.end)
                .min();
            let recovery = first_ok_after.map(|t| t.as_secs_f64() * 1000.0 - t_promoted.as_secs_f64() * 1000.0);
            // The longest gap between successes on the healthy shards, from the kill to the end.
            let mut healthy_ok: Vec<Duration> = all
                .ops
                .iter()
                .filter(|o| o.tag != victim && o.error.is_none() && o.end >= t_kill)
                .map(|o| o.end)
                .collect();
            healthy_ok.sort();
            let healthy_gap = healthy_ok.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
            let killed_ops = all.ops.iter().filter(|o| o.tag == victim).count();

            eprintln!(
                "[figure] failover/{p}: node {victim} killed at +{}ms; replica {replica} promoted {} ms after \
                 the kill (every node agreed after {} ms)",
                ms(t_kill),
                ms(t_promoted - t_kill),
                ms(t_agreed - t_kill)
            );
            eprintln!(
                "[figure] failover/{p}: failover window seen by the client {} ms (errors from +{:?} to +{:?} \
                 ms after the kill); errors: {} total, {} on the killed shard, {} on healthy shards; \
                 {} requests ({} on the killed shard)",
                ms(window),
                first_err.map(|t| ms(t.saturating_sub(t_kill))),
                last_err.map(|t| ms(t.saturating_sub(t_kill))),
                errors.len(),
                killed_errors.len(),
                healthy_errors.len(),
                all.ops.len(),
                killed_ops,
            );
            eprintln!(
                "[figure] failover/{p}: first success on the killed shard {} ms after the promotion; \
                 longest gap between healthy-shard successes {} ms; stale reads (writes lost with the \
                 master) {}; error kinds {kinds:?}",
                recovery.map_or_else(|| "never".to_owned(), |r| format!("{r:.0}")),
                ms(healthy_gap),
                all.stale,
            );
            eprintln!(
                "[figure] failover/{p}: client stats: moved {}, refreshes {} ({} failed), topology changes \
                 {}, reconnects {} ({} failed), disconnects {}, retries {}, timeouts {}",
                stats.moved,
                stats.refreshes,
                stats.refresh_failures,
                stats.topology_changes,
                stats.connects,
                stats.connect_failures,
                stats.disconnects,
                stats.retries,
                stats.timeouts
            );

            assert!(all.wrong.is_empty(), "{p}: wrong values: {:?}", &all.wrong[..all.wrong.len().min(10)]);
            assert_eq!(healthy_stale, 0, "{p}: stale reads on healthy shards");
            assert!(healthy_errors.is_empty(), "{p}: healthy shards failed: {healthy_errors:?}");
            assert!(
                healthy_gap < Duration::from_millis(500),
                "{p}: the healthy shards stalled for {healthy_gap:?}"
            );
            for e in &killed_errors {
                assert!(
                    e.start + REQUEST_TIMEOUT >= t_kill && e.end <= t_promoted + SETTLE,
                    "{p}: an error outside the failover window (kill +{}ms, promoted +{}ms): {e:?}",
                    ms(t_kill),
                    ms(t_promoted)
                );
            }
            let recovery = recovery.expect("the killed shard served again");
            assert!(recovery < 1000.0, "{p}: the killed shard served again only {recovery:.0} ms after promotion");
            assert!(
                killed_ops > 100 && all.ops.iter().filter(|o| o.tag == victim && o.start > t_promoted + SETTLE).count() > 50,
                "{p}: too little traffic on the killed shard after the promotion"
            );
        });
    }
}
