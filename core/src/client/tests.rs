//! Regression tests for the client state machine (most behaviour is covered by the simulated
//! cluster in `tests/` and by the `client_ops` fuzz body).

use core::time::Duration;
use std::time::Instant;

use super::*;

/// A client for `127.0.0.1:7000`, drained once, and the connection it opened to its seed.
fn client(now: Instant) -> (Client, ConnId) {
    let mut c = Client::new(ClientConfig::new(vec![NodeAddr::new("127.0.0.1", 7000)]), now).expect("valid");
    let (out, _) = drain(&mut c);
    let conn = out.iter().find_map(|o| match o {
        Output::Connect { conn, .. } => Some(*conn),
        _ => None,
    });
    (c, conn.expect("the client dials its seed at once"))
}

/// Drains outputs until `Wait`, returning it and what came before.
fn drain(c: &mut Client) -> (Vec<Output>, Option<Instant>) {
    let mut out = Vec::new();
    loop {
        match c.poll_output() {
            Output::Wait(at) => return (out, at),
            o => out.push(o),
        }
    }
}

/// Fuzz find (`client_ops`): a refresh still pending when the client closed kept its instant in
/// `Wait`, and a closed client never starts a refresh, so every wake-up was answered with the
/// same, now past, instant: an adapter that kept driving the client spun.
#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn a_closed_client_waits_for_nothing() {
    let t0 = Instant::now();
    let (mut c, conn) = client(t0);
    // The seed connection fails: a refresh is pending, after a backoff.
    c.handle_input(t0, Input::ConnectFailed(conn, ConnError::new(ConnErrorKind::Refused, "refused")));
    let (_, at) = drain(&mut c);
    assert!(at.is_some(), "a refresh is pending");
    c.close();
    let (_, at) = drain(&mut c);
    assert_eq!(at, None, "a closed client has no timer");
    let later = t0 + Duration::from_secs(5);
    c.handle_input(later, Input::Timeout);
    assert_eq!(drain(&mut c).1, None, "and still none after a wake-up");
}

/// Fuzz find (`client_ops`): with no topology yet, a refresh that failed at once (the seed's
/// only connection was stuck with `max_queued_per_node` commands, so `QueueFull`) was retried
/// at once, because a failed refresh re-requested a `Startup` refresh, which skipped the
/// backoff: `Wait` named the same instant for ever and the adapter spun. The retries now back
/// off.
#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn a_refresh_that_cannot_start_backs_off() {
    let t0 = Instant::now();
    let seed = NodeAddr::new("127.0.0.1", 7000);
    let mut cfg = ClientConfig::new(vec![seed]);
    cfg.max_queued_per_node = 1;
    let mut c = Client::new(cfg, t0).expect("valid");
    let (out, _) = drain(&mut c);
    let conn = out.iter().find_map(|o| match o {
        Output::Connect { conn, .. } => Some(*conn),
        _ => None,
    });
    // The seed accepts the connection and answers HELLO, but never CLUSTER SHARDS: the query
    // stays in flight, so the connection is full for good and the refresh times out.
    let conn = conn.expect("the client dials its seed");
    c.handle_input(t0, Input::Connected(conn));
    c.handle_input(t0, Input::Received(conn, b"%1\r\n$5\r\nproto\r\n:3\r\n"));
    let (mut now, mut wakeups, mut same) = (t0, 0, 0);
    while let (_, Some(at)) = drain(&mut c) {
        if at > t0 + Duration::from_secs(20) {
            break;
        }
        assert!(at >= now, "Wait is never in the past");
        same = if at == now { same + 1 } else { 0 };
        assert!(same < 3, "woken again and again at {:?} after the start", at - t0);
        now = at;
        wakeups += 1;
        assert!(wakeups < 200, "too many wake-ups: {:?}", c.stats());
        c.handle_input(now, Input::Timeout);
    }
    let stats = c.stats();
    assert!(stats.refresh_failures >= 3, "the refresh keeps being retried: {stats:?}");
    assert!(stats.refreshes < 30, "but on a backoff, not in a loop: {stats:?}");
}

