//! Simulation: a connection drops with a pipeline in flight. Idempotent commands are sent again
//! on a new connection and succeed; a non-idempotent INCR is not sent again (it may have run),
//! so the caller learns that it may have executed instead of getting it applied twice.

use std::time::Duration;

use bytes::Bytes;
use slotcache_core::Value;
use slotcache_core::client::{Cmd, Reply, Request, RequestError};
use slotcache_tests::sim::{Sim, SimCluster};

#[test]
fn idempotent_commands_are_resent_incr_is_not() {
    let mut sim = Sim::new(SimCluster::new(1, 0), Sim::config(), 51);
    sim.call(Cmd::new("SET").arg("a").arg("1")).expect("set");
    let node = sim.cluster.owner_of(b"a");
    // The node takes the bytes but answers nothing: the pipeline is in flight...
    sim.pause(&node);
    let mut cmds = vec![Cmd::new("INCR").arg("counter")];
    cmds.extend((0..20).map(|_| Cmd::new("GET").arg("a")));
    let id = sim.submit(Request::pipeline(cmds));
    sim.run_for(Duration::from_millis(1));
    // ... when the connection drops (the held bytes are lost with it).
    sim.drop_connections(&node);
    sim.resume(&node);
    let Reply::Pipeline(results) = sim.wait(id).expect("pipeline") else { panic!("pipeline") };
    assert!(
        matches!(results[0], Err(RequestError::ConnectionLost { .. })),
        "INCR may have run: not resent, reported: {:?}",
        results[0]
    );
    for r in &results[1..] {
        assert_eq!(r.as_ref().expect("GET resent"), &Value::Bulk(Bytes::from("1")));
    }
    assert_eq!(sim.cluster.count(&node, "INCR"), 0, "INCR never reached the server twice (nor once)");
    assert!(sim.client.stats().disconnects >= 1);
}

#[test]
fn garbage_from_a_node_is_a_typed_protocol_error_and_the_client_recovers() {
    use slotcache_core::NodeAddr;
    use slotcache_core::client::{Client, ClientConfig, ConnId, Input, Output};
    #[allow(clippy::disallowed_methods)]
    let now = std::time::Instant::now();
    let mut client =
        Client::new(ClientConfig::new(vec![NodeAddr::new("127.0.0.1", 7000)]), now).expect("client");
    let mut conn: Option<ConnId> = None;
    loop {
        match client.poll_output() {
            Output::Connect { conn: c, .. } => conn = Some(c),
            Output::Wait(_) => break,
            _ => {}
        }
    }
    let conn = conn.expect("dials the seed");
    client.handle_input(now, Input::Connected(conn));
    while !matches!(client.poll_output(), Output::Wait(_)) {}
    client.handle_input(now, Input::Received(conn, b"\x00\x01garbage\r\n"));
    let mut closed = false;
    loop {
        match client.poll_output() {
            Output::Close { conn: c } => closed |= c == conn,
            Output::Wait(_) => break,
            _ => {}
        }
    }
    assert!(closed, "the connection that sent garbage is closed");
    assert_eq!(client.stats().protocol_errors, 1);
}
