//! A tracked read, from the moment it is sent to its commit.

use std::time::Instant;

use bytes::Bytes;

use super::link::Link;
use crate::slot::Slot;

/// A key an entry's freshness depends on, read and tracked with it on its own node (a tag's
/// token key): a push for it removes the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dep {
    /// The tracked key.
    pub key: Bytes,
    /// Its slot.
    pub slot: Slot,
    /// The connection that read (and tracks) it.
    pub link: Link,
}

/// A tracked read about to be sent: `CLIENT CACHING YES` then the read, on `link`.
#[derive(Clone, Debug)]
pub struct Read {
    /// The key read.
    pub key: Bytes,
    /// Its slot.
    pub slot: Slot,
    /// The connection it is sent on (the slot's owner's).
    pub link: Link,
    /// The keys its freshness also depends on, each tracked on its own node.
    pub deps: Vec<Dep>,
    /// When it is sent: expiry counts from here.
    pub sent_at: Instant,
}

/// A read in flight: hand it back to [`NearCache::commit`](super::NearCache::commit) or
/// [`NearCache::abandon`](super::NearCache::abandon).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a ticket must be committed or abandoned"]
pub struct Ticket(pub(super) u64);

/// The server's `PTTL` of the key, read with the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pttl {
    /// It expires in this many milliseconds.
    Millis(u64),
    /// It has no expiry (`-1`).
    Persistent,
    /// It does not exist (`-2`): the entry caches the absence.
    Missing,
}

/// What [`NearCache::commit`](super::NearCache::commit) did with a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// Stored: served until it expires, is invalidated or loses its owner.
    Stored,
    /// Not stored: something it depends on was invalidated, flushed or written locally while
    /// it was in flight.
    Invalidated,
    /// Not stored: a connection it was read on closed, or its slot moved, while it was in flight.
    Stale,
    /// Not stored: the server's PTTL had already run out, or its value alone is over the budget.
    Unstorable,
}

/// A read in flight, as the cache keeps it.
#[derive(Debug)]
pub(super) struct Flight {
    pub(super) read: Read,
    /// Killed by an invalidation, a flush or a local write of one of its keys.
    pub(super) invalidated: bool,
    /// Killed by a lost connection or a moved slot.
    pub(super) stale: bool,
}

impl Flight {
    /// Every link the read depends on: its own, then its dependencies'.
    pub(super) fn links(&self) -> impl Iterator<Item = Link> + '_ {
        core::iter::once(self.read.link).chain(self.read.deps.iter().map(|d| d.link))
    }

    /// Every (slot, node) pair the read was routed by.
    pub(super) fn routes(&self) -> impl Iterator<Item = (Slot, u32)> + '_ {
        core::iter::once((self.read.slot, self.read.link.node))
            .chain(self.read.deps.iter().map(|d| (d.slot, d.link.node)))
    }
}