/// A failover in the real cluster: a request completed inside `handle_input` (its retries
/// ran out), the adapter took the next caller's request before draining that completion, and
/// the new request got the finished one's index. The adapter files its waiting callers by that
/// index, so the finished request's caller lost its slot and was answered `Closed`. A
/// request's index is now reserved until its completion has been polled.
#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn an_index_is_not_reused_before_its_completion_is_polled() {
    let t0 = Instant::now();
    let (mut c, _) = client(t0);
    let get = || Request::command(Cmd::new("GET").arg("k")).with_timeout(Duration::from_millis(10));
    let a = c.submit(t0, get()).expect("submitted");
    let (_, _) = drain(&mut c);
    // No seed answers: `a` times out inside handle_input; its completion waits in the outputs.
    let later = t0 + Duration::from_millis(20);
    c.handle_input(later, Input::Timeout);
    let b = c.submit(later, get()).expect("submitted");
    assert_ne!(b.index(), a.index(), "a's completion is not polled yet: its index is still taken");
    let (out, _) = drain(&mut c);
    let done: Vec<RequestId> = out
        .iter()
        .filter_map(|o| match o {
            Output::Completed { id, result, .. } => {
                assert!(
                    matches!(result, Err(RequestError::NoTopology { .. } | RequestError::Timeout { .. })),
                    "{result:?}"
                );
                Some(*id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(done, vec![a], "a completed, once; b is still waiting");
    let d = c.submit(later, get()).expect("submitted");
    assert_eq!(d.index(), a.index(), "polled, a's index is free again");
}

/// The documented connect backoff: a node that refused a connection is dialled again 10 ms
/// later (not 20: the first wait once was twice the documented one), then 20, 40, ... up to 1 s.
#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn the_first_connect_backoff_is_10_ms() {
    use super::input::connect_backoff;
    let ms = Duration::from_millis;
    assert_eq!(connect_backoff(1), ms(10), "the first wait");
    assert_eq!(connect_backoff(2), ms(20));
    assert_eq!(connect_backoff(8), ms(1000), "1280 ms, capped");
    assert_eq!(connect_backoff(7), ms(640));
    assert_eq!(connect_backoff(u32::MAX), ms(1000), "capped at 1 s");

    // Through the state machine: the seed refuses at t0; a request for it does not dial before
    // t0 + 10 ms, and does at t0 + 10 ms.
    let t0 = Instant::now();
    let seed = NodeAddr::new("127.0.0.1", 7000);
    let (mut c, conn) = client(t0);
    c.handle_input(t0, Input::ConnectFailed(conn, ConnError::new(ConnErrorKind::Refused, "refused")));
    drain(&mut c);
    let dials = |c: &mut Client, at: Instant| {
        c.submit(at, Request::node(seed.clone(), Cmd::new("PING"))).expect("submitted");
        drain(c).0.iter().filter(|o| matches!(o, Output::Connect { addr, .. } if *addr == seed)).count()
    };
    assert_eq!(dials(&mut c, t0 + ms(9)), 0, "9 ms after the refusal the node is still backed off");
    assert_eq!(dials(&mut c, t0 + ms(10)), 1, "10 ms after it, the node is dialled again");
}

/// Found with the simulator (`single_shard_promotion_is_discovered`): once it had a topology
/// the client asked only the primaries it knew for the next one, so when they were all dead (a
/// one-shard cluster whose primary crashed) it never learnt of the promoted replica it already
/// knew. A run of failed refreshes now asks every known primary, then every known replica, then
/// the seeds the topology does not list.
#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn failed_refreshes_ask_the_primaries_then_the_replicas_then_the_seeds() {
    use crate::resp::encode_value;
    use crate::slot::Slot;
    use crate::topology::{Node, Role, Shard};
    let t0 = Instant::now();
    let at = |port| NodeAddr::new("127.0.0.1", port);
    let range =
        |a, b| SlotRange::new(Slot::new(a).expect("slot"), Slot::new(b).expect("slot")).expect("range");
    let replica = |port| Node { role: Role::Replica, ..Node::from_addr(at(port)) };
    // Two shards, primaries 7001 and 7002, replicas 7003 and 7004; the seed 7000 is not listed.
    let topology = Topology::from_shards(vec![
        Shard {
            slots: vec![range(0, 8191)],
            primary: Node::from_addr(at(7001)),
            replicas: vec![replica(7003)],
        },
        Shard {
            slots: vec![range(8192, 16383)],
            primary: Node::from_addr(at(7002)),
            replicas: vec![replica(7004)],
        },
    ])
    .expect("topology");
    let (mut c, seed) = client(t0);
    let mut reply = bytes::BytesMut::from(&b"%1\r\n$5\r\nproto\r\n:3\r\n"[..]);
    encode_value(
        &mut reply,
        &topology.to_shards_reply(crate::Protocol::Resp3, false),
        crate::Protocol::Resp3,
    )
    .expect("encoded");
    c.handle_input(t0, Input::Connected(seed));
    c.handle_input(t0, Input::Received(seed, &reply));
    drain(&mut c);
    assert!(c.topology().is_some_and(|t| t.node_count() == 4), "the seed's topology is applied");

    // The node the refresh in flight asks, and the connection it asks on.
    let asked = |c: &Client| {
        let (cid, _) = c.refresh_conn?;
        c.conns.get(cid).map(|x| (ConnId(cid.to_u64()), x.addr.clone()))
    };
    let mut now = t0 + Duration::from_millis(200);
    c.request_refresh(now, RefreshReason::Manual);
    let mut order = Vec::new();
    for _ in 0..200 {
        if let Some((cid, addr)) = asked(&c) {
            order.push(addr);
            if order.len() == 5 {
                break;
            }
            // Every node it asks is dead.
            let e = ConnError::new(ConnErrorKind::Refused, "refused");
            if c.conns.get(cid.id()).is_some_and(|x| x.state == conn::ConnState::Connecting) {
                c.handle_input(now, Input::ConnectFailed(cid, e));
            } else {
                c.handle_input(now, Input::Disconnected(cid, e));
            }
        }
        let (_, wake) = drain(&mut c);
        now = wake.expect("a refresh is pending after a failure");
        c.handle_input(now, Input::Timeout);
    }
    assert_eq!(order.len(), 5, "five refreshes started: {order:?}");
    let mut primaries = order[..2].to_vec();
    primaries.sort();
    assert_eq!(primaries, [at(7001), at(7002)], "the primaries first: {order:?}");
    assert_eq!(order[2..], [at(7003), at(7004), at(7000)], "then the replicas, then the seed: {order:?}");
    assert!(now - t0 < Duration::from_secs(5), "on the policy's backoff: {:?}", now - t0);
}

/// A seed that refuses the TLS handshake for a reason retrying does not fix (its certificate
/// does not verify) fails the waiting request at once, with the typed failure, not at its
/// deadline; a plain refusal still waits and retries.
#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn a_tls_refusal_fails_at_once_with_its_cause() {
    let t0 = Instant::now();
    let (mut c, conn) = client(t0);
    let id = c.submit(t0, Request::command(Cmd::new("GET").arg("k"))).expect("submitted");
    let _ = drain(&mut c);
    let e =
        ConnError::tls(TlsFailure::UnknownIssuer, "unknown issuer: invalid peer certificate: UnknownIssuer");
    c.handle_input(t0, Input::ConnectFailed(conn, e.clone()));
    let (out, _) = drain(&mut c);
    let result = out.into_iter().find_map(|o| match o {
        Output::Completed { id: done, result, .. } if done == id => Some(result),
        _ => None,
    });
    match result {
        Some(Err(RequestError::Unreachable { addr, error })) => {
            assert_eq!(addr, NodeAddr::new("127.0.0.1", 7000));
            assert_eq!(error.tls_failure(), Some(TlsFailure::UnknownIssuer));
            assert_eq!(error, e);
        }
        other => panic!("expected Unreachable with the TLS failure at once, got {other:?}"),
    }

    let (mut c, conn) = client(t0);
    let id = c.submit(t0, Request::command(Cmd::new("GET").arg("k"))).expect("submitted");
    let _ = drain(&mut c);
    c.handle_input(t0, Input::ConnectFailed(conn, ConnError::new(ConnErrorKind::Refused, "refused")));
    let (out, _) = drain(&mut c);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Completed { id: done, .. } if *done == id)),
        "a plain refusal is retried until the deadline"
    );
}

