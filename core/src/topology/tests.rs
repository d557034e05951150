//! Unit tests: hand-built `CLUSTER SHARDS` / `CLUSTER SLOTS` replies in both RESP shapes.
//!
//! The fixtures (`NodeSpec`, `ShardSpec`, `shards_reply`, `slots_reply`) render a described
//! cluster the way a server would; the property tests reuse them.

use bytes::Bytes;

use super::*;
use crate::{NodeAddr, SLOT_COUNT, Slot, Value};

// ---------------------------------------------------------------------------------------------
// Fixtures

/// RESP3 (maps) or RESP2 (flat key/value arrays).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    Resp3,
    Resp2,
}

/// How a node's endpoint field is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ep {
    /// The node's host.
    Host,
    /// NULL.
    Null,
    /// `""`.
    Empty,
    /// `"?"`.
    Unknown,
}

#[derive(Clone, Debug)]
pub(super) struct NodeSpec {
    pub(super) id: String,
    pub(super) host: String,
    pub(super) port: Option<u16>,
    pub(super) tls_port: Option<u16>,
    pub(super) primary: bool,
    pub(super) health: &'static str,
    pub(super) offset: i64,
    pub(super) az: Option<String>,
    pub(super) hostname: Option<String>,
    pub(super) endpoint: Ep,
}

impl NodeSpec {
    pub(super) fn new(n: u32, primary: bool) -> Self {
        Self {
            id: format!("{n:040x}"),
            host: format!("10.0.{}.{}", n / 250, n % 250),
            port: u16::try_from(7000 + n).ok(),
            tls_port: None,
            primary,
            health: "online",
            offset: 1000 + i64::from(n),
            az: None,
            hostname: None,
            endpoint: Ep::Host,
        }
    }

    /// The address the parser must produce (plain-text transport, origin `ORIGIN`).
    pub(super) fn addr(&self) -> NodeAddr {
        let host = match self.endpoint {
            Ep::Host => self.host.as_str(),
            _ => ORIGIN_HOST,
        };
        NodeAddr::new(host, self.port.unwrap_or(0))
    }
}

#[derive(Clone, Debug)]
pub(super) struct ShardSpec {
    /// Inclusive ranges.
    pub(super) ranges: Vec<(u16, u16)>,
    /// Primary first.
    pub(super) nodes: Vec<NodeSpec>,
}

pub(super) const ORIGIN_HOST: &str = "192.0.2.1";

pub(super) fn origin() -> NodeAddr {
    NodeAddr::new(ORIGIN_HOST, 6379)
}

pub(super) fn bulk(s: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

pub(super) fn map(shape: Shape, pairs: Vec<(&str, Value)>) -> Value {
    match shape {
        Shape::Resp3 => Value::Map(pairs.into_iter().map(|(k, v)| (bulk(k), v)).collect()),
        Shape::Resp2 => Value::Array(pairs.into_iter().flat_map(|(k, v)| [bulk(k), v]).collect()),
    }
}

fn endpoint(n: &NodeSpec) -> Value {
    match n.endpoint {
        Ep::Host => bulk(&n.host),
        Ep::Null => Value::Nil,
        Ep::Empty => bulk(""),
        Ep::Unknown => bulk("?"),
    }
}

pub(super) fn shards_node(n: &NodeSpec, shape: Shape) -> Value {
    let mut f = vec![("id", bulk(&n.id))];
    if let Some(p) = n.port {
        f.push(("port", Value::Int(i64::from(p))));
    }
    if let Some(p) = n.tls_port {
        f.push(("tls-port", Value::Int(i64::from(p))));
    }
    f.push(("ip", bulk(&n.host)));
    f.push(("endpoint", endpoint(n)));
    if let Some(h) = &n.hostname {
        f.push(("hostname", bulk(h)));
    }
    f.push(("role", bulk(if n.primary { "master" } else { "replica" })));
    f.push(("replication-offset", Value::Int(n.offset)));
    f.push(("health", bulk(n.health)));
    if let Some(az) = &n.az {
        f.push(("availability-zone", bulk(az)));
    }
    map(shape, f)
}

pub(super) fn shards_reply(shards: &[ShardSpec], shape: Shape) -> Value {
    Value::Array(
        shards
            .iter()
            .map(|s| {
                let slots = s.ranges.iter().flat_map(|&(a, b)| [Value::Int(a.into()), Value::Int(b.into())]);
                let nodes = s.nodes.iter().map(|n| shards_node(n, shape)).collect();
                map(
                    shape,
                    vec![
                        ("slots", Value::Array(slots.collect())),
                        ("nodes", Value::Array(nodes)),
                        ("id", bulk(&format!("{:040x}", s.ranges.len()))),
                    ],
                )
            })
            .collect(),
    )
}

/// `CLUSTER SLOTS` as a plain-text server renders it: failed replicas are not listed.
pub(super) fn slots_reply(shards: &[ShardSpec], shape: Shape) -> Value {
    let node = |n: &NodeSpec| {
        let mut meta = vec![("ip", bulk(&n.host))];
        if let Some(h) = &n.hostname {
            meta.push(("hostname", bulk(h)));
        }
        if let Some(az) = &n.az {
            meta.push(("availability-zone", bulk(az)));
        }
        let port = i64::from(n.port.unwrap_or(0));
        Value::Array(vec![endpoint(n), Value::Int(port), bulk(&n.id), map(shape, meta)])
    };
    let mut entries = Vec::new();
    for s in shards {
        for &(a, b) in &s.ranges {
            let mut e = vec![Value::Int(a.into()), Value::Int(b.into())];
            // The primary comes third whatever the shard's listing order.
            e.extend(s.nodes.iter().filter(|n| n.primary).map(node));
            e.extend(s.nodes.iter().filter(|n| !n.primary && n.health == "online").map(node));
            entries.push(Value::Array(e));
        }
    }
    Value::Array(entries)
}

/// Three primaries, one replica each, slots split as `redis-cli --cluster create` does.
pub(super) fn three_by_two() -> Vec<ShardSpec> {
    [(0, 5460), (5461, 10922), (10923, 16383)]
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let i = u32::try_from(i).unwrap_or(0);
            ShardSpec { ranges: vec![r], nodes: vec![NodeSpec::new(i, true), NodeSpec::new(i + 3, false)] }
        })
        .collect()
}

