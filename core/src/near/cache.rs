//! The near cache's state: entries, reads in flight, and what it knows of nodes and slots.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use foldhash::fast::FixedState;
use hashlink::LinkedHashMap;

use super::config::NearConfig;
use super::link::{Link, NodeState};
use super::read::{Commit, Dep, Flight, Pttl, Read, Ticket};
use crate::slot::{SLOT_COUNT, Slot};
use crate::topology::SlotRange;

/// Bytes counted per entry besides its key, its dependencies' keys and its value's weight.
const ENTRY_OVERHEAD: usize = 96;

/// Test-only variants of the classic near-cache bugs, to show that the checks catch them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Variant {
    /// As documented.
    #[default]
    Correct,
    /// A reply that arrives after an invalidation of its key is stored anyway.
    InsertAfterInvalidation,
    /// A null push (FLUSHDB, FLUSHALL, a full resync) is ignored.
    NullPushIgnored,
    /// A slot whose owner changed keeps the entries read from its old owner.
    NoFlushOnOwnerChange,
}

/// What a [`NearCache::lookup`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a, V> {
    /// A value that may be served.
    Hit(&'a V),
    /// Nothing that may be served: read from the cluster.
    Miss,
}

/// Counters since the cache was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NearStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that found nothing servable.
    pub misses: u64,
    /// Replies stored.
    pub stored: u64,
    /// Replies refused because something they depend on was invalidated while in flight.
    pub refused_invalidated: u64,
    /// Replies refused because a connection closed or a slot moved while in flight.
    pub refused_stale: u64,
    /// Entries removed by an invalidation push or a local write (directly or through a tag).
    pub invalidated: u64,
    /// Entries removed by a null push, a lost connection, a moved slot or a full flush.
    pub flushed: u64,
    /// Entries removed to keep within the byte budget.
    pub evicted: u64,
    /// Entries found expired.
    pub expired: u64,
    /// Entries found with a node outside its health lease.
    pub unhealthy: u64,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    /// Its share of the byte budget.
    bytes: usize,
    link: Link,
    slot: Slot,
    deps: Vec<Dep>,
    expires_at: Instant,
}

impl<V> Entry<V> {
    fn links(&self) -> impl Iterator<Item = Link> + '_ {
        core::iter::once(self.link).chain(self.deps.iter().map(|d| d.link))
    }

    fn routes(&self) -> impl Iterator<Item = (Slot, u32)> + '_ {
        core::iter::once((self.slot, self.link.node)).chain(self.deps.iter().map(|d| (d.slot, d.link.node)))
    }
}

/// The near cache (see the [module](super) for its rules). `V` is what a hit returns: an
/// adapter stores decoded values (an `Arc` of them), so a hit decodes nothing.
#[derive(Debug)]
pub struct NearCache<V> {
    config: NearConfig,
    variant: Variant,
    /// In least recently used order.
    entries: LinkedHashMap<Bytes, Entry<V>, FixedState>,
    bytes: usize,
    flights: HashMap<u64, Flight, FixedState>,
    next_ticket: u64,
    /// Tracked key -> the reads in flight that depend on it.
    watching: HashMap<Bytes, Vec<u64>, FixedState>,
    /// Dependency key -> the entries that depend on it.
    dependents: HashMap<Bytes, Vec<Bytes>, FixedState>,
    /// The node that owns each slot, as the topology last said.
    owners: Vec<Option<u32>>,
    nodes: Vec<NodeState>,
    stats: NearStats,
}

impl<V> NearCache<V> {
    /// An empty cache. No slot has an owner until [`route`](Self::route) gives one, and no
    /// node is open until [`connected`](Self::connected): nothing is cached before.
    #[must_use]
    pub fn new(config: NearConfig) -> Self {
        Self {
            config,
            variant: Variant::Correct,
            entries: LinkedHashMap::with_hasher(FixedState::default()),
            bytes: 0,
            flights: HashMap::default(),
            next_ticket: 0,
            watching: HashMap::default(),
            dependents: HashMap::default(),
            owners: vec![None; usize::from(SLOT_COUNT)],
            nodes: Vec::new(),
            stats: NearStats::default(),
        }
    }

    /// The same cache with a test-only bug.
    #[doc(hidden)]
    #[must_use]
    pub const fn with_variant(mut self, variant: Variant) -> Self {
        self.variant = variant;
        self
    }

    /// The counters.
    #[must_use]
    pub const fn stats(&self) -> NearStats {
        self.stats
    }