/// A reply longer than [`conn::READ_BUF_KEEP`] (here a `CLUSTER SHARDS` of 400 shards, fed in
/// the adapters' 64 KiB reads) grows the connection's read buffer to its size. Kept, that
/// allocation stayed with the connection for good, and the periodic refresh asks a different
/// primary each time: a client of a 500-shard cluster held about 260 KB more per connection
/// that had carried a refresh (docs/performance.md). The buffer is let go once it is empty.
#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn a_large_reply_does_not_leave_its_buffer_on_the_connection() {
    use crate::topology::{Node, Role, Shard};
    use crate::{Protocol, SLOT_COUNT, Slot};

    let t0 = Instant::now();
    let (mut c, conn) = client(t0);
    let shards = 400u16;
    let bound =
        |s: u16| u16::try_from(u32::from(s) * u32::from(SLOT_COUNT) / u32::from(shards)).expect("a slot");
    let node = |i: u16, role| {
        let mut n = Node::from_addr(NodeAddr::new("127.0.0.1", 7000 + i));
        n.id = Some(format!("{i:040}").into());
        n.role = role;
        n
    };
    let list = (0..shards)
        .map(|s| {
            let (lo, hi) = (bound(s), bound(s + 1) - 1);
            let range = SlotRange::new(Slot::new(lo).expect("a slot"), Slot::new(hi).expect("a slot"));
            Shard {
                slots: range.into_iter().collect(),
                primary: node(s, Role::Primary),
                replicas: vec![node(shards + s, Role::Replica)],
            }
        })
        .collect();
    let topology = Topology::from_shards(list).expect("valid");
    let mut reply = bytes::BytesMut::new();
    crate::resp::encode_value(&mut reply, &topology.to_shards_reply(Protocol::Resp3, false), Protocol::Resp3)
        .expect("encodable");
    assert!(reply.len() > 2 * conn::READ_BUF_KEEP, "a large reply: {} bytes", reply.len());

    c.handle_input(t0, Input::Connected(conn));
    c.handle_input(t0, Input::Received(conn, b"%1\r\n$5\r\nproto\r\n:3\r\n"));
    let _ = drain(&mut c);
    for chunk in reply.chunks(64 * 1024) {
        c.handle_input(t0, Input::Received(conn, chunk));
    }
    let _ = drain(&mut c);
    assert_eq!(c.topology(), Some(&topology), "the reply was applied");
    let conn = c.conns.get(conn.id()).expect("the seed's connection stays open");
    assert!(conn.read_buf.is_empty());
    assert_eq!(conn.read_buf.capacity(), 0, "the large buffer was let go");
}

