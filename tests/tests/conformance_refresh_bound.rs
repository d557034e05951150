//! Conformance (real cluster, every runtime): the refresh policy's bound through a real failover.
//!
//! 3 masters + 3 replicas, node timeout 1000 ms, `cluster-require-full-coverage no`, request
//! timeout 1 s, the default `RefreshConfig` (min interval 100 ms, failure backoff from 50 ms).
//! Tasks write and read their keys on every shard (6 on the victim's shard, 2 on each other);
//! a master (a different one on each runtime) is killed with `SIGKILL`, its replica is promoted,
//! and the traffic runs until the killed shard has served again for 500 ms. Every retry decision
//! after a lost or refused connection to the dead node, and every `MOVED`, asks the policy for a
//! refresh: a storm of triggers (at least one per request that failed that way).
//!
//! The bound, from `core/src/topology/refresh.rs`: two refresh starts are at least
//! `min_interval` apart after a success, and at least `retry_initial` (then doubling) after a
//! failure; one refresh at a time. So over a window of length `T` in which `f` refreshes failed,
//! a client starts at most `1 + f + (T - f * retry_initial) / min_interval` refreshes (the
//! documented `T / min_interval + 1` when none fails). Shows, for the window from just before
//! the kill to the end:
//!
//! - the refreshes the client started (`Stats::refreshes`) are within that bound, while the
//!   triggers (counted low: one per request failed on a lost or refused connection, plus
//!   `MOVED`s) outnumber them more than three times;
//! - the servers agree: the live nodes ran no more `CLUSTER SHARDS` than the client counted
//!   (`INFO commandstats`; the dead node's count dies with it);
//! - the client still found the promoted replica (the killed shard served again), with no
//!   wrong value.
//!
//! Prints `[figure]` lines per runtime: the window, the refreshes against the bound, the
//! triggers, and the servers' count.

use std::time::{Duration, Instant};

use slotcache_rt::{Client, RefreshConfig};
use slotcache_tests::Role;
use slotcache_tests::conformance::{
    ALL, FailoverRound, Traffic, TrafficRun, cmdstat_calls, config, failover_cluster, traffic_plan,
};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
const AFTER: Duration = Duration::from_millis(500);

/// `CLUSTER SHARDS` calls summed over the live nodes but `skip`.
fn shards_calls(c: &slotcache_tests::Cluster, skip: usize) -> u64 {
    c.live()
        .into_iter()
        .filter(|&i| i != skip)
        .map(|i| cmdstat_calls(c, i, "cluster|shards").expect("stats"))
        .sum()
}

/// The most refreshes the policy allows to start within `window` when `failures` of them failed.
fn bound(cfg: &RefreshConfig, window: Duration, failures: u64) -> u64 {
    let at_min =
        window.saturating_sub(cfg.retry_initial.saturating_mul(u32::try_from(failures).unwrap_or(u32::MAX)));
    let gaps = at_min.as_nanos() / cfg.min_interval.as_nanos().max(1);
    1 + failures + u64::try_from(gaps).unwrap_or(u64::MAX)
}