    /// Bytes held (see [`NearConfig::max_bytes`]).
    #[must_use]
    pub const fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries held (servable or not yet found otherwise).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }

    fn node_mut(&mut self, node: u32) -> &mut NodeState {
        let i = node as usize;
        if self.nodes.len() <= i {
            self.nodes.resize(i + 1, NodeState::default());
        }
        &mut self.nodes[i]
    }

    fn node(&self, node: u32) -> NodeState {
        self.nodes.get(node as usize).copied().unwrap_or_default()
    }

    fn owner(&self, slot: Slot) -> Option<u32> {
        self.owners[usize::from(slot.get())]
    }

    /// Whether a read over these links and routes may still be trusted: each link is its node's
    /// open connection and each slot still routes to the node it was read from.
    fn trusted(
        &self,
        mut links: impl Iterator<Item = Link>,
        mut routes: impl Iterator<Item = (Slot, u32)>,
    ) -> bool {
        links.all(|l| self.node(l.node).is_open(l))
            && routes.all(|(slot, node)| self.owner(slot) == Some(node))
    }

    fn healthy(&self, mut links: impl Iterator<Item = Link>, now: Instant) -> bool {
        let lease = self.config.health_lease;
        links.all(|l| self.node(l.node).heard.is_some_and(|h| now.saturating_duration_since(h) < lease))
    }

    /// The value for `key` if it may be served at `now` (rules 3, 5, 7); a hit makes the entry
    /// the most recently used. An entry found expired, unhealthy or no longer trusted is
    /// dropped.
    pub fn lookup(&mut self, key: &[u8], now: Instant) -> Lookup<'_, V> {
        let verdict = match self.entries.get(key) {
            None => None,
            Some(e) if now >= e.expires_at => Some(Drop::Expired),
            Some(e) if !self.trusted(e.links(), e.routes()) => Some(Drop::Flushed),
            Some(e) if !self.healthy(e.links(), now) => Some(Drop::Unhealthy),
            Some(_) => Some(Drop::No),
        };
        match verdict {
            Some(Drop::No) => {
                self.stats.hits += 1;
                match self.entries.to_back(key) {
                    Some(e) => Lookup::Hit(&e.value),
                    None => Lookup::Miss,
                }
            }
            None => {
                self.stats.misses += 1;
                Lookup::Miss
            }
            Some(why) => {
                self.stats.misses += 1;
                match why {
                    Drop::Expired => self.stats.expired += 1,
                    Drop::Unhealthy => self.stats.unhealthy += 1,
                    Drop::Flushed | Drop::No => self.stats.flushed += 1,
                }
                self.remove_entry(key);
                Lookup::Miss
            }
        }
    }

    /// A tracked read is about to be sent: its ticket, or `None` when it would not be trusted
    /// (a connection it uses is not the open one, or a slot does not route to the node it is
    /// sent to): read without caching then.
    pub fn begin(&mut self, read: Read) -> Option<Ticket> {
        let flight = Flight { read, invalidated: false, stale: false };
        if !self.trusted(flight.links(), flight.routes()) {
            return None;
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        for key in core::iter::once(&flight.read.key).chain(flight.read.deps.iter().map(|d| &d.key)) {
            self.watching.entry(key.clone()).or_default().push(ticket);
        }
        self.flights.insert(ticket, flight);
        Some(Ticket(ticket))
    }

    fn end_flight(&mut self, ticket: &Ticket) -> Option<Flight> {
        let flight = self.flights.remove(&ticket.0)?;
        for key in core::iter::once(&flight.read.key).chain(flight.read.deps.iter().map(|d| &d.key)) {
            if let Some(tickets) = self.watching.get_mut(key) {
                tickets.retain(|t| *t != ticket.0);
                if tickets.is_empty() {
                    self.watching.remove(key);
                }
            }
        }
        Some(flight)
    }

    /// A read failed, was redirected or was cancelled: nothing is stored (rule 9).
    pub fn abandon(&mut self, ticket: Ticket) {
        self.end_flight(&ticket);
    }

    /// The reply of a tracked read, in reply order on its connection: `value` weighs `weight`
    /// bytes; `pttl` is the server's answer read with it. Stored unless something it depends
    /// on changed while it was in flight (rule 1).
    pub fn commit(&mut self, ticket: Ticket, value: V, weight: usize, pttl: Pttl, now: Instant) -> Commit {
        let Some(flight) = self.end_flight(&ticket) else {
            return Commit::Stale;
        };
        if flight.invalidated && self.variant != Variant::InsertAfterInvalidation {
            self.stats.refused_invalidated += 1;
            return Commit::Invalidated;
        }
        if flight.stale || !self.trusted(flight.links(), flight.routes()) {
            self.stats.refused_stale += 1;
            return Commit::Stale;
        }
        let Read { key, slot, link, deps, sent_at } = flight.read;
        let ttl = match pttl {
            Pttl::Millis(ms) => self.config.max_ttl.min(Duration::from_millis(ms)),
            Pttl::Persistent | Pttl::Missing => self.config.max_ttl,
        };
        let expires_at = sent_at + ttl;
        let bytes = ENTRY_OVERHEAD
            .saturating_add(key.len())
            .saturating_add(weight)
            .saturating_add(deps.iter().map(|d| d.key.len()).sum());
        if expires_at <= now || bytes > self.config.max_bytes {
            return Commit::Unstorable;
        }
        self.remove_entry(&key);
        for dep in &deps {
            self.dependents.entry(dep.key.clone()).or_default().push(key.clone());
        }
        self.bytes += bytes;
        self.entries.insert(key, Entry { value, bytes, link, slot, deps, expires_at });
        self.stats.stored += 1;
        while self.bytes > self.config.max_bytes {
            let Some((key, _)) = self.entries.front().map(|(k, e)| (k.clone(), e.bytes)) else { break };
            self.remove_entry(&key);
            self.stats.evicted += 1;
        }
        Commit::Stored
    }

    fn remove_entry(&mut self, key: &[u8]) -> bool {
        let Some(entry) = self.entries.remove(key) else { return false };
        self.bytes -= entry.bytes;
        for dep in &entry.deps {
            if let Some(keys) = self.dependents.get_mut(&dep.key) {
                keys.retain(|k| k.as_ref() != key);
                if keys.is_empty() {
                    self.dependents.remove(&dep.key);
                }
            }
        }
        true
    }

    /// `key` changed (a push, or a local write): its entry, the entries that depend on it and
    /// the reads in flight that track it go.
    fn invalidate_key(&mut self, key: &[u8]) {
        if let Some(tickets) = self.watching.get(key) {
            for t in tickets {
                if let Some(f) = self.flights.get_mut(t) {
                    f.invalidated = true;
                }
            }
        }
        if self.remove_entry(key) {
            self.stats.invalidated += 1;
        }
        if let Some(keys) = self.dependents.remove(key) {
            for k in keys {
                if self.remove_entry(&k) {
                    self.stats.invalidated += 1;
                }
            }
        }
    }

    /// An invalidation push named these keys (rule 4: every one of them; rule 8: a tag's token
    /// key removes the entries that depend on it).
    pub fn invalidated<K: AsRef<[u8]>>(&mut self, keys: &[K]) {
        for key in keys {
            self.invalidate_key(key.as_ref());
        }
    }

    /// This process is about to write or invalidate `key` (rule 6): call it before sending.
    pub fn local_write(&mut self, key: &[u8]) {
        self.invalidate_key(key);
    }

    /// A null invalidation push arrived on `link` (FLUSHDB, FLUSHALL, a full resync): whatever
    /// was read on it goes (rule 4).
    pub fn flushed(&mut self, link: Link) {
        if self.variant == Variant::NullPushIgnored {
            return;
        }
        for f in self.flights.values_mut() {
            if f.links().any(|l| l == link) {
                f.invalidated = true;
            }
        }
        self.drop_entries(|e| e.links().any(|l| l == link));
    }

    fn drop_entries(&mut self, doomed: impl Fn(&Entry<V>) -> bool) {
        let keys: Vec<Bytes> =
            self.entries.iter().filter(|(_, e)| doomed(e)).map(|(k, _)| k.clone()).collect();
        for key in keys {
            self.remove_entry(&key);
            self.stats.flushed += 1;
        }
    }

    fn stale_flights(&mut self, doomed: impl Fn(&Flight) -> bool) {
        for f in self.flights.values_mut() {
            if doomed(f) {
                f.stale = true;
            }
        }
    }

    /// A connection to `link.node` opened (tracking on): it becomes the node's only trusted one,
    /// and whatever an older connection to the node read goes (rule 2).
    pub fn connected(&mut self, link: Link, now: Instant) {
        let node = self.node_mut(link.node);
        node.open = Some(link.generation);
        node.heard = Some(now);
        let old = |l: Link| l.node == link.node && l.generation != link.generation;
        self.stale_flights(|f| f.links().any(old));
        self.drop_entries(|e| e.links().any(old));
    }

    /// The connection `link` closed, timed out or failed: whatever it read goes (rule 2).
    pub fn disconnected(&mut self, link: Link) {
        let node = self.node_mut(link.node);
        if node.open == Some(link.generation) {
            node.open = None;
        }
        self.stale_flights(|f| f.links().any(|l| l == link));
        self.drop_entries(|e| e.links().any(|l| l == link));
    }

    /// `node` answered something at `now` (rule 7).
    pub fn heard(&mut self, node: u32, now: Instant) {
        let state = self.node_mut(node);
        if state.heard.is_none_or(|h| h < now) {
            state.heard = Some(now);
        }
    }

    /// The topology says `owner` serves `slots` (`None`: nobody). What was read from another
    /// node for those slots goes (rule 3).
    pub fn route(&mut self, slots: SlotRange, owner: Option<u32>) {
        let (start, end) = (usize::from(slots.start().get()), usize::from(slots.end().get()));
        let mut changed = false;
        for o in &mut self.owners[start..=end] {
            changed |= *o != owner;
            *o = owner;
        }
        if !changed || self.variant == Variant::NoFlushOnOwnerChange {
            return;
        }
        let moved = |slot: Slot, node: u32| slots.contains(slot) && owner != Some(node);
        self.stale_flights(|f| f.routes().any(|(s, n)| moved(s, n)));
        self.drop_entries(|e| e.routes().any(|(s, n)| moved(s, n)));
    }

    /// The slot map can no longer be trusted (a refresh that failed or was inconsistent): every
    /// entry goes, and every read in flight is refused (rule 3).
    pub fn flush_all(&mut self) {
        self.stale_flights(|_| true);
        self.drop_entries(|_| true);
    }
}

/// Why a looked-up entry is dropped.
#[derive(Clone, Copy)]
enum Drop {
    No,
    Expired,
    Unhealthy,
    Flushed,
}
