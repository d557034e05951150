//! The client against a standalone node: detection in [`Mode::Auto`], the queries of
//! [`Mode::Standalone`], and the refusals of a node of the other kind.

use core::time::Duration;
use std::time::Instant;

use super::*;

const DISABLED: &[u8] = b"-ERR This instance has cluster support disabled\r\n";
const HELLO: &[u8] = b"%1\r\n$5\r\nproto\r\n:3\r\n";

fn seed() -> NodeAddr {
    NodeAddr::new("127.0.0.1", 7000)
}

/// A bulk string reply.
fn bulk(text: &str) -> Vec<u8> {
    format!("${}\r\n{text}\r\n", text.len()).into_bytes()
}

/// The `INFO` of a standalone primary with one online replica at 7001.
fn primary_info(cluster_enabled: u8) -> Vec<u8> {
    bulk(&format!(
        "# Server\r\nrun_id:abc\r\n\r\n# Replication\r\nrole:master\r\nconnected_slaves:1\r\n\
         slave0:ip=127.0.0.1,port=7001,state=online,offset=10,lag=0\r\n\r\n# Cluster\r\ncluster_enabled:{cluster_enabled}\r\n"
    ))
}

/// A client with `cfg` (seed 7000), its seed connection open, and the bytes written on it.
fn started(mut cfg: ClientConfig, t0: Instant) -> (Client, ConnId, Vec<u8>) {
    cfg.seeds = vec![seed()];
    let mut c = Client::new(cfg, t0).expect("valid");
    let (out, _) = drain(&mut c);
    let conn = out
        .iter()
        .find_map(|o| match o {
            Output::Connect { conn, .. } => Some(*conn),
            _ => None,
        })
        .expect("the client dials its seed");
    c.handle_input(t0, Input::Connected(conn));
    let written = written(&mut c);
    (c, conn, written)
}

/// Drains outputs until `Wait`.
fn drain(c: &mut Client) -> (Vec<Output>, Option<Instant>) {
    let mut out = Vec::new();
    loop {
        match c.poll_output() {
            Output::Wait(at) => return (out, at),
            o => out.push(o),
        }
    }
}

/// Drains, returning every byte transmitted.
fn written(c: &mut Client) -> Vec<u8> {
    drain(c)
        .0
        .into_iter()
        .filter_map(|o| match o {
            Output::Transmit { data, .. } => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn has(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The result of request `id` among the outputs.
fn completion(out: Vec<Output>, id: RequestId) -> Option<Result<Reply, RequestError>> {
    out.into_iter().find_map(|o| match o {
        Output::Completed { id: done, result, .. } if done == id => Some(result),
        _ => None,
    })
}

#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn auto_mode_detects_a_standalone_node_and_reads_from_its_replica() {
    let t0 = Instant::now();
    let cfg = ClientConfig { read_from: ReadFrom::PreferReplica, ..ClientConfig::default() };
    assert_eq!(cfg.mode, Mode::Auto, "the default");
    let (mut c, conn, w) = started(cfg, t0);
    assert!(has(&w, "HELLO") && has(&w, "SHARDS"), "a cluster is asked for first");
    // HELLO answered: no READONLY (the seed is not known to be a replica: only connections to
    // listed replicas get it); CLUSTER SHARDS is refused.
    c.handle_input(t0, Input::Received(conn, HELLO));
    assert!(!has(&written(&mut c), "READONLY"));
    c.handle_input(t0, Input::Received(conn, DISABLED));
    let w = written(&mut c);
    assert!(has(&w, "INFO") && !has(&w, "SLOTS"), "INFO, not CLUSTER SLOTS, on the same connection");
    c.handle_input(t0, Input::Received(conn, &primary_info(0)));
    let (out, _) = drain(&mut c);
    assert!(
        out.iter().any(|o| matches!(o, Output::Event(Event::TopologyChanged { changed, .. })
            if changed.iter().map(|r| r.len()).sum::<usize>() == 16384)),
        "every slot is announced: {out:?}"
    );
    let t = c.topology().expect("a topology");
    assert!(t.is_standalone() && t.is_fully_covered());
    assert_eq!(t.shards()[0].primary.addr, seed());
    assert_eq!(t.shards()[0].replicas[0].addr, NodeAddr::new("127.0.0.1", 7001));

    // A read goes to the replica, a write to the primary (on the open connection).
    c.submit(t0, Request::command(Cmd::new("GET").arg("k"))).expect("submitted");
    let (out, _) = drain(&mut c);
    assert!(out.iter().any(|o| matches!(o, Output::Connect { addr, .. } if addr.port() == 7001)), "{out:?}");
    c.submit(t0, Request::command(Cmd::new("SET").arg("k").arg("v"))).expect("submitted");
    let (out, _) = drain(&mut c);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Transmit { conn: on, data } if *on == conn && has(data, "SET"))),
        "{out:?}"
    );
    assert_eq!(c.stats().refresh_failures, 0);
}

