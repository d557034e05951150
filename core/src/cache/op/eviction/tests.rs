use core::time::Duration;
use std::time::Instant;

use bytes::Bytes;

use super::*;
use crate::cache::op::fresh::tests::timed_out;
use crate::cache::op::testing::{Hand, bulk, server_error, words};
use crate::client::RequestKind;
use crate::node_addr::NodeAddr;

#[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
fn machine(refuse: Vec<EvictionClass>) -> Hand<CheckEviction> {
    Hand::new(CheckEviction::new(refuse, Deadline::new(Instant::now(), "connect", Duration::from_secs(1))))
}

fn node(port: u16) -> NodeAddr {
    NodeAddr::new("10.0.0.1", port)
}

fn per(replies: Vec<Result<Value, RequestError>>) -> Input {
    let per = replies.into_iter().enumerate().map(|(i, r)| (node(7000 + i as u16), r)).collect();
    Input::Replies(vec![Ok(Reply::PerNode(per))])
}

/// A RESP2 `CONFIG GET` reply (the server's order: policy first).
fn config(policy: &str, maxmemory: &str) -> Value {
    Value::Array(vec![
        bulk(b"maxmemory-policy"),
        bulk(policy.as_bytes()),
        bulk(b"maxmemory"),
        bulk(maxmemory.as_bytes()),
    ])
}

fn info(policy: &str, maxmemory: u64) -> Value {
    let text = format!(
        "# Memory\r\nused_memory:1000\r\nmaxmemory:{maxmemory}\r\nmaxmemory_human:x\r\nmaxmemory_policy:{policy}\r\n"
    );
    Value::Verbatim { format: Bytes::from_static(b"txt"), text: Bytes::from(text) }
}

fn done(step: Step<EvictionReport>) -> Result<EvictionReport, CacheError> {
    match step {
        Step::Done(r) => r,
        other => panic!("expected an outcome, got {other:?}"),
    }
}

#[test]
fn config_get_on_every_primary_classifies_each() {
    let mut m = machine(vec![]);
    let Step::Send(reqs) = m.start() else { panic!("a send") };
    let RequestKind::AllPrimaries(cmd) = &reqs[0].kind else { panic!("{reqs:?}") };
    assert_eq!(words(cmd), ["CONFIG", "GET", "maxmemory-policy", "maxmemory"]);
    assert!(reqs[0].timeout.is_some(), "within the budget");
    let resp3 =
        Value::Map(vec![(bulk(b"maxmemory"), bulk(b"0")), (bulk(b"maxmemory-policy"), bulk(b"noeviction"))]);
    let r = done(m.resume(per(vec![Ok(config("volatile-lru", "1048576")), Ok(resp3)]))).expect("a report");
    assert_eq!(r.primaries.len(), 2);
    let (a, b) = (&r.primaries[0], &r.primaries[1]);
    assert_eq!(
        (a.class, a.maxmemory, a.read_from),
        (EvictionClass::Volatile, Some(1_048_576), EvictionSource::Config)
    );
    assert_eq!(a.policy, Some(EvictionPolicy::VolatileLru));
    assert_eq!(
        (b.class, b.policy.as_ref().map(EvictionPolicy::name)),
        (EvictionClass::Unlimited, Some("noeviction"))
    );
    assert!(r.error.is_none());
}

