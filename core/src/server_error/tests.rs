use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::node_addr::NodeAddr;
use crate::resp::Value;
use crate::slot::Slot;

fn slot(n: u16) -> Slot {
    Slot::new(n).unwrap()
}

fn ep(host: Option<&str>, port: u16) -> Endpoint {
    Endpoint { host: host.map(Arc::from), port }
}

#[test]
fn classification_table() {
    use ErrorAction as A;
    use ServerErrorKind as K;
    let backoff = A::RetryAfterBackoff { refresh: false };
    let backoff_refresh = A::RetryAfterBackoff { refresh: true };
    let moved = |s, e: Endpoint| {
        (K::Moved { slot: slot(s), endpoint: e.clone() }, A::Redirect { slot: slot(s), endpoint: e })
    };
    let ask = |s, e: Endpoint| {
        (K::Ask { slot: slot(s), endpoint: e.clone() }, A::Ask { slot: slot(s), endpoint: e })
    };
    let cases: Vec<(&str, (K, A))> = vec![
        ("MOVED 3999 127.0.0.1:6381", moved(3999, ep(Some("127.0.0.1"), 6381))),
        ("MOVED 3999 :6381", moved(3999, ep(None, 6381))),
        ("MOVED 0 2001:db8::1:7000", moved(0, ep(Some("2001:db8::1"), 7000))),
        ("MOVED 16383 ::1:7001", moved(16383, ep(Some("::1"), 7001))),
        ("MOVED 12182 [::1]:6379", moved(12182, ep(Some("::1"), 6379))),
        ("MOVED 866 node-3.cache.internal:6379", moved(866, ep(Some("node-3.cache.internal"), 6379))),
        ("ASK 8000 127.0.0.1:6461", ask(8000, ep(Some("127.0.0.1"), 6461))),
        ("ASK 8000 :6461", ask(8000, ep(None, 6461))),
        ("MOVED 16384 127.0.0.1:6381", (K::MalformedRedirect, A::Fail)),
        ("MOVED 99999999999 127.0.0.1:6381", (K::MalformedRedirect, A::Fail)),
        ("MOVED -1 127.0.0.1:6381", (K::MalformedRedirect, A::Fail)),
        ("MOVED 12 127.0.0.1:65536", (K::MalformedRedirect, A::Fail)),
        ("MOVED 12 127.0.0.1:0", (K::MalformedRedirect, A::Fail)),
        ("MOVED 12 127.0.0.1:", (K::MalformedRedirect, A::Fail)),
        ("MOVED 12 127.0.0.1", (K::MalformedRedirect, A::Fail)),
        ("MOVED 12 ?:6379", (K::MalformedRedirect, A::Fail)),
        ("MOVED 12", (K::MalformedRedirect, A::Fail)),
        ("MOVED", (K::MalformedRedirect, A::Fail)),
        ("MOVED 12 a:1 extra", (K::MalformedRedirect, A::Fail)),
        ("ASK x 127.0.0.1:1", (K::MalformedRedirect, A::Fail)),
        ("ERR MOVED 6918 172.16.49.96:7384", (K::Other, A::Fail)),
        ("TRYAGAIN Multiple keys request during rehashing of slot", (K::TryAgain, backoff.clone())),
        ("CLUSTERDOWN The cluster is down", (K::ClusterDown, backoff_refresh.clone())),
        ("CLUSTERDOWN Hash slot not served", (K::ClusterDown, backoff_refresh.clone())),
        (
            "CLUSTERDOWN The cluster is down and only accepts read commands",
            (K::ClusterDown, backoff_refresh.clone()),
        ),
        ("LOADING Valkey is loading the dataset in memory", (K::Loading, backoff.clone())),
        ("LOADING Redis is loading the dataset in memory", (K::Loading, backoff)),
        (
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            (K::MasterDown, backoff_refresh),
        ),
        ("READONLY You can't write against a read only replica.", (K::ReadOnly, A::RefreshAndRetry)),
        ("CROSSSLOT Keys in request don't hash to the same slot", (K::CrossSlot, A::Fail)),
        ("NOSCRIPT No matching script.", (K::NoScript, A::Fail)),
        ("NOSCRIPT No matching script. Please use EVAL.", (K::NoScript, A::Fail)),
        ("NOAUTH Authentication required.", (K::NoAuth, A::Fail)),
        ("WRONGPASS invalid username-password pair or user is disabled.", (K::WrongPass, A::Fail)),
        ("NOPERM User app has no permissions to run the 'set' command", (K::NoPerm, A::Fail)),
        ("NOPERM No permissions to access a key", (K::NoPerm, A::Fail)),
        ("OOM command not allowed when used memory > 'maxmemory'.", (K::Oom, A::Fail)),
        (
            "BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
            (K::Busy, A::Fail),
        ),
        ("EXECABORT Transaction discarded because of previous errors.", (K::ExecAbort, A::Fail)),
        ("BUSYKEY Target key name already exists.", (K::Other, A::Fail)),
        ("NOTBUSY No scripts in execution right now.", (K::Other, A::Fail)),
        ("WRONGTYPE Operation against a key holding the wrong kind of value", (K::Other, A::Fail)),
        ("ERR unknown command 'FOO', with args beginning with: ", (K::Other, A::Fail)),
        ("REDIRECT 127.0.0.1:6380", (K::Other, A::Fail)),
        ("moved 1 a:1", (K::Other, A::Fail)),
        ("", (K::Other, A::Fail)),
    ];
    assert!(cases.len() >= 30);
    for (text, (kind, action)) in cases {
        let err = ServerError::new(Bytes::from(text));
        assert_eq!(err.kind(), &kind, "{text}");
        assert_eq!(err.action(), action, "{text}");
        assert_eq!(err.raw(), text.as_bytes());
        assert_eq!(err.to_string(), text);
    }
}

