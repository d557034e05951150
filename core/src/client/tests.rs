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