/// `CONFIG` disabled (an error reply, or a failed request): `INFO memory` on those primaries
/// only; what `INFO` cannot say either is `Unknown`, not an error.
#[test]
fn info_memory_is_the_fallback_and_unread_is_unknown() {
    let mut m = machine(vec![]);
    let _ = m.start();
    let step = m.resume(per(vec![
        Ok(Value::Error(Bytes::from_static(b"ERR unknown command 'CONFIG'"))),
        Ok(config("allkeys-lru", "100")),
        Err(server_error("NOPERM this user has no permissions to run the 'config|get' command")),
    ]));
    let Step::Send(reqs) = &step else { panic!("{step:?}") };
    let asked: Vec<(u16, Vec<String>)> = reqs
        .iter()
        .map(|r| match &r.kind {
            RequestKind::Node(a, c) => (a.port(), words(c)),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        asked,
        [
            (7000, vec!["INFO".to_owned(), "memory".to_owned()]),
            (7002, vec!["INFO".to_owned(), "memory".to_owned()])
        ]
    );
    let r = done(m.resume(Input::Replies(vec![
        Ok(Reply::Value(info("volatile-ttl", 5000))),
        Err(server_error("NOPERM no")),
    ])))
    .expect("not fatal");
    let classes: Vec<_> = r.primaries.iter().map(|p| (p.addr.port(), p.class, p.read_from)).collect();
    assert_eq!(
        classes,
        [
            (7000, EvictionClass::Volatile, EvictionSource::Info),
            (7001, EvictionClass::AllKeys, EvictionSource::Config),
            (7002, EvictionClass::Unknown, EvictionSource::Nothing),
        ]
    );
    assert!(matches!(r.primaries[2].error, Some(CacheError::Request(RequestError::Server(_)))));
}

#[test]
fn refusal_is_decided_here() {
    let mut m = machine(vec![EvictionClass::Volatile]);
    let _ = m.start();
    let r = done(m.resume(per(vec![Ok(config("allkeys-lru", "1")), Ok(config("volatile-lfu", "1"))])));
    assert!(matches!(r, Err(CacheError::EvictionRefused { class: EvictionClass::Volatile, .. })), "{r:?}");
    // Refusing Unknown: a setup that cannot be read refuses to start.
    let mut m = machine(vec![EvictionClass::Unknown]);
    let _ = m.start();
    let _ = m.resume(per(vec![Err(server_error("NOPERM"))]));
    let r = done(m.resume(Input::Replies(vec![Ok(Reply::Value(bulk(b"# Memory\r\nused_memory:1\r\n")))])));
    assert!(
        matches!(r, Err(CacheError::EvictionRefused { class: EvictionClass::Unknown, cause: Some(_), .. })),
        "{r:?}"
    );
}

#[test]
fn a_failed_request_or_deadline_is_reported_not_fatal() {
    let mut m = machine(vec![]);
    let _ = m.start();
    let r = done(m.resume(Input::Replies(vec![Err(timed_out())]))).expect("not fatal");
    assert!(r.primaries.is_empty());
    assert!(matches!(r.error, Some(CacheError::Timeout { .. })), "{r:?}");
    let mut m = machine(vec![]);
    let _ = m.start();
    let r = done(m.resume(Input::Replies(vec![Ok(Reply::Value(Value::Nil))]))).expect("not fatal");
    assert!(matches!(r.error, Some(CacheError::UnexpectedReply { .. })));
    // The budget ran out before the fallback: the primary stays unknown, with that error.
    let mut m = machine(vec![]);
    let _ = m.start();
    m.now += Duration::from_secs(2);
    let r = done(m.resume(per(vec![Err(server_error("ERR no CONFIG"))]))).expect("not fatal");
    assert!(matches!(r.primaries[0].error, Some(CacheError::Timeout { .. })), "{r:?}");
    let mut m = machine(vec![]);
    assert!(matches!(done(m.resume(Input::Woke)), Err(CacheError::UnexpectedReply { .. })));
}

#[test]
fn replies_of_other_shapes_are_unexpected() {
    for bad in [
        Value::Int(1),
        Value::Array(vec![bulk(b"maxmemory")]),
        config("allkeys-lru", "lots"),
        Value::Array(vec![bulk(b"maxmemory"), bulk(b"1")]),
    ] {
        assert!(matches!(read_config(bad.clone()), Err(CacheError::UnexpectedReply { .. })), "{bad:?}");
    }
    assert!(matches!(read_config(Value::Error(Bytes::from_static(b"ERR x"))), Err(CacheError::Request(_))));
    assert!(read_info(&Value::Int(3)).is_err());
    assert!(read_info(&bulk(b"maxmemory:12\r\nmaxmemory_policy:\r\n")).is_err(), "an empty policy");
    assert_eq!(
        read_info(&bulk(b"maxmemory:12\nmaxmemory_policy:allkeys-lfu\n")).ok(),
        Some((EvictionPolicy::AllKeysLfu, 12))
    );
}