#[test]
fn code_is_the_first_word() {
    assert_eq!(ServerError::new("ERR syntax error").code(), b"ERR");
    assert_eq!(ServerError::new("LOADING").code(), b"LOADING");
    assert_eq!(ServerError::new("LOADING").kind(), &ServerErrorKind::Loading);
    assert_eq!(ServerError::new("").code(), b"");
}

#[test]
fn from_value_only_takes_errors() {
    let v = Value::Error(Bytes::from_static(b"TRYAGAIN x"));
    assert_eq!(ServerError::from_value(&v).unwrap().kind(), &ServerErrorKind::TryAgain);
    assert!(ServerError::from_value(&Value::Simple(Bytes::from_static(b"MOVED 1 a:1"))).is_none());
    assert!(ServerError::from_value(&Value::Nil).is_none());
}

#[test]
fn empty_endpoint_resolves_to_the_origin_host() {
    let origin = NodeAddr::new("10.0.0.5", 7000);
    let err = ServerError::new("MOVED 3999 :6381");
    let ErrorAction::Redirect { slot: s, endpoint } = err.action() else { panic!("not a redirect") };
    assert_eq!(s, slot(3999));
    assert_eq!(endpoint.resolve(&origin), NodeAddr::new("10.0.0.5", 6381));
    assert_eq!(endpoint.to_string(), ":6381");
    let v6 = ep(Some("2001:db8::1"), 7000);
    assert_eq!(v6.resolve(&origin), NodeAddr::new("2001:db8::1", 7000));
    assert_eq!(v6.to_string(), "[2001:db8::1]:7000");
    assert_eq!(ep(Some("h"), 1).to_string(), "h:1");
}

proptest! {
    #[test]
    fn never_panics_and_redirects_are_well_formed(raw in proptest::collection::vec(any::<u8>(), 0..48)) {
        let err = ServerError::new(raw.clone());
        prop_assert_eq!(&err.raw()[..], &raw[..]);
        if let ServerErrorKind::Moved { slot, endpoint } | ServerErrorKind::Ask { slot, endpoint } = err.kind() {
            prop_assert!(slot.get() < 16384);
            prop_assert!(endpoint.port != 0);
        }
        let _ = err.action();
    }

    #[test]
    fn redirects_round_trip(s in 0u16..16384, host in "[a-z0-9.-]{0,12}|[0-9a-f:]{2,20}", port in 1u16..) {
        let text = format!("MOVED {s} {host}:{port}");
        let err = ServerError::new(text.clone());
        let ServerErrorKind::Moved { slot: got, endpoint } = err.kind() else {
            return Err(TestCaseError::fail(format!("{text} not MOVED")));
        };
        prop_assert_eq!(got.get(), s);
        prop_assert_eq!(endpoint.port, port);
        let origin = NodeAddr::new("origin", 1);
        let want = if host.is_empty() { "origin" } else { host.as_str() };
        prop_assert_eq!(endpoint.resolve(&origin), NodeAddr::new(want, port));
        let ask = ServerError::new(format!("ASK {s} {host}:{port}"));
        prop_assert_eq!(ask.action(), ErrorAction::Ask { slot: *got, endpoint: endpoint.clone() });
    }
}