/// The node a fleet's refreshes go to: clients with the same seeds (and different random
/// generators) asked the same primaries in the same order, because the rotation over the
/// primaries started from the seed's index (0 with one seed); a fleet started together then
/// sent every refresh to one primary at a time. The rotation now starts at a random primary.
#[test]
#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn clients_with_the_same_seeds_ask_different_primaries() {
    use crate::topology::{Node, Shard};
    use crate::{Protocol, SLOT_COUNT, Slot};

    let t0 = Instant::now();
    let shards = 30u16;
    let bound =
        |s: u16| u16::try_from(u32::from(s) * u32::from(SLOT_COUNT) / u32::from(shards)).expect("a slot");
    let list = (0..shards)
        .map(|s| {
            let range = SlotRange::new(
                Slot::new(bound(s)).expect("a slot"),
                Slot::new(bound(s + 1) - 1).expect("a slot"),
            );
            Shard {
                slots: range.into_iter().collect(),
                primary: Node::from_addr(NodeAddr::new("127.0.0.1", 7001 + s)),
                replicas: Vec::new(),
            }
        })
        .collect();
    let topology = Topology::from_shards(list).expect("valid");
    let mut reply = bytes::BytesMut::from(&b"%1\r\n$5\r\nproto\r\n:3\r\n"[..]);
    crate::resp::encode_value(&mut reply, &topology.to_shards_reply(Protocol::Resp3, false), Protocol::Resp3)
        .expect("encodable");
    let first_asked = |rng_seed: u64| {
        let mut cfg = ClientConfig::new(vec![NodeAddr::new("127.0.0.1", 7000)]);
        cfg.rng_seed = rng_seed;
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
        c.handle_input(t0, Input::Received(conn, &reply));
        drain(&mut c);
        assert!(c.topology().is_some(), "the seed's topology is applied");
        let mut now = t0 + Duration::from_millis(200);
        c.request_refresh(now, RefreshReason::Manual);
        for _ in 0..10 {
            if let Some((cid, _)) = c.refresh_conn {
                return c.conns.get(cid).map(|x| x.addr.clone()).expect("its connection");
            }
            now = drain(&mut c).1.expect("a refresh is pending");
            c.handle_input(now, Input::Timeout);
        }
        panic!("no refresh started");
    };
    let mut asked: Vec<NodeAddr> = (1..=8).map(first_asked).collect();
    asked.sort();
    asked.dedup();
    assert!(asked.len() >= 4, "8 clients asked only {asked:?}");
}
