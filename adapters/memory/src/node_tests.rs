//! The node as the client sees it: the standalone handshake and topology, cluster-like
//! refusals, `WAIT` without replicas, `MEMORY USAGE`, active expiry, eviction, and RESP in
//! chunks.

use bytes::{Bytes, BytesMut};
use slotcache_core::resp::{Limits, decode, encode_command};
use slotcache_core::topology::is_cluster_disabled;
use slotcache_core::{NodeAddr, Protocol, Topology, Value, key_slot};

use crate::one_node::{OneNode, b};
use crate::{Connection, Node};

fn error(v: Value) -> Bytes {
    match v {
        Value::Error(e) => e,
        other => panic!("an error, not {other:?}"),
    }
}

#[test]
fn it_is_a_standalone_primary_owning_every_slot() {
    let mut m = OneNode::new();
    let Value::Map(hello) = m.run(&[b"HELLO", b"3", b"SETNAME", b"app"]) else { panic!("a RESP3 map") };
    assert!(hello.contains(&(b(b"proto"), Value::Int(3))));
    assert!(m.s.resp3);
    assert!(is_cluster_disabled(&error(m.run(&[b"CLUSTER", b"SHARDS"]))));
    assert!(is_cluster_disabled(&error(m.run(&[b"READONLY"]))));
    let addr = NodeAddr::new("127.0.0.1", 7000);
    let topology = Topology::from_info_reply(&m.run(&[b"INFO"]), &addr).expect("a standalone INFO");
    assert_eq!(topology.covered_slots(), 16384);
    for key in [&b"a"[..], b"b", b"{user}1"] {
        assert_eq!(topology.primary(key_slot(key)).map(|n| &n.addr), Some(&addr), "{key:?}");
    }
    assert!(error(m.run(&[b"AUTH", b"pw"])).starts_with(b"ERR AUTH <password> called without"));
}

#[test]
fn multi_key_commands_across_slots_are_refused_like_a_cluster() {
    let mut m = OneNode::new();
    assert!(error(m.run(&[b"MGET", b"a", b"b"])).starts_with(b"CROSSSLOT"));
    assert_eq!(m.run(&[b"MGET", b"{t}a", b"{t}b"]), Value::Array(vec![Value::Nil, Value::Nil]));
}

#[test]
fn wait_answers_at_once_with_no_replica_and_memory_usage_weighs_keys() {
    let mut m = OneNode::new();
    m.run(&[b"SET", b"k", b"0123456789"]);
    assert_eq!(m.run(&[b"WAIT", b"1", b"0"]), Value::Int(0));
    assert!(error(m.run(&[b"WAIT", b"1", b"-1"])).starts_with(b"ERR timeout is negative"));
    let Value::Int(n) = m.run(&[b"MEMORY", b"USAGE", b"k"]) else { panic!("an integer") };
    assert!(n > 10, "{n}");
    assert_eq!(m.run(&[b"MEMORY", b"USAGE", b"missing"]), Value::Nil);
}

#[test]
fn expired_keys_nobody_reads_are_removed_by_the_active_cycle() {
    let mut m = OneNode::new();
    m.run(&[b"SET", b"gone", b"v", b"PX", b"10"]);
    m.run(&[b"SET", b"kept", b"v"]);
    m.advance(crate::SWEEP_EVERY_MS + 20);
    m.run(&[b"GET", b"kept"]);
    assert!(!m.c.store().contains_key(b"gone"), "removed without a read of its own");
    assert_eq!(m.c.store().len(), 1);
}

#[test]
fn maxmemory_evicts_under_its_policy_or_refuses_writes() {
    let mut m = OneNode::new();
    m.run(&[b"CONFIG", b"SET", b"maxmemory", b"2000", b"maxmemory-policy", b"allkeys-lru"]);
    for i in 0..100 {
        let k = format!("k{i}");
        assert_eq!(m.run(&[b"SET", k.as_bytes(), b"a value of some length"]), Value::Simple("OK".into()));
    }
    assert!(m.c.evicted() > 0);
    assert!(m.c.store().used_memory() <= 2000 + 200, "{}", m.c.store().used_memory());
    m.run(&[b"CONFIG", b"SET", b"maxmemory", b"1", b"maxmemory-policy", b"noeviction"]);
    assert!(error(m.run(&[b"SET", b"another", b"value"])).starts_with(b"OOM"));
    assert_eq!(m.run(&[b"GET", b"k99"]), b(b"a value of some length"), "reads still served");
}

/// Commands written one byte at a time get the same replies as whole, in order.
#[test]
fn a_connection_reads_commands_in_any_chunks() {
    let mut wire = BytesMut::new();
    for args in [&[&b"HELLO"[..], b"3"][..], &[b"SET", b"k", b"v"], &[b"GET", b"k"], &[b"PING"]] {
        encode_command(&mut wire, args);
    }
    let mut node = Node::new(NodeAddr::new("memory", 1));
    let (mut conn, mut out) = (Connection::new(), BytesMut::new());
    for byte in wire.chunks(1) {
        conn.receive(&mut node, 1_000, byte, &mut out).expect("valid RESP");
    }
    let mut replies = Vec::new();
    while let Some(v) = decode(&mut out, Protocol::Resp3, &Limits::default()).expect("a reply") {
        replies.push(v);
    }
    assert_eq!(replies.len(), 4);
    assert_eq!(replies[2..], [b(b"v"), Value::Simple(Bytes::from_static(b"PONG"))]);
    let mut garbage = BytesMut::new();
    assert!(Connection::new().receive(&mut node, 1_000, b"\x00oops\r\n", &mut garbage).is_err());
}
