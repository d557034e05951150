//! The near cache's rules: an in-process L1 in front of the cluster, kept coherent by the
//! servers' invalidation pushes (RESP3 `CLIENT TRACKING ON OPTIN`), as plain state that
//! replies, pushes, topology changes and time drive. No I/O and no locks: an adapter holds a
//! [`NearCache`] behind its own lock and feeds it what its connections see; the simulation
//! feeds it the same way, faults included.
//!
//! What it decides, rule by rule (issue 15):
//! 1. **Reply order wins.** A tracked read leaves a [`Ticket`] (a placeholder with its own
//!    number) for its key and for every key its freshness depends on ([`Dep`]: a tag's token
//!    key). An invalidation, a flush or a local write of any of them before the reply kills
//!    the ticket, and its late [`NearCache::commit`] is refused.
//! 2. **An entry belongs to its connection.** It records the [`Link`] (node, connection
//!    generation) that read it, and the links of its dependencies. A new generation
//!    ([`NearCache::connected`]) or a lost connection ([`NearCache::disconnected`]) drops the
//!    entries and tickets of the old one.
//! 3. **A hit is served only while the slot still routes to the entry's node.**
//!    [`NearCache::route`] drops what was read from a node that lost the slot (a migration, a
//!    failover: tracking state is not replicated and no push announces a failover);
//!    [`NearCache::flush_all`] drops everything (an untrusted refresh).
//! 4. **A null push flushes the connection** ([`NearCache::flushed`]: FLUSHDB, FLUSHALL, a full
//!    resync); a push with many keys removes every key ([`NearCache::invalidated`]).
//! 5. **Expiry** is the minimum of the configured max TTL and the server's PTTL, counted from
//!    when the read was sent. The max TTL always applies.
//! 6. **Read-your-writes**: [`NearCache::local_write`] removes the entry (and kills tickets)
//!    before the write is sent, not when the server's push arrives.
//! 7. **Health lease**: an entry is served only while every node it depends on was heard from
//!    within the lease ([`NearCache::heard`]).
//! 8. **Tags**: an entry read with its tags' token keys tracked depends on them; a push for a
//!    token key (an invalidation bumped it) removes every entry that depends on it.
//! 9. **Errors are never cached**: a read that failed, or was redirected, ends its ticket with
//!    [`NearCache::abandon`].
//!
//! One byte budget bounds the entries; the least recently used go first. Tickets are never
//! evicted (they hold no value).

mod cache;
mod config;
mod link;
#[cfg(test)]
mod model_tests;
mod read;
#[cfg(test)]
mod tests;

pub use cache::{Lookup, NearCache, NearStats, Variant};
pub use config::{NearConfig, NearConfigError};
pub use link::Link;
pub use read::{Commit, Dep, Pttl, Read, Ticket};
