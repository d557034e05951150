//! Simulation model: network faults. A slow node delays only its own replies, and a connection
//! never lets a later reply overtake an earlier one when the delay heals; a half-open
//! connection (bytes accepted, nothing answered, no close) and a silent node make requests time
//! out at their deadline with a typed error; unanswered connects fail at the connect timeout and
//! the client reconnects once they are answered again.

use std::time::Duration;

use bytes::Bytes;
use slotcache_core::Value;
use slotcache_core::client::{Cmd, Request, RequestError};
use slotcache_tests::sim::{Sim, SimCluster, addr};

fn key_on(sim: &Sim, node: u16) -> String {
    (0..)
        .map(|i| format!("nf:{i}"))
        .find(|k| sim.cluster.owner_of(k.as_bytes()) == addr(node))
        .expect("a key")
}

#[test]
fn a_slow_node_delays_only_its_replies_and_keeps_their_order() {
    let mut sim = Sim::new(SimCluster::new(2, 0), Sim::config(), 51);
    let (slow, fast) = (key_on(&sim, 0), key_on(&sim, 1));
    sim.call(Cmd::new("SET").arg(slow.as_str()).arg("s")).expect("set");
    sim.call(Cmd::new("SET").arg(fast.as_str()).arg("f")).expect("set");
    sim.slow_node(&addr(0), Duration::from_millis(50));
    let t = sim.now;
    sim.call(Cmd::new("GET").arg(fast.as_str())).expect("fast");
    assert!(sim.now - t < Duration::from_millis(1), "{:?}", sim.now - t);
    let t = sim.now;
    let first = sim.submit(Request::command(Cmd::new("GET").arg(slow.as_str())));
    sim.run_for(Duration::from_millis(60));
    sim.slow_node(&addr(0), Duration::ZERO);
    let second = sim.submit(Request::command(Cmd::new("GET").arg(slow.as_str())));
    sim.run_until(Duration::from_secs(1), |s| s.completed.contains_key(&second));
    assert!(sim.completed.contains_key(&first), "the earlier reply arrived first");
    let done = sim.now - t;
    assert!(done >= Duration::from_millis(100), "two slow legs: {done:?}");
    assert_eq!(sim.wait(first).expect("get").into_value(), Some(Value::Bulk(Bytes::from("s"))));
}

#[test]
fn half_open_connections_and_silent_nodes_time_out_with_a_typed_error() {
    let mut sim = Sim::new(SimCluster::new(2, 0), Sim::config(), 52);
    sim.enable_trace(1000);
    let (a, b) = (key_on(&sim, 0), key_on(&sim, 1));
    sim.call(Cmd::new("SET").arg(a.as_str()).arg("v")).expect("set");
    sim.call(Cmd::new("SET").arg(b.as_str()).arg("v")).expect("set");
    sim.half_open(&addr(0));
    sim.silence(&addr(1), true);
    for k in [&a, &b] {
        let t = sim.now;
        let err = sim.call(Cmd::new("GET").arg(k.as_str())).expect_err("never answered");
        assert!(matches!(err, RequestError::Timeout { .. }), "{err:?}");
        let took = sim.now - t;
        assert!(
            took >= Duration::from_millis(1990) && took <= Duration::from_secs(2),
            "at the deadline: {took:?}"
        );
    }
    let lost = sim.trace().expect("trace").entries().filter(|e| e.text.contains("bytes lost")).count();
    assert!(lost >= 2, "the trace shows the lost bytes:\n{}", sim.trace_dump());
}

/// Found with the simulator: a reply timeout leaves the connection in place (replies.rs
/// `expire_parent` fails the request and keeps the connection), so on a half-open connection,
/// or one whose bytes a stalled node dropped, every later request to that node times out too:
/// the client never opens a new connection while the old one is not closed by the OS.
#[test]
#[ignore = "client issue: a connection is kept after reply timeouts; see the doc comment"]
fn a_half_open_connection_is_replaced_after_a_reply_timeout() {
    let mut sim = Sim::new(SimCluster::new(1, 0), Sim::config(), 55);
    sim.enable_trace(1000);
    sim.call(Cmd::new("SET").arg("k").arg("v")).expect("set");
    sim.half_open(&addr(0));
    let _ = sim.call(Cmd::new("GET").arg("k"));
    sim.run_for(Duration::from_millis(100));
    let v = sim.call(Cmd::new("GET").arg("k"));
    assert_eq!(v.unwrap_or_else(|e| panic!("{e}\n{}", sim.trace_dump())), Value::Bulk(Bytes::from("v")));
}

#[test]
fn unanswered_connects_fail_at_the_connect_timeout() {
    let mut sim = Sim::new(SimCluster::new(1, 0), Sim::config(), 54);
    sim.call(Cmd::new("SET").arg("k").arg("v")).expect("set");
    sim.drop_connects(&addr(0), true);
    sim.drop_connections(&addr(0));
    sim.run_for(Duration::from_millis(1));
    let t = sim.now;
    let err = sim.call(Cmd::new("GET").arg("k")).expect_err("cannot connect");
    assert!(matches!(err, RequestError::Timeout { .. } | RequestError::Unreachable { .. }), "typed: {err:?}");
    assert!(sim.now - t >= Duration::from_millis(900), "waited for the connect timeout: {:?}", sim.now - t);
    sim.drop_connects(&addr(0), false);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.call(Cmd::new("GET").arg("k")).expect("reconnected"), Value::Bulk(Bytes::from("v")));
}
