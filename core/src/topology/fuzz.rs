//! Fuzz target bodies for topology parsing (re-exported by `crate::fuzzing`; also run by the
//! unit tests). Each asserts invariants and panics when one breaks, which is what a fuzzer
//! reports.

use super::Topology;
use crate::resp::{Limits, decode_slice};
use crate::{NodeAddr, Protocol, SLOT_COUNT, Slot, Value};

/// The node that answered, for NULL and empty endpoints.
fn origin() -> NodeAddr {
    NodeAddr::new("127.0.0.1", 7000)
}

/// `topology_parse`: arbitrary bytes, decoded as one RESP2 and one RESP3 frame, go through
/// [`Topology::from_shards_reply`] (plain and TLS), [`Topology::from_slots_reply`] and
/// [`Topology::from_info_reply`] (a standalone node) without a panic, and every topology that parses passes [`check_topology`].
pub fn topology_parse(data: &[u8]) {
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        if let Ok(Some((value, _))) = decode_slice(data, protocol, &Limits::default()) {
            fuzz_topology_value(&value);
        }
    }
}

/// Parses `v` as every reply (`CLUSTER SHARDS` plain and TLS, `CLUSTER SLOTS`, `INFO`, from a
/// fixed origin) and checks whatever parses
/// with [`check_topology`]; also patches every fifth slot (as `MOVED`s would) and checks that
/// the patches land, keep the invariants, and that the diff reports only real moves. Panics
/// only when an invariant breaks.
pub fn fuzz_topology_value(v: &Value) {
    let origin = origin();
    let parsed = [
        (Topology::from_shards_reply(v, &origin, false), Some(false)),
        (Topology::from_shards_reply(v, &origin, true), Some(true)),
        (Topology::from_slots_reply(v, &origin), None),
        (Topology::from_info_reply(v, &origin), None),
    ];
    for (t, tls) in parsed {
        let Ok(t) = t else { continue };
        check_topology(&t);
        if let Some(tls) = tls {
            check_render_round_trip(&t, tls);
        }
        let mut patched = t.clone();
        let addrs = t.node_addrs();
        for (i, slot) in (0..SLOT_COUNT).step_by(5).filter_map(Slot::new).enumerate() {
            let addr = addrs.get(i % addrs.len().max(1)).cloned().unwrap_or_else(|| origin.clone());
            if patched.patch_slot(slot, addr.clone()).is_ok() {
                let now = patched.shard(slot).map(|s| &s.primary.addr);
                assert_eq!(now, Some(&addr), "patched slot {slot} must point at its MOVED target");
            }
        }
        if let Err(e) = patched.check_invariants() {
            panic!("invariant broken after patches: {e}");
        }
        let diff = t.diff(&patched);
        for slot in diff.moved_slots() {
            let (a, b) = (t.shard(slot).map(|s| &s.primary), patched.shard(slot).map(|s| &s.primary));
            assert!(
                a.zip(b).is_none_or(|(a, b)| !a.same_server(b)),
                "slot {slot} reported moved but did not"
            );
        }
    }
}

/// The invariants of a parsed topology: the internal ones; every owned slot's shard exists and
/// lists the slot; every shard's primary has an address that renders as text that parses back
/// to it;
/// `covered_slots`, `is_fully_covered` and `uncovered_ranges` agree with `shard_index`; and
/// the topology equals its clone and does not differ from itself.
pub fn check_topology(t: &Topology) {
    if let Err(e) = t.check_invariants() {
        panic!("invariant broken after parse: {e}");
    }
    for shard in t.shards() {
        let addr = &shard.primary.addr;
        assert_eq!(
            NodeAddr::parse(&addr.to_string()).as_ref(),
            Some(addr),
            "a primary's address does not parse"
        );
    }
    let mut covered = 0;
    for slot in (0..SLOT_COUNT).filter_map(Slot::new) {
        let Some(i) = t.shard_index(slot) else {
            assert!(t.shard(slot).is_none() && t.primary(slot).is_none(), "unowned slot {slot} has an owner");
            continue;
        };
        covered += 1;
        let shard = t.shards().get(i).unwrap_or_else(|| panic!("slot {slot} maps to missing shard {i}"));
        assert!(shard.slots.iter().any(|r| r.contains(slot)), "shard {i} does not list its slot {slot}");
    }
    assert_eq!(t.covered_slots(), covered, "covered_slots disagrees with shard_index");
    assert!(covered > 0, "an accepted topology owns at least one slot");
    assert_eq!(t.is_fully_covered(), covered == usize::from(SLOT_COUNT));
    let uncovered: usize = t.uncovered_ranges().iter().map(|r| r.len()).sum();
    assert_eq!(uncovered + covered, usize::from(SLOT_COUNT), "uncovered_ranges disagrees with shard_index");
    assert_eq!(t, &t.clone(), "a topology must equal its clone");
    assert!(t.diff(t).is_empty(), "a topology must not differ from itself");
    assert!(t.diff(&t.clone()).is_empty(), "a topology must not differ from its clone");
}

