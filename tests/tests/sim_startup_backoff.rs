//! Simulation: before the first topology, each seed is tried once at once, then failed rounds
//! back off (the refresh policy's backoff) instead of dialling the seeds in a loop until the
//! requests' deadlines; a seed that comes back is still found.

use std::time::Duration;

use slotcache_core::client::{Cmd, Request, RequestError};
use slotcache_tests::sim::{Sim, SimCluster, addr};

fn three_seeds() -> slotcache_core::client::ClientConfig {
    let mut cfg = Sim::config();
    cfg.seeds = vec![addr(0), addr(1), addr(2)];
    cfg
}

#[test]
fn dead_seeds_are_not_dialled_in_a_loop() {
    let mut sim = Sim::new(SimCluster::new(3, 0), three_seeds(), 94);
    for i in 0..3 {
        sim.kill(&addr(i));
    }
    let id = sim.submit(Request::command(Cmd::new("GET").arg("k")));
    let err = sim.wait(id).expect_err("no seed answers");
    assert!(matches!(err, RequestError::NoTopology { .. }), "{err:?}");
    let dials: u64 = sim.connects.values().sum();
    // One immediate round, then 200, 400, 800 ms apart within the 2 s budget.
    assert!(dials <= 8, "dialled {dials} times in {:?}: {:?}", sim.elapsed(), sim.connects);
    assert!(sim.connects.len() == 3, "every seed was tried: {:?}", sim.connects);
}

#[test]
fn many_requests_waiting_for_a_topology_do_not_shorten_the_backoff() {
    let mut sim = Sim::new(SimCluster::new(3, 0), three_seeds(), 95);
    for i in 0..3 {
        sim.kill(&addr(i));
    }
    let ids: Vec<_> = (0..200)
        .map(|i| {
            sim.run_for(Duration::from_millis(5));
            sim.submit(Request::command(Cmd::new("GET").arg(format!("k{i}"))))
        })
        .collect();
    for id in ids {
        assert!(sim.wait(id).is_err());
    }
    let dials: u64 = sim.connects.values().sum();
    assert!(dials <= 10, "200 waiting requests dialled {dials} times: {:?}", sim.connects);
}

#[test]
fn a_seed_that_comes_back_is_found() {
    let mut sim = Sim::new(SimCluster::new(3, 0), three_seeds(), 96);
    for i in 0..3 {
        sim.kill(&addr(i));
    }
    let id =
        sim.submit(Request::command(Cmd::new("SET").arg("k").arg("v")).with_timeout(Duration::from_secs(5)));
    sim.run_for(Duration::from_millis(700));
    for i in 0..3 {
        sim.cluster.nodes.get_mut(&addr(i)).expect("node").up = true;
    }
    let t = sim.elapsed();
    sim.wait(id).expect("served once the seeds are back");
    assert!(sim.elapsed() - t < Duration::from_secs(2), "found after {:?}", sim.elapsed() - t);
}
