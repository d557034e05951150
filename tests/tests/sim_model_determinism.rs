//! Simulation model: one seed replays exactly. A scenario with randomized replication lag,
//! random reply cuts, eviction sampling, WAITs and a crash produces the same trace, line for
//! line, every time it runs with the same seed (and a different one with another seed), so a
//! failing seed's trace can be printed and replayed.

use std::time::Duration;

use slotcache_core::client::{Cmd, Request};
use slotcache_core::key_slot;
use slotcache_tests::sim::{Chunking, EvictionPolicy, Sim, SimCluster, addr};

fn scenario(seed: u64) -> (String, Vec<String>) {
    let mut c = SimCluster::new(2, 2);
    c.randomize_replication_lag(Duration::from_millis(20));
    c.set_maxmemory(&addr(0), 20_000, EvictionPolicy::AllKeysRandom);
    let mut sim = Sim::new(c, Sim::config(), seed);
    sim.chunking = Chunking::Random;
    sim.enable_trace(100_000);
    let mut results = Vec::new();
    for i in 0..60 {
        let k = format!("d:{i}");
        let slot = key_slot(k.as_bytes());
        let id = sim.submit(Request::pipeline(vec![
            Cmd::new("SET").arg(k.as_str()).arg("x".repeat(500)).arg("PX").arg(1000 + i),
            Cmd::new("WAIT").arg(1).arg(5).with_slot(slot).with_read_only(false),
        ]));
        if i == 30 {
            sim.note("crash node 1");
            sim.crash_primary(&addr(1));
        }
        results.push(format!("{:?}", sim.wait(id)));
    }
    sim.run_for(Duration::from_millis(300));
    (sim.trace_dump(), results)
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let (a, ra) = scenario(7);
    let (b, rb) = scenario(7);
    assert!(a.lines().count() > 200, "a real trace: {}", a.lines().count());
    assert_eq!(ra, rb);
    if a != b {
        let first = a.lines().zip(b.lines()).position(|(x, y)| x != y);
        panic!("traces differ at line {first:?}");
    }
    let (c, _) = scenario(8);
    assert_ne!(a, c, "another seed, another schedule");
}