#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn cluster_mode_refuses_a_standalone_seed_at_once() {
    let t0 = Instant::now();
    let cfg = ClientConfig {
        mode: Mode::Cluster,
        request_timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    };
    let (mut c, conn, _) = started(cfg, t0);
    let id = c.submit(t0, Request::command(Cmd::new("GET").arg("k"))).expect("submitted");
    drain(&mut c);
    c.handle_input(t0, Input::Received(conn, HELLO));
    c.handle_input(t0, Input::Received(conn, DISABLED));
    let (out, _) = drain(&mut c);
    match completion(out, id) {
        Some(Err(e @ RequestError::ModeMismatch { .. })) => {
            assert_eq!(
                e,
                RequestError::ModeMismatch {
                    addr: seed(),
                    configured: Mode::Cluster,
                    found: Mode::Standalone
                }
            );
            assert_eq!(
                e.to_string(),
                "127.0.0.1:7000 is a standalone node but the client's mode is cluster: set mode to standalone or auto"
            );
        }
        other => panic!("expected ModeMismatch at once, not at the 10 s deadline: {other:?}"),
    }
    assert!(c.topology().is_none());
}

#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn standalone_mode_asks_info_only_and_refuses_a_cluster_node() {
    let t0 = Instant::now();
    let cfg = ClientConfig {
        mode: Mode::Standalone,
        read_from: ReadFrom::PreferReplica,
        ..ClientConfig::default()
    };
    let (mut c, conn, w) = started(cfg.clone(), t0);
    let id = c.submit(t0, Request::command(Cmd::new("GET").arg("k"))).expect("submitted");
    c.handle_input(t0, Input::Received(conn, HELLO));
    let w = [w, written(&mut c)].concat();
    assert!(has(&w, "INFO"), "INFO is the topology query");
    assert!(!has(&w, "CLUSTER") && !has(&w, "READONLY"), "{}", String::from_utf8_lossy(&w));
    c.handle_input(t0, Input::Received(conn, &primary_info(1)));
    let (out, _) = drain(&mut c);
    assert!(
        matches!(completion(out, id), Some(Err(RequestError::ModeMismatch { found: Mode::Cluster, .. }))),
        "a cluster node is refused at once"
    );

    // A standalone node is served.
    let (mut c, conn, _) = started(cfg, t0);
    c.handle_input(t0, Input::Received(conn, HELLO));
    c.handle_input(t0, Input::Received(conn, &primary_info(0)));
    drain(&mut c);
    assert!(c.topology().is_some_and(Topology::is_standalone));
}