pub(super) fn slot(n: u16) -> Slot {
    Slot::new(n).unwrap_or_else(|| panic!("test slot {n} out of range"))
}

pub(super) fn parse_shards(spec: &[ShardSpec], shape: Shape) -> Topology {
    match Topology::from_shards_reply(&shards_reply(spec, shape), &origin(), false) {
        Ok(t) => t,
        Err(e) => panic!("fixture must parse: {e}"),
    }
}

pub(super) fn parse_slots(spec: &[ShardSpec], shape: Shape) -> Topology {
    match Topology::from_slots_reply(&slots_reply(spec, shape), &origin()) {
        Ok(t) => t,
        Err(e) => panic!("fixture must parse: {e}"),
    }
}

pub(super) fn range(a: Slot, b: Slot) -> SlotRange {
    SlotRange::new(a, b).unwrap_or_else(|| panic!("test range {a}-{b} reversed"))
}

fn addr_of(t: &Topology, s: u16) -> Option<NodeAddr> {
    t.primary(slot(s)).map(|n| n.addr.clone())
}

// ---------------------------------------------------------------------------------------------
// CLUSTER SHARDS

#[test]
fn shards_three_by_two_both_shapes() {
    let spec = three_by_two();
    for shape in [Shape::Resp3, Shape::Resp2] {
        let t = parse_shards(&spec, shape);
        assert!(t.check_invariants().is_ok());
        assert_eq!(t.shards().len(), 3);
        assert_eq!(t.node_count(), 6);
        assert!(t.is_fully_covered());
        assert_eq!(t.covered_slots(), usize::from(SLOT_COUNT));
        assert!(t.skipped().is_empty());
        for (s, shard) in [(0, 0), (5460, 0), (5461, 1), (10922, 1), (10923, 2), (16383, 2)] {
            let want = &spec[shard].nodes;
            let p = t.primary(slot(s)).unwrap_or_else(|| panic!("slot {s} has a primary"));
            assert_eq!(p.addr, want[0].addr(), "{shape:?} slot {s}");
            assert_eq!(p.id.as_deref(), Some(want[0].id.as_str()));
            assert_eq!(p.role, Role::Primary);
            assert_eq!(p.replication_offset, Some(want[0].offset));
            let r = t.replicas(slot(s));
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].addr, want[1].addr());
            assert_eq!(r[0].role, Role::Replica);
            assert!(r[0].is_online());
            assert_eq!(t.shard_index(slot(s)), Some(shard));
        }
    }
    assert_eq!(parse_shards(&spec, Shape::Resp3), parse_shards(&spec, Shape::Resp2));
}

#[test]
fn endpoint_null_and_empty_mean_the_answering_host() {
    let mut spec = three_by_two();
    spec[0].nodes[0].endpoint = Ep::Null;
    spec[1].nodes[1].endpoint = Ep::Empty;
    for shape in [Shape::Resp3, Shape::Resp2] {
        let t = parse_shards(&spec, shape);
        assert_eq!(addr_of(&t, 0), Some(NodeAddr::new(ORIGIN_HOST, 7000)));
        assert_eq!(t.replicas(slot(6000))[0].addr, NodeAddr::new(ORIGIN_HOST, 7004));
        assert_eq!(addr_of(&t, 12000), Some(NodeAddr::new("10.0.0.2", 7002)));
        let s = Topology::from_slots_reply(&slots_reply(&spec, shape), &origin());
        assert_eq!(s.ok().and_then(|s| addr_of(&s, 0)), Some(NodeAddr::new(ORIGIN_HOST, 7000)));
    }
}

