//! [`MemoryServer`]: one in-process node ([`slotcache_memory::Node`]) behind a lock, with the
//! clock its commands run on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use slotcache_core::{NodeAddr, Value};
use slotcache_memory::{Node, Session};

/// One in-process Valkey node that in-memory providers connect to
/// ([`Provider::in_memory`](crate::Provider::in_memory) makes one per provider;
/// [`Provider::connect_memory`](crate::Provider::connect_memory) shares one between providers,
/// as two services share a cluster).
///
/// It runs what the cluster client sends to a standalone Valkey node, through the same RESP
/// ([`slotcache_memory`]): strings, sorted sets, JSON documents and search indexes, expiry,
/// `maxmemory` with its policies, and the cache's scripts. It has no replicas, persistence or
/// password. Its clock is the runtime's ([`Runtime::now`](crate::Runtime::now), so a paused
/// test clock moves its TTLs), never going backwards.
#[derive(Clone)]
pub struct MemoryServer {
    shared: Arc<Shared>,
}

struct Shared {
    addr: NodeAddr,
    state: Mutex<State>,
}

/// The node and its clock.
pub(super) struct State {
    pub(super) node: Node,
    /// The first instant a command ran at and the wall clock then (µs since the Unix epoch).
    base: Option<(Instant, u64)>,
    /// The last time a command ran at: the clock never goes back.
    last_us: u64,
}

impl State {
    /// The node's time for a command run at `now` (a runtime's instant).
    pub(super) fn now_us(&mut self, now: Instant) -> u64 {
        let (base, base_us) = *self.base.get_or_insert_with(|| (now, wall_us()));
        let us = base_us.saturating_add(
            u64::try_from(now.saturating_duration_since(base).as_micros()).unwrap_or(u64::MAX),
        );
        self.last_us = self.last_us.max(us);
        self.last_us
    }
}

fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl core::fmt::Debug for MemoryServer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemoryServer").field("addr", &self.shared.addr).finish_non_exhaustive()
    }
}

impl Default for MemoryServer {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryServer {
    /// A new, empty node, with the JSON and search modules and no `maxmemory`.
    #[must_use]
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let addr = NodeAddr::new(format!("slotcache-memory-{}", NEXT.fetch_add(1, Ordering::Relaxed)), 6379);
        let state = State { node: Node::new(addr.clone()), base: None, last_us: 0 };
        Self { shared: Arc::new(Shared { addr, state: Mutex::new(state) }) }
    }

    /// The address the node answers at (only through an in-memory provider's runtime: it is
    /// not a network address).
    #[must_use]
    pub fn addr(&self) -> &NodeAddr {
        &self.shared.addr
    }

    /// Runs one command directly on the node (RESP2 replies), at the time of the last command
    /// it ran, or later: for a test's raw look at what the cache stored (`TYPE`, `PTTL`,
    /// `ZRANGE` of a tag key...), as `redis-cli` would.
    pub fn command(&self, args: &[&[u8]]) -> Value {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let mut state = self.lock();
        let now = state.now_us(Instant::now());
        state.node.execute(now, &args, &mut Session { resp3: false })
    }

    /// Turns the node's JSON and search modules on or off (off: `JSON.*` and `FT.*` are
    /// unknown commands, as on a server without them; searchable namespaces then fail as they
    /// do there).
    pub fn set_modules(&self, on: bool) {
        self.lock().node.set_modules(on);
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held left a whole command run or none: the node is usable.
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
