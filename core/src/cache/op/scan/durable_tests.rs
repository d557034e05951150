//! `invalidate_all` under [`Durability::Replicas`]: each page's unlinks, then a `WAIT` on their
//! connection; `NotDurable` when a primary's replicas fall short.

use core::time::Duration;
use std::time::Instant;

use super::tests::{Driver, page, requests, topology};
use super::*;
use crate::cache::op::testing::{server_error, words};
use crate::client::{ConnError, ConnErrorKind, RequestKind};
use crate::topology::{Node, Shard};

const REPLICAS: Durability = Durability::Replicas { replicas: 1, timeout: Duration::from_millis(250) };

/// `topology(ports)` with one replica per primary (port + 100).
fn with_replicas(ports: &[u16]) -> Topology {
    let shards = topology(ports)
        .shards()
        .iter()
        .map(|s| Shard {
            slots: s.slots.clone(),
            primary: s.primary.clone(),
            replicas: vec![Node::from_addr(NodeAddr::new("127.0.0.1", s.primary.addr.port() + 100))],
        })
        .collect();
    Topology::from_shards(shards).expect("valid")
}

#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn machine(durability: Durability, topology: Topology) -> Driver<ScanAll> {
    let ns = Namespace::new("ns").expect("valid");
    let d = Deadline::new(Instant::now(), "invalidate_all", Duration::from_secs(5));
    Driver::new(ScanAll::unlink_namespace(&ns, durability, d), Some(topology))
}

