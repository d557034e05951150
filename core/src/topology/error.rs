//! Why a topology reply was rejected.

use thiserror::Error;

/// A `CLUSTER SHARDS` or `CLUSTER SLOTS` reply that cannot be turned into a [`Topology`].
///
/// These are whole-reply failures: the caller should ask another node (or wait and retry). A
/// single node the client cannot use (endpoint `"?"`, an unknown role, no port for the transport)
/// is not an error: it is left out and listed in [`Topology::skipped`].
///
/// [`Topology`]: super::Topology
/// [`Topology::skipped`]: super::Topology::skipped
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// The node answered with an error reply (for example `ERR This instance has cluster support
    /// disabled`). The text is lossily decoded and truncated to 200 bytes.
    #[error("server error: {0}")]
    Server(String),
    /// A value that must be an array is something else.
    #[error("{what} is not an array")]
    NotAnArray {
        /// What was expected to be an array (`"reply"`, `"nodes"`, ...).
        what: &'static str,
    },
    /// A value that must be a map (RESP3) or a flat key/value array (RESP2) is something else.
    #[error("{what} is not a map")]
    NotAMap {
        /// What was expected to be a map (`"shard"`, `"node"`).
        what: &'static str,
    },
    /// A required field is absent.
    #[error("missing field `{field}`")]
    MissingField {
        /// The field's name as the server spells it.
        field: &'static str,
    },
    /// A field is present but has the wrong type or an unreadable value.
    #[error("field `{field}` has an invalid value")]
    BadField {
        /// The field's name as the server spells it.
        field: &'static str,
    },
    /// A slot range is out of `0..16384`, reversed, or not a pair of integers.
    #[error("invalid slot range {start}..={end}")]
    BadSlotRange {
        /// The start as received (`-1` when it was not an integer).
        start: i64,
        /// The end as received (`-1` when it was not an integer or missing).
        end: i64,
    },
    /// A port is outside `0..=65535` or not an integer.
    #[error("invalid port {port}")]
    BadPort {
        /// The port as received (`-1` when it was not an integer).
        port: i64,
    },
    /// Two shards (or two ranges of one shard) claim the same slot.
    #[error("slot {slot} is claimed twice")]
    OverlappingSlots {
        /// The first slot found claimed twice.
        slot: u16,
    },
    /// More shards than the slot map can index.
    #[error("too many shards (limit {limit})")]
    TooManyShards {
        /// The limit, [`MAX_SHARDS`](super::MAX_SHARDS).
        limit: usize,
    },
    /// `INFO` of a node asked as a standalone node says `cluster_enabled:1`: it runs in cluster
    /// mode, and one node of a cluster does not serve every slot.
    #[error("the node runs in cluster mode (cluster_enabled:1)")]
    ClusterEnabled,
    /// No slot is owned by a usable primary: the reply cannot route anything.
    #[error("the topology assigns no slot to a usable primary")]
    Empty,
}