/// Fuzz find (`topology_parse`, render round trip): brackets were stripped after the `""` and
/// `"?"` checks, so `"[?]"` became a node at host `?`, `"[]"` a node at an empty host, and
/// `"[[::1]]"` a node at `[::1]`, none of which can be dialled or survive rendering and parsing
/// again. They now read like the same endpoints in a `MOVED` reply.
#[test]
fn bracketed_endpoints_read_like_redirects() {
    let parse = |text: &str| node_info::parse_endpoint(&bulk(text)).expect("a string endpoint");
    let host = |e: node_info::Endpoint| match e {
        node_info::Endpoint::Host(h) => Some(h.to_string()),
        node_info::Endpoint::Origin => Some(String::new()),
        node_info::Endpoint::Unknown => None,
    };
    assert_eq!(host(parse("[::1]")), Some("::1".to_owned()));
    assert_eq!(host(parse("::1")), Some("::1".to_owned()));
    assert_eq!(host(parse("[10.0.0.1]")), Some("10.0.0.1".to_owned()));
    assert_eq!(host(parse("[]")), Some(String::new()), "the node that answered");
    for unusable in ["[?]", "[[::1]]", "[x", "x]", "a[b]c"] {
        assert_eq!(host(parse(unusable)), None, "{unusable:?}");
    }
    let mut spec = three_by_two();
    spec[0].nodes[0].host = "[?]".into();
    spec[1].nodes[0].host = "[]".into();
    for shape in [Shape::Resp3, Shape::Resp2] {
        let t = parse_shards(&spec, shape);
        assert_eq!(addr_of(&t, 0), None, "an unknown primary owns nothing");
        assert_eq!(addr_of(&t, 6000).map(|a| a.host().to_owned()), Some(ORIGIN_HOST.to_owned()));
        let back =
            Topology::from_shards_reply(&t.to_shards_reply(crate::Protocol::Resp3, false), &origin(), false);
        assert_eq!(back.as_ref().ok(), Some(&t), "renders and parses back");
    }
}

#[test]
fn endpoint_question_mark_is_skipped() {
    let mut spec = three_by_two();
    spec[0].nodes[1].endpoint = Ep::Unknown; // a replica: only that node goes
    spec[2].nodes[0].endpoint = Ep::Unknown; // a primary: its shard's slots become unowned
    for shape in [Shape::Resp3, Shape::Resp2] {
        let t = parse_shards(&spec, shape);
        assert!(t.replicas(slot(0)).is_empty());
        assert_eq!(addr_of(&t, 0), Some(spec[0].nodes[0].addr()));
        assert_eq!(addr_of(&t, 12000), None);
        assert_eq!(t.shard_index(slot(12000)), None);
        assert_eq!(t.covered_slots(), 10923);
        assert_eq!(t.uncovered_ranges(), vec![range(slot(10923), slot(16383))]);
        let reasons: Vec<SkipReason> = t.skipped().iter().map(|s| s.reason).collect();
        assert_eq!(reasons.iter().filter(|r| **r == SkipReason::UnknownEndpoint).count(), 2);
        assert_eq!(reasons.iter().filter(|r| **r == SkipReason::NoPrimary).count(), 1);
        let skipped_ids: Vec<_> = t.skipped().iter().filter_map(|s| s.id.as_deref()).collect();
        assert!(skipped_ids.contains(&spec[2].nodes[1].id.as_str()));

        let s = parse_slots(&spec, shape);
        assert_eq!(s.covered_slots(), 10923);
        assert!(s.replicas(slot(0)).is_empty());
        assert_eq!(s.skipped().len(), 3);
    }
}