#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn a_replica_seed_routes_writes_to_its_primary_and_asks_it_next() {
    let t0 = Instant::now();
    let cfg = ClientConfig { mode: Mode::Standalone, ..ClientConfig::default() };
    let (mut c, conn, _) = started(cfg, t0);
    c.handle_input(t0, Input::Received(conn, HELLO));
    let info = "role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7005\r\nmaster_link_status:up\r\ncluster_enabled:0\r\n";
    c.handle_input(t0, Input::Received(conn, &bulk(info)));
    drain(&mut c);
    let t = c.topology().expect("a topology");
    assert_eq!(t.shards()[0].primary.addr, NodeAddr::new("127.0.0.1", 7005));
    assert_eq!(t.shards()[0].replicas[0].addr, seed());
    // A write goes to the primary at once.
    c.submit(t0, Request::command(Cmd::new("SET").arg("k").arg("v"))).expect("submitted");
    let (out, wake) = drain(&mut c);
    assert!(out.iter().any(|o| matches!(o, Output::Connect { addr, .. } if addr.port() == 7005)), "{out:?}");
    // The primary is asked for its replicas after the refresh interval.
    let wake = wake.expect("a refresh is pending");
    assert!(wake <= t0 + Duration::from_millis(200), "{:?}", wake - t0);
    c.handle_input(wake, Input::Timeout);
    assert!(
        c.refresh_conn.and_then(|(cid, _)| c.conns.get(cid)).is_some_and(|x| x.addr.port() == 7005),
        "the next refresh asks the primary"
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn an_info_refused_by_acl_leaves_the_node_alone() {
    let t0 = Instant::now();
    let cfg = ClientConfig { mode: Mode::Standalone, ..ClientConfig::default() };
    let (mut c, conn, _) = started(cfg, t0);
    c.handle_input(t0, Input::Received(conn, HELLO));
    c.handle_input(
        t0,
        Input::Received(conn, b"-NOPERM User app has no permissions to run the 'info' command\r\n"),
    );
    drain(&mut c);
    let t = c.topology().expect("the node alone");
    assert!(t.is_standalone());
    assert_eq!((t.shards()[0].primary.addr.clone(), t.shards()[0].replicas.len()), (seed(), 0));
}

/// The per-node counters: requests written, the node that answered on the completion, error
/// replies (not `NOSCRIPT`), pending commands, a lost connection and its replacement, and the
/// instant the topology was fetched; `changed_nodes` lists each changed node once, then none.
#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn per_node_counters() {
    let t0 = Instant::now();
    let cfg = ClientConfig { mode: Mode::Standalone, ..ClientConfig::default() };
    let (mut c, conn, _) = started(cfg, t0);
    assert_eq!(c.topology_fetched_at(), None);
    c.handle_input(t0, Input::Received(conn, HELLO));
    let t1 = t0 + Duration::from_millis(5);
    c.handle_input(t1, Input::Received(conn, &primary_info(0)));
    drop(drain(&mut c));
    assert_eq!(c.topology_fetched_at(), Some(t1));
    assert_eq!(c.stats().refresh_successes, 1);
    let mut changed = Vec::new();
    c.changed_nodes(|id, addr, s| changed.push((id, addr.clone(), s.clone())));

    let ids: Vec<RequestId> = ["GET", "EVALSHA", "INCR"]
        .iter()
        .map(|name| {
            let cmd = match *name {
                "EVALSHA" => Cmd::new("EVALSHA").arg("abc").arg(1).arg("k"),
                n => Cmd::new(n).arg("k"),
            };
            c.submit(t1, Request::command(cmd)).expect("submitted")
        })
        .collect();
    drop(drain(&mut c));
    let mut seen = Vec::new();
    c.changed_nodes(|id, addr, s| seen.push((id, addr.clone(), s.clone())));
    assert_eq!(seen.len(), 1, "one node changed: {seen:?}");
    let (node, addr, s) = seen.pop().expect("the node");
    assert_eq!((addr, s.requests, s.pending), (seed(), 3, 3));
    c.changed_nodes(|_, _, _| panic!("nothing changed since"));

    c.handle_input(
        t1,
        Input::Received(conn, b"$1\r\nv\r\n-NOSCRIPT No matching script.\r\n-ERR not an integer\r\n"),
    );
    let (out, _) = drain(&mut c);
    let done: Vec<Option<NodeId>> = ids
        .iter()
        .map(|id| {
            out.iter()
                .find_map(|o| match o {
                    Output::Completed { id: d, node, .. } if d == id => Some(*node),
                    _ => None,
                })
                .expect("completed")
        })
        .collect();
    assert_eq!(done, vec![Some(node); 3], "each completion names the node that answered");
    assert_eq!(c.node_addr(node), Some(&seed()));
    let s = c.node_stats().into_iter().find(|(id, ..)| *id == node).expect("listed").2;
    assert_eq!((s.requests, s.error_replies, s.pending, s.moved, s.ask), (3, 1, 0, 0, 0), "{s:?}");

    // The connection is lost, then replaced: a connection error, then a reconnect.
    let lost = ConnError::new(ConnErrorKind::Closed, "closed");
    c.handle_input(t1, Input::Disconnected(conn, lost));
    drop(drain(&mut c));
    c.submit(t1, Request::command(Cmd::new("GET").arg("k"))).expect("submitted");
    let (out, _) = drain(&mut c);
    let again = out.iter().find_map(|o| match o {
        Output::Connect { conn, .. } => Some(*conn),
        _ => None,
    });
    c.handle_input(t1, Input::Connected(again.expect("a new connection")));
    drop(drain(&mut c));
    let s = c.node_stats().into_iter().find(|(id, ..)| *id == node).expect("listed").2;
    assert_eq!((s.connection_errors, s.reconnects), (1, 1), "{s:?}");
}
