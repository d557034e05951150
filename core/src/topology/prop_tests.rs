//! Property tests: random cluster layouts rendered as replies, parsed back, and compared slot by
//! slot with the layout they came from.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::tests::{
    NodeSpec, Shape, ShardSpec, bulk, map, origin, parse_shards, parse_slots, shards_reply, slots_reply,
};
use super::*;
use crate::{NodeAddr, Protocol, Rng, SLOT_COUNT, Slot, Value};

/// A generated cluster: shards, and the owner (shard index) of every slot.
#[derive(Clone, Debug)]
struct Layout {
    shards: Vec<ShardSpec>,
    owner: Vec<Option<usize>>,
}

/// Segments `[start, end]` cut at `cuts`, in order.
fn segments(cuts: &[u16]) -> Vec<(u16, u16)> {
    let mut points: Vec<u16> = cuts.iter().copied().filter(|&c| c > 0 && c < SLOT_COUNT).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut start = 0u16;
    for p in points {
        out.push((start, p - 1));
        start = p;
    }
    out.push((start, SLOT_COUNT - 1));
    out
}

fn build(n_shards: usize, cuts: &[u16], assign: &[u8], replicas: &[usize]) -> Layout {
    let segs = segments(cuts);
    let mut owner = vec![None; usize::from(SLOT_COUNT)];
    let mut shards: Vec<ShardSpec> = (0..n_shards)
        .map(|i| {
            let base = u32::try_from(i * 10).unwrap_or(0);
            let reps = replicas.get(i).copied().unwrap_or(0);
            let nodes =
                (0..=reps).map(|r| NodeSpec::new(base + u32::try_from(r).unwrap_or(0), r == 0)).collect();
            ShardSpec { ranges: Vec::new(), nodes }
        })
        .collect();
    for (k, &(a, b)) in segs.iter().enumerate() {
        let v = assign.get(k).copied().unwrap_or(0);
        // Segment 0 is always owned, so that every layout routes something.
        let who = if v == 9 && k > 0 { None } else { Some(usize::from(v) % n_shards) };
        if let Some(w) = who {
            shards[w].ranges.push((a, b));
            for s in a..=b {
                owner[usize::from(s)] = Some(w);
            }
        }
    }
    Layout { shards, owner }
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        1usize..=8,
        prop::collection::vec(1u16..SLOT_COUNT, 0..40),
        prop::collection::vec(0u8..=9, 41),
        prop::collection::vec(0usize..=3, 8),
    )
        .prop_map(|(n, cuts, assign, replicas)| build(n, &cuts, &assign, &replicas))
}

fn all_slots() -> impl Iterator<Item = Slot> {
    (0..SLOT_COUNT).filter_map(Slot::new)
}

/// Checks every slot of `t` against the layout.
fn matches_layout(t: &Topology, l: &Layout) -> Result<(), TestCaseError> {
    prop_assert!(t.check_invariants().is_ok());
    for s in all_slots() {
        let want = l.owner[s.index()].map(|w| &l.shards[w]);
        let got = t.primary(s);
        prop_assert_eq!(got.map(|n| n.addr.clone()), want.map(|w| w.nodes[0].addr()), "slot {}", s);
        let want_replicas = want.map_or(0, |w| w.nodes.len() - 1);
        prop_assert_eq!(t.replicas(s).len(), want_replicas, "replicas of slot {}", s);
    }
    prop_assert_eq!(t.covered_slots(), l.owner.iter().filter(|o| o.is_some()).count());
    Ok(())
}

fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = usize::try_from(rng.below(u64::try_from(i + 1).unwrap_or(1))).unwrap_or(0);
        v.swap(i, j);
    }
}

/// The same cluster, listed in another order, with some ranges split in two.
fn scrambled(l: &Layout, seed: u64) -> Vec<ShardSpec> {
    let mut rng = Rng::new(seed);
    let mut shards = l.shards.clone();
    for s in &mut shards {
        let mut split = Vec::new();
        for &(a, b) in &s.ranges {
            if b > a && rng.below(2) == 0 {
                let mid = a + u16::try_from(rng.below(u64::from(b - a))).unwrap_or(0);
                split.push((a, mid));
                split.push((mid + 1, b));
            } else {
                split.push((a, b));
            }
        }
        s.ranges = split;
        shuffle(&mut s.ranges, &mut rng);
        shuffle(&mut s.nodes, &mut rng);
        for n in &mut s.nodes {
            n.offset += i64::try_from(rng.below(1000)).unwrap_or(0);
        }
    }
    shuffle(&mut shards, &mut rng);
    shards
}