/// A topology rendered as a `CLUSTER SHARDS` reply parses back to itself (in both protocols),
/// except for the documented case of a node with an empty host, which comes back with the
/// origin's host.
fn check_render_round_trip(t: &Topology, tls: bool) {
    if t.nodes().any(|n| n.addr.host().is_empty()) {
        return;
    }
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        match Topology::from_shards_reply(&t.to_shards_reply(protocol, tls), &origin(), tls) {
            Ok(back) => assert_eq!(&back, t, "rendering and parsing again changed the topology"),
            Err(e) => panic!("a rendered topology does not parse ({protocol:?}, tls {tls}): {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Some of the committed seeds of `fuzz/corpus/topology_parse/`.
    const SEEDS: [&[u8]; 6] = [
        include_bytes!("../../../fuzz/corpus/topology_parse/shards_resp3_3x2"),
        include_bytes!("../../../fuzz/corpus/topology_parse/shards_resp2_3x2"),
        include_bytes!("../../../fuzz/corpus/topology_parse/slots_resp2_3x2"),
        include_bytes!("../../../fuzz/corpus/topology_parse/shards_endpoints_null_empty_unknown"),
        include_bytes!("../../../fuzz/corpus/topology_parse/shards_partial_hostnames_az_ipv6"),
        include_bytes!("../../../fuzz/corpus/topology_parse/slots_resp3_metadata"),
    ];

    #[test]
    fn bracketed_endpoints() {
        let reply = |endpoint: &str| {
            let data = format!(
                "*1\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n%3\r\n\
                 $4\r\nport\r\n:7000\r\n$8\r\nendpoint\r\n${}\r\n{endpoint}\r\n$4\r\nrole\r\n$6\r\nmaster\r\n",
                endpoint.len()
            );
            topology_parse(data.as_bytes());
        };
        for e in ["[x]", "[]", "[?]", "[[::1]]", "[::1]", "x]", "[x"] {
            reply(e);
        }
    }

    #[test]
    fn seeds_hold_and_parse() {
        for data in
            SEEDS.into_iter().chain([&b""[..], b"*0\r\n", b"-ERR no\r\n", b"*1\r\n*2\r\n:0\r\n:1\r\n"])
        {
            topology_parse(data);
        }
        let value = |data: &[u8], protocol| {
            decode_slice(data, protocol, &Limits::default()).ok().flatten().map(|v| v.0)
        };
        let full = |t: Result<Topology, _>| t.is_ok_and(|t| t.is_fully_covered() && t.node_count() == 6);
        let shards3 = value(SEEDS[0], Protocol::Resp3).expect("RESP3 seed");
        let shards2 = value(SEEDS[1], Protocol::Resp2).expect("RESP2 seed");
        let slots2 = value(SEEDS[2], Protocol::Resp2).expect("RESP2 seed");
        assert!(full(Topology::from_shards_reply(&shards3, &origin(), false)));
        assert!(full(Topology::from_shards_reply(&shards2, &origin(), false)));
        assert!(full(Topology::from_slots_reply(&slots2, &origin())));
        for (i, seed) in SEEDS.iter().enumerate().skip(3) {
            let parsed =
                [Protocol::Resp2, Protocol::Resp3].into_iter().filter_map(|p| value(seed, p)).any(|v| {
                    Topology::from_shards_reply(&v, &origin(), false).is_ok()
                        || Topology::from_slots_reply(&v, &origin()).is_ok()
                });
            assert!(parsed, "seed {i} parses as a topology");
        }
        // A standalone node's INFO, RESP2 bulk and RESP3 verbatim text.
        for (data, protocol, replicas) in [
            (
                &include_bytes!("../../../fuzz/corpus/topology_parse/info_standalone_primary")[..],
                Protocol::Resp2,
                2,
            ),
            (
                include_bytes!("../../../fuzz/corpus/topology_parse/info_standalone_replica_resp3"),
                Protocol::Resp3,
                1,
            ),
        ] {
            topology_parse(data);
            let v = value(data, protocol).expect("an INFO seed");
            let t = Topology::from_info_reply(&v, &origin()).expect("parses");
            assert!(t.is_standalone() && t.is_fully_covered());
            assert_eq!(t.shards()[0].replicas.len(), replicas);
        }
    }
}
