//! Cluster topology: parsing `CLUSTER SHARDS` and `CLUSTER SLOTS`, the slot map, diffs, and
//! the refresh policy.
//!
//! - [`Topology`] holds the shards and a 16384-entry table from slot to shard, built from either
//!   reply ([`Topology::from_shards_reply`], preferred; [`Topology::from_slots_reply`] for
//!   servers before 7.0). Both RESP3 (maps) and RESP2 (flat key/value arrays) shapes parse.
//! - [`Topology::patch_slot`] applies a `MOVED` to one slot at once; a full refresh follows later.
//! - [`Topology::diff`] lists the slots whose owner changed (what a slot-scoped cache must drop),
//!   and the nodes added, removed, or whose role or health changed.
//! - [`RefreshPolicy`] decides when to refresh, and is where refresh storms are prevented.
//!
//! # Endpoint rules (both replies, per the `CLUSTER SHARDS`/`CLUSTER SLOTS` documentation)
//!
//! | endpoint | meaning | what the parser does |
//! |---|---|---|
//! | an IP or hostname | where to connect | used, with the port for the transport |
//! | NULL | unknown endpoint (nodes behind a load balancer) | the answering node's host, reply's port |
//! | `""` | the node does not know its own address | same as NULL |
//! | `"?"` | hostname endpoints configured but none announced | node skipped, [`SkipReason::UnknownEndpoint`] |
//!
//! Brackets around an IPv6 endpoint are removed before these rules apply, as in a `MOVED`
//! reply: `"[]"` reads as `""`, and `"[?]"` or a host that still holds a bracket as `"?"`.
//!
//! Anything structurally wrong (not an array, a missing `slots`, a slot out of range, a port out
//! of range, two shards claiming one slot) rejects the whole reply with a [`TopologyError`]; a
//! node that is merely unusable is skipped and listed in [`Topology::skipped`]. Parsing never
//! panics.

mod diff;
mod error;
mod node;
mod range;
pub mod refresh;
mod render;
mod shards;
mod slot_map;
mod slots;

pub use diff::{HealthChange, RoleChange, SlotMove, TopologyDiff};
pub use error::TopologyError;
pub use node::{Health, Node, Role, SkipReason, SkippedNode};
pub use range::SlotRange;
pub use refresh::{RefreshConfig, RefreshConfigError, RefreshPolicy, RefreshReason};
pub use slot_map::{MAX_SHARDS, Shard, Topology};

/// Fuzz entry point: parses `v` as both replies (plain and TLS, from a fixed origin) and checks
/// the invariants of whatever parses: the slot map agrees with the shard ranges, a topology
/// equals and does not differ from itself, and patching every fifth slot keeps the invariants.
/// Panics only when an invariant breaks.
#[doc(hidden)]
#[cfg(any(test, feature = "_fuzz"))]
pub fn fuzz_topology_value(v: &crate::Value) {
    use crate::NodeAddr;
    let origin = NodeAddr::new("127.0.0.1", 7000);
    let parsed = [
        Topology::from_shards_reply(v, &origin, false),
        Topology::from_shards_reply(v, &origin, true),
        Topology::from_slots_reply(v, &origin),
    ];
    for t in parsed.into_iter().flatten() {
        if let Err(e) = t.check_invariants() {
            panic!("invariant broken after parse: {e}");
        }
        assert_eq!(t, t.clone(), "a topology must equal its clone");
        assert!(t.diff(&t).is_empty(), "a topology must not differ from itself");
        assert!(t.covered_slots() > 0, "an accepted topology owns at least one slot");
        let mut patched = t.clone();
        let addrs = t.node_addrs();
        for (i, slot) in (0..crate::SLOT_COUNT).step_by(5).filter_map(crate::Slot::new).enumerate() {
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

#[cfg(test)]
mod tests;

#[cfg(test)]
mod prop_tests;

#[cfg(test)]
mod refresh_tests;
