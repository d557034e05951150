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
//! - A standalone node (cluster support disabled) is one shard owning every slot, built from
//!   its `INFO` ([`Topology::from_info_reply`], rules in [`standalone`]).
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
#[cfg(any(test, feature = "_fuzz"))]
#[doc(hidden)]
pub mod fuzz;
mod node_info;
mod range;
pub mod refresh;
mod render;
mod shards;
mod slot_map;
mod slots;
pub mod standalone;

pub use diff::{HealthChange, RoleChange, SlotMove, TopologyDiff};
pub use error::TopologyError;
pub use node_info::{Health, Node, Role, SkipReason, SkippedNode};
pub use range::SlotRange;
pub(crate) use range::union as union_of_ranges;
pub use refresh::{RefreshConfig, RefreshConfigError, RefreshPolicy, RefreshReason};
pub use slot_map::{MAX_SHARDS, Shard, Topology};
pub use standalone::is_cluster_disabled;

/// Fuzz entry point (see [`fuzz::fuzz_topology_value`]), kept here for the topology tests.
#[doc(hidden)]
#[cfg(any(test, feature = "_fuzz"))]
pub use fuzz::fuzz_topology_value;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod prop_tests;

#[cfg(test)]
mod refresh_tests;