#[test]
fn tls_port_selection() {
    let mut spec = three_by_two();
    for shard in &mut spec {
        for n in &mut shard.nodes {
            n.tls_port = n.port.map(|p| p + 100);
        }
    }
    spec[1].nodes[0].port = None; // TLS-only primary
    spec[2].nodes[1].tls_port = None; // plain-only replica
    let reply = shards_reply(&spec, Shape::Resp3);
    let tls = Topology::from_shards_reply(&reply, &origin(), true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(addr_of(&tls, 0).map(|a| a.port()), Some(7100));
    assert_eq!(addr_of(&tls, 6000).map(|a| a.port()), Some(7101));
    assert_eq!(tls.replicas(slot(12000))[0].addr.port(), 7005, "falls back to `port`");
    assert!(tls.skipped().is_empty());

    let plain = Topology::from_shards_reply(&reply, &origin(), false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(addr_of(&plain, 0).map(|a| a.port()), Some(7000));
    assert_eq!(addr_of(&plain, 6000), None, "a TLS-only primary cannot serve a plain client");
    assert_eq!(plain.skipped().iter().filter(|s| s.reason == SkipReason::NoUsablePort).count(), 1);
    assert_eq!(plain.skipped().iter().filter(|s| s.reason == SkipReason::NoPrimary).count(), 1);
}

#[test]
fn hostname_and_availability_zone() {
    let mut spec = three_by_two();
    spec[0].nodes[0].hostname = Some("node-0.example".into());
    spec[0].nodes[0].az = Some("us-east-1a".into());
    spec[0].nodes[1].az = Some("us-east-1b".into());
    spec[1].nodes[0].hostname = Some(String::new()); // empty counts as absent
    for shape in [Shape::Resp3, Shape::Resp2] {
        for t in [parse_shards(&spec, shape), parse_slots(&spec, shape)] {
            let p = t.primary(slot(0)).unwrap_or_else(|| panic!("owned"));
            assert_eq!(p.hostname.as_deref(), Some("node-0.example"));
            assert_eq!(p.availability_zone.as_deref(), Some("us-east-1a"));
            assert_eq!(t.replicas(slot(0))[0].availability_zone.as_deref(), Some("us-east-1b"));
            assert_eq!(t.primary(slot(6000)).and_then(|p| p.hostname.clone()), None);
        }
    }
}

#[test]
fn health_values_and_failed_nodes() {
    let mut spec = three_by_two();
    spec[0].nodes[1].health = "fail"; // what the server sends
    spec[1].nodes[1].health = "loading";
    spec[2].nodes[0].health = "failed"; // what the docs show; a failed primary
    spec[2].nodes[1].health = "mystery";
    let t = parse_shards(&spec, Shape::Resp3);
    assert_eq!(t.replicas(slot(0))[0].health, Health::Failed);
    assert!(!t.replicas(slot(0))[0].is_online());
    assert_eq!(t.replicas(slot(6000))[0].health, Health::Loading);
    assert_eq!(t.replicas(slot(12000))[0].health, Health::Unknown);
    // The failed primary's shard keeps its slots and replicas, but offers no write target.
    assert_eq!(t.primary(slot(12000)), None);
    assert_eq!(t.shard_index(slot(12000)), Some(2));
    assert_eq!(t.shards()[2].primary.health, Health::Failed);
    assert!(t.is_fully_covered());
    assert_eq!(Health::parse("ONLINE"), Health::Online);
}

#[test]
fn two_primaries_in_one_shard_keep_the_healthy_one() {
    let mut spec = three_by_two();
    let mut old = NodeSpec::new(9, true);
    old.health = "fail";
    spec[0].nodes.insert(0, old.clone());
    let a = parse_shards(&spec, Shape::Resp3);
    spec[0].nodes.swap(0, 1);
    let b = parse_shards(&spec, Shape::Resp3);
    assert_eq!(a, b);
    assert_eq!(addr_of(&a, 0), Some(NodeSpec::new(0, true).addr()));
    assert_eq!(
        a.skipped(),
        &[SkippedNode { id: Some(old.id.as_str().into()), reason: SkipReason::ExtraPrimary }]
    );
}

/// Right after a takeover the promoted replica lists itself and its dead old primary (not yet
/// marked failed) as primaries of one shard: the node that answered knows its own role best,
/// so it is kept, whatever the addresses' order. (Found on a real one-shard cluster: the old
/// primary, first by address, was kept and the promoted one dropped from the topology.)
#[test]
fn two_healthy_primaries_in_one_shard_keep_the_one_that_answered() {
    let mut spec = three_by_two();
    spec[0].nodes[1].primary = true; // node 3, the promoted replica, says master too
    let promoted = NodeSpec::new(3, false).addr();
    let reply = shards_reply(&spec, Shape::Resp3);
    let t = Topology::from_shards_reply(&reply, &promoted, false).expect("parses");
    assert_eq!(addr_of(&t, 0), Some(promoted), "the answering node");
    let t = Topology::from_shards_reply(&reply, &origin(), false).expect("parses");
    assert_eq!(addr_of(&t, 0), Some(NodeSpec::new(0, true).addr()), "else the lower address, as before");
}

#[test]
fn partial_coverage_and_empty_shards() {
    let mut spec = three_by_two();
    spec[0].ranges = vec![(0, 99), (300, 5460)];
    spec[1].ranges = vec![]; // a primary with no slots (just added)
    let t = parse_shards(&spec, Shape::Resp2);
    assert_eq!(t.covered_slots(), 16384 - 200 - 5462);
    let uncovered: Vec<String> = t.uncovered_ranges().iter().map(ToString::to_string).collect();
    assert_eq!(uncovered, ["100-299", "5461-10922"]);
    assert_eq!(addr_of(&t, 150), None);
    assert_eq!(addr_of(&t, 99), Some(spec[0].nodes[0].addr()));
    assert_eq!(t.shards().len(), 3, "the slot-less shard is still listed");
    assert_eq!(t.shards().iter().filter(|s| s.slots.is_empty()).count(), 1);
    assert!(t.node_addrs().contains(&spec[1].nodes[0].addr()));
}

#[test]
fn slots_given_as_decimal_strings() {
    let reply = map(
        Shape::Resp3,
        vec![("slots", Value::Array(vec![bulk("0"), bulk("16383")])), ("nodes", Value::Array(vec![]))],
    );
    let node = shards_node(&NodeSpec::new(1, true), Shape::Resp3);
    let reply = match reply {
        Value::Map(mut pairs) => {
            pairs[1].1 = Value::Array(vec![node]);
            Value::Array(vec![Value::Map(pairs)])
        }
        other => other,
    };
    let t = Topology::from_shards_reply(&reply, &origin(), false).unwrap_or_else(|e| panic!("{e}"));
    assert!(t.is_fully_covered());
}

// ---------------------------------------------------------------------------------------------
// CLUSTER SLOTS

#[test]
fn slots_reply_matches_shards_reply() {
    let mut spec = three_by_two();
    spec[0].ranges = vec![(0, 100), (200, 5460)]; // a primary listed twice
    spec[1].ranges.push((101, 199));
    spec[2].nodes.push(NodeSpec::new(7, false));
    for shape in [Shape::Resp3, Shape::Resp2] {
        let s = parse_slots(&spec, shape);
        assert!(s.check_invariants().is_ok());
        assert_eq!(s.shards().len(), 3, "ranges of one primary are grouped");
        assert_eq!(s.replicas(slot(16000)).len(), 2);
        assert!(s.nodes().all(|n| n.replication_offset.is_none() && n.health == Health::Online));
        assert_eq!(s, parse_shards(&spec, shape), "same layout from either command");
    }
}

#[test]
fn slots_reply_failed_replicas_are_absent() {
    let mut spec = three_by_two();
    spec[0].nodes[1].health = "fail";
    let s = parse_slots(&spec, Shape::Resp2);
    assert!(s.replicas(slot(0)).is_empty());
    assert_eq!(s.replicas(slot(6000)).len(), 1);
}

#[test]
fn slots_reply_old_servers_and_odd_nodes() {
    // Endpoint and port only (no id, no metadata), NULL endpoint, extra trailing elements.
    let reply = Value::Array(vec![
        Value::Array(vec![
            Value::Int(0),
            Value::Int(8000),
            Value::Array(vec![bulk("10.1.1.1"), Value::Int(7000)]),
        ]),
        Value::Array(vec![
            Value::Int(8001),
            Value::Int(16383),
            Value::Array(vec![
                Value::Nil,
                Value::Int(7001),
                bulk("abc"),
                Value::Array(vec![]),
                bulk("future"),
            ]),
            Value::Array(vec![bulk("10.1.1.3"), Value::Int(0), bulk("def")]),
        ]),
    ]);
    let t = Topology::from_slots_reply(&reply, &origin()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(addr_of(&t, 0), Some(NodeAddr::new("10.1.1.1", 7000)));
    assert_eq!(t.primary(slot(0)).and_then(|p| p.id.clone()), None);
    assert_eq!(addr_of(&t, 9000), Some(NodeAddr::new(ORIGIN_HOST, 7001)));
    assert!(t.replicas(slot(9000)).is_empty());
    assert_eq!(t.skipped()[0].reason, SkipReason::NoUsablePort);
}

// ---------------------------------------------------------------------------------------------
// Garbage

fn shards_err(v: &Value) -> TopologyError {
    match Topology::from_shards_reply(v, &origin(), false) {
        Ok(t) => panic!("expected an error, parsed {} shards", t.shards().len()),
        Err(e) => e,
    }
}

fn slots_err(v: &Value) -> TopologyError {
    match Topology::from_slots_reply(v, &origin()) {
        Ok(t) => panic!("expected an error, parsed {} shards", t.shards().len()),
        Err(e) => e,
    }
}

/// One shard `0..=16383` whose only node has `node` fields.
fn one_shard(slots: Vec<Value>, node: Vec<(&str, Value)>) -> Value {
    let node = map(Shape::Resp3, node);
    Value::Array(vec![map(
        Shape::Resp3,
        vec![("slots", Value::Array(slots)), ("nodes", Value::Array(vec![node]))],
    )])
}

fn good_node() -> Vec<(&'static str, Value)> {
    vec![("port", Value::Int(7000)), ("endpoint", bulk("h")), ("role", bulk("master"))]
}

fn full() -> Vec<Value> {
    vec![Value::Int(0), Value::Int(16383)]
}

#[test]
fn garbage_gives_typed_errors() {
    use TopologyError as E;
    assert_eq!(shards_err(&Value::Int(3)), E::NotAnArray { what: "CLUSTER SHARDS reply" });
    assert!(
        matches!(shards_err(&Value::Error(Bytes::from_static(b"ERR cluster disabled"))), E::Server(m) if m.contains("disabled"))
    );
    assert_eq!(shards_err(&Value::Array(vec![])), E::Empty);
    assert_eq!(shards_err(&Value::Array(vec![Value::Int(1)])), E::NotAMap { what: "shard" });
    assert_eq!(
        shards_err(&Value::Array(vec![map(Shape::Resp3, vec![])])),
        E::MissingField { field: "slots" }
    );
    let no_nodes = Value::Array(vec![map(Shape::Resp2, vec![("slots", Value::Array(full()))])]);
    assert_eq!(shards_err(&no_nodes), E::MissingField { field: "nodes" });
    let bad_nodes = Value::Array(vec![map(
        Shape::Resp2,
        vec![("slots", Value::Array(full())), ("nodes", Value::Int(1))],
    )]);
    assert_eq!(shards_err(&bad_nodes), E::NotAnArray { what: "nodes" });
    assert_eq!(
        shards_err(&one_shard(vec![Value::Int(5)], good_node())),
        E::BadSlotRange { start: 5, end: -1 }
    );
    let out = vec![Value::Int(0), Value::Int(16384)];
    assert_eq!(shards_err(&one_shard(out, good_node())), E::BadSlotRange { start: 0, end: 16384 });
    let reversed = vec![Value::Int(10), Value::Int(9)];
    assert_eq!(shards_err(&one_shard(reversed, good_node())), E::BadSlotRange { start: 10, end: 9 });
    let neg = vec![Value::Int(-1), Value::Int(9)];
    assert_eq!(shards_err(&one_shard(neg, good_node())), E::BadSlotRange { start: -1, end: 9 });
    let overlap = vec![Value::Int(0), Value::Int(10), Value::Int(5), Value::Int(20)];
    assert_eq!(shards_err(&one_shard(overlap, good_node())), E::OverlappingSlots { slot: 5 });

    let mut n = good_node();
    n[0].1 = Value::Int(70_000);
    assert_eq!(shards_err(&one_shard(full(), n)), E::BadPort { port: 70_000 });
    let mut n = good_node();
    n[0].1 = bulk("x");
    assert_eq!(shards_err(&one_shard(full(), n)), E::BadPort { port: -1 });
    let mut n = good_node();
    n.remove(0);
    assert_eq!(shards_err(&one_shard(full(), n)), E::MissingField { field: "port" });
    let mut n = good_node();
    n.remove(2);
    assert_eq!(shards_err(&one_shard(full(), n)), E::MissingField { field: "role" });
    let mut n = good_node();
    n[1].1 = Value::Int(1);
    assert_eq!(shards_err(&one_shard(full(), n)), E::BadField { field: "endpoint" });
    let mut n = good_node();
    n.push(("health", Value::Int(1)));
    assert_eq!(shards_err(&one_shard(full(), n)), E::BadField { field: "health" });
    let mut n = good_node();
    n[2].1 = bulk("arbiter");
    assert_eq!(shards_err(&one_shard(full(), n)), E::Empty, "unknown role is skipped, leaving nothing");
    let node_not_map = Value::Array(vec![map(
        Shape::Resp3,
        vec![("slots", Value::Array(full())), ("nodes", Value::Array(vec![Value::Int(1)]))],
    )]);
    assert_eq!(shards_err(&node_not_map), E::NotAMap { what: "node" });

    // Two shards claiming the same slot.
    let mut spec = three_by_two();
    spec[1].ranges = vec![(5000, 10922)];
    assert_eq!(shards_err(&shards_reply(&spec, Shape::Resp3)), E::OverlappingSlots { slot: 5000 });
    assert_eq!(slots_err(&slots_reply(&spec, Shape::Resp3)), E::OverlappingSlots { slot: 5000 });

    assert_eq!(slots_err(&Value::Nil), E::NotAnArray { what: "CLUSTER SLOTS reply" });
    assert_eq!(slots_err(&Value::Array(vec![Value::Int(1)])), E::NotAnArray { what: "slot entry" });
    let short = Value::Array(vec![Value::Array(vec![Value::Int(0), Value::Int(5)])]);
    assert_eq!(slots_err(&short), E::MissingField { field: "primary" });
    let shorter = Value::Array(vec![Value::Array(vec![Value::Int(0)])]);
    assert!(matches!(slots_err(&shorter), E::BadSlotRange { .. }));
    let node =
        |n: Vec<Value>| Value::Array(vec![Value::Array(vec![Value::Int(0), Value::Int(5), Value::Array(n)])]);
    assert_eq!(slots_err(&node(vec![bulk("h")])), E::MissingField { field: "port" });
    assert_eq!(slots_err(&node(vec![bulk("h"), Value::Int(-3)])), E::BadPort { port: -3 });
    assert_eq!(slots_err(&node(vec![bulk("?"), Value::Int(7000)])), E::Empty);
    assert!(matches!(
        slots_err(&Value::Array(vec![Value::Array(vec![Value::Int(0), Value::Int(5), Value::Int(1)])])),
        E::NotAnArray { .. }
    ));
}

#[test]
fn garbage_never_panics_in_the_fuzz_entry() {
    let spec = three_by_two();
    for v in [
        shards_reply(&spec, Shape::Resp3),
        shards_reply(&spec, Shape::Resp2),
        slots_reply(&spec, Shape::Resp3),
        slots_reply(&spec, Shape::Resp2),
        Value::Nil,
        Value::Array(vec![Value::Array(vec![]), Value::Map(vec![])]),
    ] {
        fuzz_topology_value(&v);
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical equality

#[test]
fn canonical_equality() {
    let spec = three_by_two();
    let base = parse_shards(&spec, Shape::Resp3);

    let mut shuffled = spec.clone();
    shuffled.reverse();
    for s in &mut shuffled {
        s.nodes.reverse();
    }
    assert_eq!(parse_shards(&shuffled, Shape::Resp3), base, "order does not matter");

    let mut split = spec.clone();
    split[0].ranges = vec![(3000, 5460), (0, 2999)];
    assert_eq!(parse_shards(&split, Shape::Resp3), base, "range spelling does not matter");

    let mut offsets = spec.clone();
    offsets[1].nodes[1].offset += 12345;
    assert_eq!(parse_shards(&offsets, Shape::Resp3), base, "replication offsets are ignored");

    let mut sick = spec.clone();
    sick[1].nodes[1].health = "fail";
    assert_ne!(parse_shards(&sick, Shape::Resp3), base, "health is part of the layout");

    let mut moved = spec;
    moved[0].ranges = vec![(0, 5459)];
    moved[1].ranges = vec![(5460, 10922)];
    assert_ne!(parse_shards(&moved, Shape::Resp3), base);
}

// ---------------------------------------------------------------------------------------------
// MOVED patches

#[test]
fn patch_slot_to_a_known_primary() {
    let spec = three_by_two();
    let mut t = parse_shards(&spec, Shape::Resp3);
    let before = t.clone();
    let target = spec[1].nodes[0].addr();
    assert_eq!(t.patch_slot(slot(100), target.clone()), Ok(true));
    assert_eq!(addr_of(&t, 100), Some(target.clone()));
    assert_eq!(t.replicas(slot(100))[0].addr, spec[1].nodes[1].addr(), "the slot takes the shard's replicas");
    assert_eq!(t.patch_slot(slot(100), target.clone()), Ok(false), "already there");
    assert_eq!(addr_of(&t, 99), Some(spec[0].nodes[0].addr()), "neighbours stay");
    let ranges: Vec<String> = t.shards()[0].slots.iter().map(ToString::to_string).collect();
    assert_eq!(ranges, ["0-99", "101-5460"]);
    assert!(t.check_invariants().is_ok());

    let d = before.diff(&t);
    assert_eq!(
        d.moved,
        vec![SlotMove {
            range: SlotRange::single(slot(100)),
            from: Some(spec[0].nodes[0].addr()),
            to: Some(target)
        }]
    );
    assert!(d.added.is_empty() && d.removed.is_empty());
    assert!(d.slot_moved(slot(100)) && !d.slot_moved(slot(101)) && !d.slot_moved(slot(99)));
}

#[test]
fn patch_slot_to_an_unknown_node() {
    let spec = three_by_two();
    let mut t = parse_shards(&spec, Shape::Resp3);
    let before = t.clone();
    let new = NodeAddr::new("10.9.9.9", 7777);
    assert_eq!(t.patch_slot(slot(0), new.clone()), Ok(true));
    assert_eq!(t.patch_slot(slot(1), new.clone()), Ok(true));
    assert_eq!(t.shards().len(), 4, "one new shard, reused by the second MOVED");
    assert_eq!(t.shards()[3].slots, vec![range(slot(0), slot(1))]);
    assert_eq!(t.primary(slot(1)), Some(&Node::from_addr(new.clone())));
    assert!(t.replicas(slot(1)).is_empty());
    assert!(t.check_invariants().is_ok());
    let d = before.diff(&t);
    assert_eq!(d.moved_slot_count(), 2);
    assert_eq!(d.added, vec![new]);
    // Moving the slots back empties the new shard but keeps the map consistent.
    assert_eq!(t.patch_slot(slot(0), spec[0].nodes[0].addr()), Ok(true));
    assert_eq!(t.patch_slot(slot(1), spec[0].nodes[0].addr()), Ok(true));
    assert!(t.check_invariants().is_ok());
    assert!(before.diff(&t).moved.is_empty());
}

#[test]
fn patch_slot_revives_a_failed_primary() {
    let mut spec = three_by_two();
    spec[2].nodes[0].health = "fail";
    let mut t = parse_shards(&spec, Shape::Resp3);
    assert_eq!(addr_of(&t, 12000), None);
    assert_eq!(t.patch_slot(slot(12000), spec[2].nodes[0].addr()), Ok(false), "owner unchanged");
    assert_eq!(addr_of(&t, 12000), Some(spec[2].nodes[0].addr()));
}

// ---------------------------------------------------------------------------------------------
// Diff

#[test]
fn diff_of_a_failover() {
    let spec = three_by_two();
    let old = parse_shards(&spec, Shape::Resp2);
    assert!(old.diff(&old).is_empty());

    let mut after = spec.clone();
    after[1].nodes[0].primary = false;
    after[1].nodes[0].health = "fail";
    after[1].nodes[1].primary = true;
    after[1].nodes.swap(0, 1);
    after[2].nodes.push(NodeSpec::new(8, false));
    after[0].nodes.truncate(1);
    let new = parse_shards(&after, Shape::Resp3);
    let d = old.diff(&new);
    let (p, r) = (spec[1].nodes[0].addr(), spec[1].nodes[1].addr());
    assert_eq!(
        d.moved,
        vec![SlotMove { range: range(slot(5461), slot(10922)), from: Some(p.clone()), to: Some(r.clone()) }]
    );
    assert_eq!(d.moved_slot_count(), 10922 - 5461 + 1);
    assert_eq!(d.moved_slots().next(), Some(slot(5461)));
    assert_eq!(d.added, vec![NodeSpec::new(8, false).addr()]);
    assert_eq!(d.removed, vec![spec[0].nodes[1].addr()]);
    assert_eq!(
        d.role_changes,
        vec![
            RoleChange { addr: p.clone(), from: Role::Primary, to: Role::Replica },
            RoleChange { addr: r, from: Role::Replica, to: Role::Primary },
        ]
    );
    assert_eq!(d.health_changes, vec![HealthChange { addr: p, from: Health::Online, to: Health::Failed }]);
    assert!(!d.is_empty());
}

#[test]
fn diff_sees_a_new_server_at_the_same_address() {
    let spec = three_by_two();
    let old = parse_shards(&spec, Shape::Resp3);
    let mut replaced = spec;
    replaced[0].nodes[0].id = format!("{:040x}", 0xdead_u32);
    let new = parse_shards(&replaced, Shape::Resp3);
    let d = old.diff(&new);
    assert_eq!(d.moved_slot_count(), 5461, "a restarted node with a new id lost its data");
    assert_eq!(d.moved[0].from, d.moved[0].to);
    assert!(d.added.is_empty() && d.removed.is_empty());
}

#[test]
fn diff_to_and_from_unowned() {
    let spec = three_by_two();
    let old = parse_shards(&spec, Shape::Resp3);
    let mut partial = spec;
    partial[2].ranges = vec![(10923, 15999)];
    let new = parse_shards(&partial, Shape::Resp3);
    let d = old.diff(&new);
    assert_eq!(d.moved.len(), 1);
    assert_eq!((d.moved[0].range.start(), d.moved[0].range.end()), (slot(16000), slot(16383)));
    assert_eq!(d.moved[0].to, None);
    let back = new.diff(&old);
    assert_eq!(back.moved[0].from, None);
    assert_eq!(back.moved_slot_count(), 384);
}

// ---------------------------------------------------------------------------------------------
// Hand-built topologies

#[test]
fn from_shards_canonicalises_and_validates() {
    let node = |n: u32, role| Node { role, ..Node::from_addr(NodeSpec::new(n, true).addr()) };
    let shard = |ranges: Vec<SlotRange>, n: u32| Shard {
        slots: ranges,
        primary: node(n, Role::Primary),
        replicas: vec![node(n + 20, Role::Replica), node(n + 10, Role::Replica)],
    };
    let t = Topology::from_shards(vec![
        shard(vec![range(slot(200), slot(16383)), range(slot(100), slot(199))], 1),
        shard(vec![range(slot(0), slot(99))], 0),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.shards()[0].primary.addr, NodeSpec::new(0, true).addr(), "sorted by first slot");
    assert_eq!(t.shards()[1].slots, vec![range(slot(100), slot(16383))], "ranges merged");
    assert_eq!(t.replicas(slot(5))[0].addr, NodeSpec::new(10, true).addr(), "replicas sorted");
    assert!(t.is_fully_covered());
    assert!(t.check_invariants().is_ok());
    let overlap = Topology::from_shards(vec![
        shard(vec![range(slot(0), slot(10))], 0),
        shard(vec![range(slot(10), slot(20))], 1),
    ]);
    assert_eq!(overlap.err(), Some(TopologyError::OverlappingSlots { slot: 10 }));
    assert_eq!(Topology::from_shards(vec![shard(vec![], 0)]).err(), Some(TopologyError::Empty));
}