fn reply_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("slots"),
        Just("nodes"),
        Just("port"),
        Just("tls-port"),
        Just("endpoint"),
        Just("role"),
        Just("health"),
        Just("id"),
        Just("hostname"),
        Just("availability-zone"),
        Just("replication-offset"),
    ];
    let leaf = prop_oneof![
        Just(Value::Nil),
        prop_oneof![Just(-1i64), Just(0), Just(16383), Just(16384), Just(65535), Just(65536), any::<i64>()]
            .prop_map(Value::Int),
        prop_oneof![
            Just("master"),
            Just("replica"),
            Just("?"),
            Just(""),
            Just("online"),
            Just("fail"),
            Just("7000")
        ]
        .prop_map(bulk),
        key.clone().prop_map(bulk),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key.clone().prop_map(bulk), inner.clone()), 0..6).prop_map(Value::Map),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| map(Shape::Resp2, kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn shards_and_slots_replies_round_trip(l in layout()) {
        for shape in [Shape::Resp3, Shape::Resp2] {
            let from_shards = parse_shards(&l.shards, shape);
            matches_layout(&from_shards, &l)?;
            let from_slots = parse_slots(&l.shards, shape);
            matches_layout(&from_slots, &l)?;
            // Shards with no slots appear in CLUSTER SHARDS only.
            let owning = l.shards.iter().filter(|s| !s.ranges.is_empty()).count();
            prop_assert_eq!(from_slots.shards().len(), owning);
            prop_assert_eq!(from_shards.shards().len(), l.shards.len());
        }
    }

    #[test]
    fn canonical_equality_under_shuffling(l in layout(), seed in any::<u64>()) {
        let base = parse_shards(&l.shards, Shape::Resp3);
        let other = scrambled(&l, seed);
        let again = Topology::from_shards_reply(&shards_reply(&other, Shape::Resp2), &origin(), false);
        prop_assert_eq!(again.as_ref().ok(), Some(&base));
        let slots = Topology::from_slots_reply(&slots_reply(&other, Shape::Resp3), &origin());
        prop_assert_eq!(slots.as_ref().map(|t| t.diff(&base).moved.is_empty()).ok(), Some(true));
        prop_assert!(base.diff(&base).is_empty());
        prop_assert!(again.is_ok_and(|t| t.diff(&base).is_empty()));
    }

    #[test]
    fn diff_reports_exactly_the_moved_slots(
        l in layout(),
        moves in prop::collection::vec((any::<u16>(), any::<u16>(), 0u8..=9), 1..6),
    ) {
        let n = l.shards.len();
        let mut owner = l.owner.clone();
        for &(a, b, to) in &moves {
            let (a, b) = (a % SLOT_COUNT, b % SLOT_COUNT);
            let (a, b) = (a.min(b), a.max(b));
            let to = if to == 9 { None } else { Some(usize::from(to) % n) };
            for s in a..=b {
                owner[usize::from(s)] = to;
            }
        }
        prop_assume!(owner.iter().any(Option::is_some));
        let mut shards = l.shards.clone();
        for s in &mut shards {
            s.ranges.clear();
        }
        for (s, o) in owner.iter().enumerate() {
            if let (Some(w), Ok(s)) = (o, u16::try_from(s)) {
                shards[*w].ranges.push((s, s));
            }
        }
        let old = parse_shards(&l.shards, Shape::Resp3);
        let new = parse_shards(&shards, Shape::Resp2);
        let d = old.diff(&new);
        let expected: BTreeSet<u16> = (0..SLOT_COUNT).filter(|&s| owner[usize::from(s)] != l.owner[usize::from(s)]).collect();
        let got: BTreeSet<u16> = d.moved_slots().map(Slot::get).collect();
        prop_assert_eq!(&got, &expected);
        for m in &d.moved {
            for s in m.range.slots() {
                prop_assert_eq!(m.from.clone(), l.owner[s.index()].map(|w| l.shards[w].nodes[0].addr()));
                prop_assert_eq!(m.to.clone(), owner[s.index()].map(|w| l.shards[w].nodes[0].addr()));
            }
        }
        // Runs are maximal: two neighbouring runs never describe the same move.
        for w in d.moved.windows(2) {
            let adjacent = w[0].range.end().get() + 1 == w[1].range.start().get();
            prop_assert!(!(adjacent && w[0].from == w[1].from && w[0].to == w[1].to));
        }
        prop_assert!(d.added.is_empty() && d.removed.is_empty() && d.role_changes.is_empty());
    }

    #[test]
    fn patches_track_a_model(
        l in layout(),
        patches in prop::collection::vec((any::<u16>(), 0u8..12), 1..60),
    ) {
        let original = parse_shards(&l.shards, Shape::Resp3);
        let mut t = original.clone();
        let mut model: Vec<Option<NodeAddr>> =
            l.owner.iter().map(|o| o.map(|w| l.shards[w].nodes[0].addr())).collect();
        for &(s, to) in &patches {
            let s = s % SLOT_COUNT;
            let Some(slot) = Slot::new(s) else { continue };
            // Targets: an existing primary, a replica (seen as unknown primary), or a new node.
            let addr = match usize::from(to) {
                k if k < l.shards.len() => l.shards[k].nodes[0].addr(),
                k if k < 10 => l.shards[k % l.shards.len()].nodes.last().map_or_else(origin, NodeSpec::addr),
                k => NodeAddr::new("10.200.0.1", 9000 + u16::try_from(k).unwrap_or(0)),
            };
            let changed = t.patch_slot(slot, addr.clone());
            prop_assert_eq!(changed, Ok(model[usize::from(s)].as_ref() != Some(&addr)));
            model[usize::from(s)] = Some(addr);
        }
        prop_assert!(t.check_invariants().is_ok());
        for s in all_slots() {
            prop_assert_eq!(t.shard(s).map(|sh| sh.primary.addr.clone()), model[s.index()].clone());
        }
        let expected: BTreeSet<u16> = all_slots()
            .filter(|s| original.shard(*s).map(|x| &x.primary.addr) != model[s.index()].as_ref())
            .map(Slot::get)
            .collect();
        let got: BTreeSet<u16> = original.diff(&t).moved_slots().map(Slot::get).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn rendered_replies_round_trip(l in layout(), patches in prop::collection::vec(any::<u16>(), 0..8)) {
        let mut t = parse_shards(&l.shards, Shape::Resp3);
        for (i, s) in patches.iter().enumerate() {
            let to = NodeAddr::new("10.250.0.1", 8000 + u16::try_from(i % 3).unwrap_or(0));
            let _ = Slot::new(s % SLOT_COUNT).map(|s| t.patch_slot(s, to));
        }
        let offsets = |t: &Topology| {
            let mut v: Vec<(NodeAddr, Option<i64>)> = t.nodes().map(|n| (n.addr.clone(), n.replication_offset)).collect();
            v.sort();
            v
        };
        for protocol in [Protocol::Resp3, Protocol::Resp2] {
            for tls in [false, true] {
                let back = Topology::from_shards_reply(&t.to_shards_reply(protocol, tls), &origin(), tls);
                prop_assert_eq!(back.as_ref().ok(), Some(&t));
                prop_assert_eq!(back.map(|b| offsets(&b)).ok(), Some(offsets(&t)));
            }
        }
        let rebuilt = Topology::from_shards(t.shards().to_vec());
        prop_assert_eq!(rebuilt.as_ref().ok(), Some(&t));
        prop_assert!(rebuilt.is_ok_and(|r| r.check_invariants().is_ok()));
    }

    #[test]
    fn arbitrary_values_never_panic(v in reply_value()) {
        fuzz_topology_value(&v);
        fuzz_topology_value(&Value::Array(vec![v]));
    }
}
