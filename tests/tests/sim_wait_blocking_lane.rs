//! Simulation: a `WAIT` that blocks its connection holds up no other traffic. With one
//! connection per node, a write sent on the node's blocking lane (`Cmd::blocking`) and the
//! `WAIT` that follows it (`Cmd::after`) run on a connection of their own: while the `WAIT`
//! waits its full timeout for a frozen replica, a `GET` to the same primary answers at once.
//! Without the lane (the control), the same `GET` queues behind the `WAIT` on the node's one
//! connection: the simulation does model what the lane avoids.

use std::time::Duration;

use slotcache_core::client::{Cmd, Reply, Request};
use slotcache_core::key_slot;
use slotcache_tests::sim::{Sim, SimCluster, addr};

/// How long a plain `GET` took while a `WAIT` 1 200 waited for a frozen replica, with the
/// write and its `WAIT` on the blocking lane or not; and what the `WAIT` answered.
fn get_during_wait(lane: bool) -> (Duration, i64) {
    let mut sim = Sim::new(SimCluster::new(1, 1), Sim::config(), 3);
    sim.call(Cmd::new("SET").arg("a").arg("1")).expect("warm-up");
    sim.cluster.freeze_replica(&addr(1), true);
    let write = Cmd::new("SET").arg("k").arg("v");
    let wait = Cmd::new("WAIT").arg(1).arg(200).with_slot(key_slot(b"k")).after(0);
    let slow = sim.submit(Request::pipeline(vec![if lane { write.blocking() } else { write }, wait]));
    // The write answers and its WAIT goes out (and blocks) well within 5 ms.
    sim.run_for(Duration::from_millis(5));
    let started = sim.now;
    let v = sim.call(Cmd::new("GET").arg("a")).expect("GET");
    assert_eq!(v.as_str(), Some("1"));
    let took = sim.now - started;
    let Reply::Pipeline(replies) = sim.wait(slow).expect("the write and its WAIT") else {
        panic!("a pipeline")
    };
    let acked = match &replies[1] {
        Ok(slotcache_core::Value::Int(n)) => *n,
        other => panic!("WAIT answered {other:?}"),
    };
    (took, acked)
}

#[test]
fn a_wait_on_the_blocking_lane_holds_up_no_other_request() {
    let (with_lane, acked) = get_during_wait(true);
    assert_eq!(acked, 0, "the frozen replica acknowledged nothing");
    assert!(with_lane < Duration::from_millis(20), "the GET answered at once: {with_lane:?}");
    let (without, _) = get_during_wait(false);
    assert!(without >= Duration::from_millis(150), "control: without the lane the GET waits: {without:?}");
    eprintln!(
        "[figure] sim_wait_blocking_lane: GET during a 200 ms WAIT took {with_lane:?} with the lane, {without:?} without"
    );
}
