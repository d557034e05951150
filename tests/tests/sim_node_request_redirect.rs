//! Simulation: a command sent to one node (`Request::node`) that the node answers with `MOVED`
//! is not followed elsewhere: the `MOVED` is its answer, at once (before, the client sent it to
//! the same node again and again until its time ran out). A request routed by slot is still
//! redirected and served.

use std::time::Duration;

use slotcache_core::ServerErrorKind;
use slotcache_core::client::{Cmd, RequestError};
use slotcache_tests::sim::{Sim, SimCluster, addr};

#[test]
fn a_redirect_is_the_answer_of_a_one_node_request() {
    let mut sim = Sim::new(SimCluster::new(3, 0), Sim::config(), 5);
    sim.call(Cmd::new("SET").arg("k").arg("v")).expect("set");
    let owner = sim
        .client
        .topology()
        .expect("topology")
        .primary(slotcache_core::key_slot(b"k"))
        .expect("owner")
        .addr
        .clone();
    let other = (0..3).map(addr).find(|a| *a != owner).expect("another primary");
    let started = sim.now;
    let e = sim.call_node(&other, Cmd::new("GET").arg("k")).expect_err("a MOVED");
    match &e {
        RequestError::Server(s) => assert!(matches!(s.kind(), ServerErrorKind::Moved { .. }), "{e}"),
        other => panic!("expected the MOVED, got {other:?}"),
    }
    let took = sim.now - started;
    assert!(took < Duration::from_millis(50), "answered at once, not at the deadline: {took:?}");
    assert_eq!(sim.client.stats().moved, 1, "one MOVED, not a loop");
    // By slot, the same command is served by the owner.
    assert_eq!(sim.call(Cmd::new("GET").arg("k")).expect("get").as_str(), Some("v"));
}