#[test]
fn refreshes_through_a_failover_stay_within_the_policy_bound() {
    let mut cluster = failover_cluster("conf-refresh-bound");
    for (round, rt) in ALL.into_iter().enumerate() {
        let p = rt.name();
        // A different original master each round; its replica takes over.
        let FailoverRound { victim, replica, masters, owners } = FailoverRound::new(&cluster, round, p);
        let mut plan = traffic_plan(&cluster, &owners, [victim], 6, 6, &format!("rb:{p}")).expect("seed");
        let others = masters.iter().copied().filter(|&m| m != victim);
        plan.extend(traffic_plan(&cluster, &owners, others, 2, 6, &format!("rb:{p}")).expect("seed"));
        let mut cfg = config(&cluster);
        cfg.client.request_timeout = REQUEST_TIMEOUT;
        let policy = cfg.client.refresh.clone();
        assert_eq!(policy, RefreshConfig::default(), "{p}: the documented defaults");
        let c = &mut cluster;
        rt.block_on(async move {
            let cluster = c;
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            let run = TrafficRun::start(rt, &client, plan);
            let t0 = run.t0;
            rt.sleep(Duration::from_millis(400)).await;

            // The window holds both counter reads, so every start counted lies inside it.
            let w0 = Instant::now();
            let s0 = client.stats().await.expect("stats");
            let servers0 = shards_calls(cluster, victim);
            cluster.kill(victim).expect("kill");
            let t_kill = t0.elapsed();
            rt.wait_until(Duration::from_secs(30), Duration::from_millis(10), "the promotion", || {
                Ok(cluster.role(replica)? == Role::Master)
            })
            .await
            .expect("promotion");
            let promoted = t0.elapsed() - t_kill;
            // Until the client has served the killed shard again (its traffic succeeds).
            let probe = slotcache_tests::conformance::keys_on(&owners, victim, 1, &format!("rb-probe:{p}")).remove(0);
            let mut back = None;
            while back.is_none() && t0.elapsed() < t_kill + Duration::from_secs(20) {
                let cmd = slotcache_rt::Cmd::new("SET").arg(probe.as_str()).arg("x");
                if client.send(cmd).await.is_ok() {
                    back = Some(t0.elapsed() - t_kill);
                } else {
                    rt.sleep(Duration::from_millis(10)).await;
                }
            }
            let back = back.expect("the killed shard served again");
            rt.sleep(AFTER).await;
            let s1 = client.stats().await.expect("stats");
            let window = w0.elapsed();
            let servers = shards_calls(cluster, victim) - servers0;
            let mut all = Traffic::default();
            for (_, seen) in run.finish_each().await {
                all.merge(seen);
            }
            client.close().await;

            let refreshes = s1.refreshes - s0.refreshes;
            let failures = s1.refresh_failures - s0.refresh_failures;
            // A request that failed with a lost or refused connection asked for a refresh on
            // its way (the retry decision after each lost or refused connection asks for one),
            // usually several times; `MOVED`s followed ask too.
            let lost = all
                .errors()
                .filter(|o| o.error.as_deref().is_some_and(|e| e.starts_with("Unreachable") || e == "ConnectionLost"))
                .count() as u64;
            let triggers = lost + (s1.moved - s0.moved);
            let allowed = bound(&policy, window, failures);
            let documented = window.as_millis() / policy.min_interval.as_millis() + 1;
            eprintln!(
                "[figure] refresh-bound/{p}: node {victim} killed; replica {replica} promoted after {} ms; the \
                 killed shard served again {} ms after the kill; window {} ms",
                promoted.as_millis(),
                back.as_millis(),
                window.as_millis()
            );
            eprintln!(
                "[figure] refresh-bound/{p}: refreshes started {refreshes} ({failures} failed), bound {allowed} \
                 (T/min_interval + 1 = {documented}, plus what {failures} failures allow); triggers at least \
                 {triggers} ({lost} requests failed on a lost or refused connection, MOVED {}, retries written \
                 {}); CLUSTER SHARDS run by the live nodes {servers}; requests {} \
                 ({} failed), wrong values {}",
                s1.moved - s0.moved,
                s1.retries - s0.retries,
                all.ops.len(),
                all.errors().count(),
                all.wrong.len()
            );
            assert!(all.wrong.is_empty(), "{p}: wrong values: {:?}", &all.wrong[..all.wrong.len().min(5)]);
            assert!(refreshes >= 1, "{p}: the client never refreshed");
            assert!(refreshes <= allowed, "{p}: {refreshes} refreshes in {window:?} ({failures} failed): bound {allowed}");
            assert!(triggers > 3 * refreshes, "{p}: too few triggers to test the bound: {triggers} for {refreshes}");
            assert!(servers <= refreshes, "{p}: the servers ran {servers} CLUSTER SHARDS, the client counted {refreshes}");
        });
        cluster.wait_healthy(Duration::from_secs(30)).expect("healthy again");
    }
}
