//! Simulation: replies split at every byte, and at random points, decode to the same results.

use bytes::Bytes;
use slotcache_core::Value;
use slotcache_core::client::Cmd;
use slotcache_tests::sim::{Chunking, Sim, SimCluster};

fn run(chunking: Chunking, seed: u64) {
    let mut sim = Sim::new(SimCluster::new(3, 1), Sim::config(), seed);
    sim.chunking = chunking;
    let mut mget = Cmd::new("MGET");
    for i in 0..80 {
        let v = "x".repeat(i * 7);
        sim.call(Cmd::new("SET").arg(format!("c:{i}")).arg(v.as_str())).expect("set");
        assert_eq!(
            sim.call(Cmd::new("GET").arg(format!("c:{i}"))).expect("get"),
            Value::Bulk(Bytes::from(v))
        );
        mget.push_arg(format!("c:{i}"));
    }
    let Value::Array(all) = sim.call(mget).expect("mget") else { panic!("array") };
    for (i, v) in all.iter().enumerate() {
        assert_eq!(v, &Value::Bulk(Bytes::from("x".repeat(i * 7))));
    }
}

#[test]
fn every_byte() {
    run(Chunking::EveryByte, 71);
}

#[test]
fn random_cuts() {
    for seed in 0..5 {
        run(Chunking::Random, 72 + seed);
    }
}
