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
            Output::Completed { id, result } => {
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