/// Two keys of two slots, both of the first shard of a two-shard topology.
fn two_slots() -> [&'static [u8]; 3] {
    let keys: [&'static [u8]; 3] = [b"ns:{a}1", b"ns:{a}2", b"ns:{b}1"];
    assert_ne!(key_slot(keys[0]), key_slot(keys[2]));
    keys
}

/// The requests of a step, the durable page (a pipeline) first.
fn split(step: &Step<u64>) -> (Option<Vec<Cmd>>, usize) {
    let Step::Send(reqs) = step else { panic!("expected a Send, got {step:?}") };
    let pipeline = reqs.iter().find_map(|r| match &r.kind {
        RequestKind::Pipeline(cmds) => Some(cmds.clone()),
        _ => None,
    });
    (pipeline, reqs.len())
}

fn pipeline_reply(values: Vec<Result<Value, RequestError>>) -> Result<Reply, RequestError> {
    Ok(Reply::Pipeline(values))
}

fn done(step: Step<u64>) -> Result<u64, CacheError> {
    match step {
        Step::Done(r) => r,
        other => panic!("expected an outcome, got {other:?}"),
    }
}

/// A page is one `UNLINK` per slot on the blocking lane, then `WAIT 1 250` following the last
/// of them; the scan of the next page goes alongside, on the ordinary lane.
#[test]
fn a_page_is_unlinked_on_the_blocking_lane_then_waited_for() {
    let keys = two_slots();
    let mut m = machine(REPLICAS, with_replicas(&[7000]));
    let _ = m.resume(Input::Start);
    let step = m.values(vec![Ok(page(b"7", &keys))]);
    let (Some(cmds), n) = split(&step) else { panic!("a durable page: {step:?}") };
    assert_eq!(n, 2, "the page and the next scan");
    let words: Vec<Vec<String>> = cmds.iter().map(words).collect();
    assert_eq!(words[0], ["UNLINK", "ns:{a}1", "ns:{a}2"]);
    assert_eq!(words[1], ["UNLINK", "ns:{b}1"]);
    assert_eq!(words[2], ["WAIT", "1", "250"]);
    assert!(cmds[0].is_blocking() && cmds[1].is_blocking(), "the unlinks go on the blocking lane");
    assert_eq!(cmds[2].follows(), Some(1), "the WAIT follows the last unlink on its connection");
    assert_eq!(cmds[1].slot(), Some(key_slot(keys[2])));
    let Step::Send(reqs) = &step else { unreachable!() };
    assert!(matches!(&reqs[1].kind, RequestKind::Node(_, c) if c.args()[0].as_ref() == b"SCAN"));
    // Acknowledged: the scan goes on to the end, then the other patterns, and the outcome is
    // the count.
    let unlinked = pipeline_reply(vec![Ok(Value::Int(2)), Ok(Value::Int(1)), Ok(Value::Int(1))]);
    let step = m.resume(Input::Replies(vec![unlinked, Ok(Reply::Value(page(b"0", &[])))]));
    assert_eq!(requests(&step)[0].1[3], tag_pattern(), "the tag keys are next");
    let _ = m.values(vec![Ok(page(b"0", &[]))]);
    assert_eq!(done(m.values(vec![Ok(page(b"0", &[]))])).ok(), Some(3));
}

fn tag_pattern() -> String {
    String::from_utf8(Namespace::new("ns").expect("valid").tag_scan_pattern()).expect("text")
}

/// A `WAIT` that falls short: the node's later pages are still unlinked, without a `WAIT`
/// (plain `UNLINK`), every pattern still runs, and the outcome is `NotDurable`.
#[test]
fn replicas_falling_short_make_it_not_durable_after_unlinking_everything() {
    let keys = two_slots();
    let mut m = machine(REPLICAS, with_replicas(&[7000]));
    let _ = m.resume(Input::Start);
    let _ = m.values(vec![Ok(page(b"7", &keys[..1]))]);
    let short = pipeline_reply(vec![Ok(Value::Int(1)), Ok(Value::Int(0))]);
    let step = m.resume(Input::Replies(vec![short, Ok(Reply::Value(page(b"0", &keys[1..])))]));
    let (pipeline, n) = split(&step);
    assert!(pipeline.is_none(), "no more WAIT on that node: {step:?}");
    assert_eq!((n, requests(&step)[0].1[0].as_str()), (1, "UNLINK"), "the last page still unlinked");
    let step = m.values(vec![Ok(Value::Int(2))]);
    assert_eq!(requests(&step)[0].1[3], tag_pattern(), "the tag keys are next");
    let step = m.values(vec![Ok(page(b"0", &[b"ns:__x"]))]);
    assert!(split(&step).0.is_none(), "no WAIT in the next pattern either: {step:?}");
    let _ = m.values(vec![Ok(Value::Int(1))]);
    let r = done(m.values(vec![Ok(page(b"0", &[]))]));
    assert!(matches!(r, Err(CacheError::NotDurable { acked: 0, wanted: 1 })), "{r:?}");
}

/// The connection that ran the unlinks is gone before the `WAIT` could run there: nothing
/// says a replica has them.
#[test]
fn a_wait_without_its_connection_is_not_durable() {
    let mut m = machine(REPLICAS, with_replicas(&[7000]));
    let _ = m.resume(Input::Start);
    let _ = m.values(vec![Ok(page(b"0", &[b"ns:a"]))]);
    let lost = RequestError::ConnectionLost {
        addr: NodeAddr::new("127.0.0.1", 7000),
        error: ConnError::new(ConnErrorKind::Closed, "closed"),
    };
    let step = m.resume(Input::Replies(vec![pipeline_reply(vec![Ok(Value::Int(1)), Err(lost)])]));
    let _ = m.values(vec![Ok(page(b"0", &[]))]);
    let r = done(m.values(vec![Ok(page(b"0", &[]))]));
    assert!(matches!(step, Step::Send(_)), "the next pattern runs: {step:?}");
    assert!(matches!(r, Err(CacheError::NotDurable { acked: 0, wanted: 1 })), "{r:?}");
}

/// A failed unlink fails its node (its error wins over a short `WAIT` elsewhere); a shard that
/// lists no replica and `Durability::Primary` send no `WAIT`.
#[test]
fn errors_win_and_no_wait_without_replicas_or_durability() {
    let mut m = machine(REPLICAS, with_replicas(&[7000, 7001]));
    let _ = m.resume(Input::Start);
    let _ = m.values(vec![Ok(page(b"0", &[b"ns:a"])), Ok(page(b"0", &[b"ns:b"]))]);
    let failed = pipeline_reply(vec![Err(server_error("ERR boom")), Err(RequestError::Skipped { index: 0 })]);
    let short = pipeline_reply(vec![Ok(Value::Int(1)), Ok(Value::Int(0))]);
    let r = done(m.resume(Input::Replies(vec![failed, short])));
    assert!(matches!(r, Err(CacheError::Request(RequestError::Server(_)))), "{r:?}");

    for (durability, topo) in [(REPLICAS, topology(&[7000])), (Durability::Primary, with_replicas(&[7000]))] {
        let mut m = machine(durability, topo);
        let _ = m.resume(Input::Start);
        let step = m.values(vec![Ok(page(b"0", &[b"ns:a", b"ns:b"]))]);
        assert!(split(&step).0.is_none(), "{durability:?}: {step:?}");
        assert_eq!(requests(&step), [(None, ["UNLINK", "ns:a", "ns:b"].map(String::from).to_vec())]);
    }
}

/// Malformed replies to a durable page are errors, not counts.
#[test]
fn a_durable_page_of_another_shape_is_an_error() {
    for bad in [
        Ok(Reply::Value(Value::Int(1))),
        pipeline_reply(vec![]),
        pipeline_reply(vec![Ok(Value::Nil), Ok(Value::Int(1))]),
    ] {
        let mut m = machine(REPLICAS, with_replicas(&[7000]));
        let _ = m.resume(Input::Start);
        let _ = m.values(vec![Ok(page(b"0", &[b"ns:a"]))]);
        let r = done(m.resume(Input::Replies(vec![bad])));
        assert!(matches!(r, Err(CacheError::UnexpectedReply { .. })), "{r:?}");
    }
}
