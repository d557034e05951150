//! Which connection read an entry, and what the cache knows of each node.

use std::time::Instant;

/// A node's connection: the node's number in the adapter (any stable small number, such as the
/// client's `NodeId` index) and the connection's generation (a new number for every connection
/// opened to the node, increasing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Link {
    /// The node.
    pub node: u32,
    /// The connection to it.
    pub generation: u64,
}

/// What the cache knows of one node.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct NodeState {
    /// The generation of the node's open connection, if one is open.
    pub(super) open: Option<u64>,
    /// When the node last answered anything.
    pub(super) heard: Option<Instant>,
}

impl NodeState {
    /// Whether `link` is the node's open connection.
    pub(super) fn is_open(&self, link: Link) -> bool {
        self.open == Some(link.generation)
    }
}
