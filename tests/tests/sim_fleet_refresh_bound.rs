//! Simulation (issue 19): the topology refreshes a fleet of clients sends a cluster during a
//! failover. A failover must not become a refresh storm (valkey-go#140: 5,000 clients sending
//! `CLUSTER SHARDS` at once; rueidis#335: 1.3 million refreshes a minute).
//!
//! Each client is its own simulation (its own seed, so its own jitter) of one 3+3 cluster under
//! a steady load of reads on keys spread over every slot. A second in, primary 0 is killed; 1.5 s
//! later (the node timeout) its replica is promoted; the run ends 2.5 s after that. Clients do
//! not affect each other's refresh decisions (the servers' answers do not depend on load), so
//! the fleet's load is the sum of the clients'. Counted: every `CLUSTER SHARDS` any node
//! received in the 4 s from the kill, by 10 ms bucket.
//!
//! **The bound** (from the refresh policy, `core/src/topology/refresh.rs`): one client starts at
//! most `T / min_interval + 1` refreshes in `T` under a continuous stream of triggers, plus one
//! follow-up, plus its failure retries (which back off from `retry_initial`, doubling). With the
//! defaults (100 ms, 50 ms) and `T` = 4 s that is at most 42 + 6 = 48 per client, and in any
//! 100 ms window at most 2 + 1 per client: a fleet of N clients sends at most 48·N in the
//! failover and 3·N in any 100 ms. The test holds every fleet to both, and reports what the
//! fleets actually sent.

use std::time::Duration;

use slotcache_core::client::{ClientConfig, Cmd, Request};
use slotcache_tests::sim::{Sim, SimCluster, addr};

/// 10 ms buckets over the 4 s after the kill.
const BUCKET: Duration = Duration::from_millis(10);
const BUCKETS: usize = 400;
const NODE_TIMEOUT: Duration = Duration::from_millis(1_500);
/// Reads per 10 ms per client.
const READS: usize = 2;

/// `CLUSTER SHARDS` received by the cluster from one client, per bucket after the kill.
fn one_client(cfg: ClientConfig, seed: u64) -> Vec<u64> {
    let mut sim = Sim::new(SimCluster::new(3, 1), cfg, seed);
    let mut key = 0u64;
    let mut load = |sim: &mut Sim| {
        for _ in 0..READS {
            key += 1;
            let _ = sim.submit(Request::command(Cmd::new("GET").arg(format!("fleet:{key}"))));
        }
        sim.run_for(BUCKET);
    };
    for _ in 0..100 {
        load(&mut sim);
    }
    let primary = addr(0);
    let replica = sim.cluster.best_replica(&primary).expect("a replica");
    sim.kill(&primary);
    let mut buckets = Vec::with_capacity(BUCKETS);
    let mut last = sim.cluster.count_all("CLUSTER SHARDS");
    for i in 0..BUCKETS {
        if BUCKET * u32::try_from(i).expect("few buckets") == NODE_TIMEOUT {
            sim.promote(&replica);
        }
        load(&mut sim);
        let now = sim.cluster.count_all("CLUSTER SHARDS");
        buckets.push(now - last);
        last = now;
    }
    buckets
}

/// `n` clients (seeds 1..=n), on two threads: they are independent simulations.
fn fleet(n: u64, cfg: &ClientConfig) -> Vec<Vec<u64>> {
    std::thread::scope(|s| {
        let odd =
            s.spawn(|| (1..=n).step_by(2).map(|seed| one_client(cfg.clone(), seed)).collect::<Vec<_>>());
        let even: Vec<Vec<u64>> = (2..=n).step_by(2).map(|seed| one_client(cfg.clone(), seed)).collect();
        let odd = odd.join().expect("the other half");
        let mut all = Vec::with_capacity(odd.len() + even.len());
        let mut even = even.into_iter();
        for a in odd {
            all.push(a);
            all.extend(even.next());
        }
        all
    })
}

/// The most refreshes `client` sent in any 100 ms.
fn peak_window(client: &[u64]) -> u64 {
    client.windows(10).map(|w| w.iter().sum::<u64>()).max().unwrap_or(0)
}

/// Per-client bound over the run and per 100 ms window (see the module docs).
const PER_CLIENT_RUN: u64 = 48;
const PER_CLIENT_WINDOW: u64 = 3;

#[test]
fn a_failover_seen_by_a_fleet_stays_within_the_bound() {
    let fleet = fleet(1_000, &Sim::config());
    for n in [10usize, 100, 1_000] {
        let clients = &fleet[..n];
        let per_client: Vec<u64> = clients.iter().map(|b| b.iter().sum()).collect();
        let total: u64 = per_client.iter().sum();
        let most = per_client.iter().copied().max().unwrap_or(0);
        let summed: Vec<u64> = (0..BUCKETS).map(|i| clients.iter().map(|b| b[i]).sum()).collect();
        let fleet_peak = summed.windows(10).map(|w| w.iter().sum::<u64>()).max().unwrap_or(0);
        let peak_bucket = summed.iter().copied().max().unwrap_or(0);
        eprintln!(
            "[figure] fleet of {n}: {total} CLUSTER SHARDS in the 4 s after the kill ({:.1} per client, \
             at most {most}); peak {fleet_peak} in 100 ms, {peak_bucket} in 10 ms (bound {} per run, {} per 100 ms)",
            total as f64 / n as f64,
            PER_CLIENT_RUN * n as u64,
            PER_CLIENT_WINDOW * n as u64,
        );
        assert!(most <= PER_CLIENT_RUN, "a client sent {most} refreshes in 4 s");
        assert!(
            fleet_peak <= PER_CLIENT_WINDOW * n as u64,
            "{fleet_peak} refreshes in 100 ms from {n} clients"
        );
        for (c, b) in clients.iter().enumerate() {
            let window = peak_window(b);
            assert!(window <= PER_CLIENT_WINDOW, "client {c} sent {window} refreshes in 100 ms");
        }
    }
    assert!(fleet.iter().all(|b| b.iter().sum::<u64>() >= 1), "every client refreshed after the kill");
}

/// The control: with a minimum interval of 10 ms (and no jitter) the same failover makes every
/// client refresh far more often, over the per-window bound the test above holds clients to. A
/// policy that lost its minimum interval would fail that test.
#[test]
fn without_the_minimum_interval_the_bound_breaks() {
    let mut cfg = Sim::config();
    cfg.refresh.min_interval = Duration::from_millis(10);
    cfg.refresh.jitter_per_node = Duration::ZERO;
    let fleet = fleet(10, &cfg);
    let per_client: Vec<u64> = fleet.iter().map(|b| b.iter().sum()).collect();
    let peaks: Vec<u64> = fleet.iter().map(|b| peak_window(b)).collect();
    eprintln!(
        "[figure] control (min_interval 10 ms): refreshes per client {per_client:?}, peaks per 100 ms {peaks:?}"
    );
    assert!(peaks.iter().all(|p| *p > PER_CLIENT_WINDOW), "every client over the bound: {peaks:?}");
}
