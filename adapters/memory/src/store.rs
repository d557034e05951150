//! One node's typed keyspace: strings, sorted sets and JSON documents, each key with an optional expiry in the
//! node's milliseconds, an approximate memory count, an access clock for LRU eviction, and the
//! record of which keys changed (the replication stream is built from it).
//!
//! Expired keys are absent to every accessor here ([`Store::get`], [`Store::get_mut`]); they
//! are physically removed by [`Store::expire_if_needed`] (a primary's lazy expiry) and
//! [`Store::sweep`] (the active expiry cycle), both of which record a deletion to replicate.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::index_def::IndexDef;

/// A document as RedisJSON prints it (compact).
#[cfg(feature = "search")]
#[must_use]
pub fn json_text(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A value of one of the simulated types.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// A string.
    Str(Bytes),
    /// A sorted set: member → score (never NaN).
    ZSet(BTreeMap<Bytes, f64>),
    /// A JSON document (RedisJSON's `ReJSON-RL` type). Objects keep their members in key
    /// order (the workspace's `serde_json` has no `preserve_order`), unlike RedisJSON, which
    /// keeps insertion order: replies are still deterministic. Feature `search`.
    #[cfg(feature = "search")]
    Json(serde_json::Value),
}

impl Val {
    /// The name `TYPE` gives this value.
    #[must_use]
    pub const fn type_name(&self) -> &'static str {
        match self {
            Self::Str(_) => "string",
            Self::ZSet(_) => "zset",
            #[cfg(feature = "search")]
            Self::Json(_) => "ReJSON-RL",
        }
    }

    fn size(&self) -> usize {
        match self {
            Self::Str(b) => 16 + b.len(),
            Self::ZSet(m) => 64 + m.keys().map(|k| k.len() + 40).sum::<usize>(),
            #[cfg(feature = "search")]
            Self::Json(v) => 64 + json_text(v).len(),
        }
    }
}

/// One change to a store, as the replication stream carries it: a key's whole new state, or
/// its removal.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The key now holds this value with this expiry (ms).
    Put(Bytes, Val, Option<u64>),
    /// The key is gone.
    Del(Bytes),
    /// Every key is gone (`FLUSHDB`).
    Flush,
    /// A search index was created (`Some`) or dropped (`None`): `FT.CREATE` and
    /// `FT.DROPINDEX` are replicated like RediSearch propagates them.
    Index(Bytes, Option<IndexDef>),
}

impl Effect {
    /// Bytes this effect adds to the replication offset (roughly its RESP size).
    #[must_use]
    pub fn size(&self) -> u64 {
        let n = match self {
            Self::Put(k, Val::Str(v), _) => 40 + k.len() + v.len(),
            Self::Put(k, Val::ZSet(m), _) => 40 + k.len() + m.keys().map(|m| m.len() + 24).sum::<usize>(),
            #[cfg(feature = "search")]
            Self::Put(k, Val::Json(v), _) => 40 + k.len() + json_text(v).len(),
            Self::Index(k, _) => 60 + k.len(),
            Self::Del(k) => 20 + k.len(),
            Self::Flush => 20,
        };
        n as u64
    }
}

/// One key's value and metadata.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The value.
    pub val: Val,
    /// When it expires, in the node's milliseconds (Unix epoch of the simulated clock).
    pub expires_at: Option<u64>,
    /// Last access, on the store's access clock (for LRU eviction; never replicated).
    pub access: u64,
}

impl Entry {
    /// A value without expiry.
    #[must_use]
    pub const fn new(val: Val) -> Self {
        Self { val, expires_at: None, access: 0 }
    }

    /// Whether the entry has expired at `now_ms`.
    #[must_use]
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at.is_some_and(|t| t <= now_ms)
    }

    fn size(&self, key: &[u8]) -> usize {
        48 + key.len() + self.val.size() + if self.expires_at.is_some() { 8 } else { 0 }
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.val == other.val && self.expires_at == other.expires_at
    }
}

/// A node's keyspace.
#[derive(Debug, Clone, Default)]
pub struct Store {
    map: BTreeMap<Bytes, Entry>,
    used: usize,
    tick: u64,
    dirty: BTreeSet<Bytes>,
    flushed: bool,
    /// Search indexes by name (not keys: `FT.CREATE` definitions, replicated and flushed
    /// with the keyspace, as RediSearch keeps them in the RDB and drops them on a flush).
    indexes: BTreeMap<Bytes, IndexDef>,
    index_dirty: BTreeSet<Bytes>,
}

impl Store {
    /// An empty keyspace.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys, expired ones not yet removed included (as `DBSIZE` counts them).
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no keys at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `key` is physically present (expired or not).
    #[must_use]
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    /// The keys physically present, in byte order.
    pub fn keys(&self) -> impl Iterator<Item = &Bytes> {
        self.map.keys()
    }

    /// Number of keys with an expiry.
    #[must_use]
    pub fn volatile_count(&self) -> usize {
        self.map.values().filter(|e| e.expires_at.is_some()).count()
    }

    /// Approximate bytes used by keys and values (what `maxmemory` is compared with).
    #[must_use]
    pub const fn used_memory(&self) -> usize {
        self.used
    }

    /// A string value, if live (no access recorded: for tests and the model's own checks).
    #[must_use]
    pub fn get_str(&self, key: &[u8], now_ms: u64) -> Option<&Bytes> {
        match self.peek(key, now_ms) {
            Some(Entry { val: Val::Str(b), .. }) => Some(b),
            _ => None,
        }
    }

    /// The live entry at `key` without touching its access time.
    #[must_use]
    pub fn peek(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.map.get(key).filter(|e| !e.expired(now_ms))
    }

    /// The live entry at `key`, recording an access.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.map.get_mut(key).filter(|e| !e.expired(now_ms))?;
        e.access = tick;
        Some(e)
    }

    /// Changes the live entry at `key` in place (recorded as a write). A sorted set left empty
    /// is deleted, as Valkey does. `None` when the key is absent or expired.
    pub fn get_mut<R>(&mut self, key: &[u8], now_ms: u64, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.map.get_mut(key).filter(|e| !e.expired(now_ms))?;
        let before = e.size(key);
        let r = f(e);
        e.access = tick;
        let after = e.size(key);
        let empty = matches!(&e.val, Val::ZSet(m) if m.is_empty());
        self.used = self.used - before + after;
        if empty {
            self.remove_raw(key);
        }
        self.dirty.insert(Bytes::copy_from_slice(key));
        Some(r)
    }

    /// Stores an entry (replacing whatever was there), recorded as a write.
    pub fn insert(&mut self, key: Bytes, entry: Entry) {
        self.dirty.insert(key.clone());
        self.put_raw(key, entry);
    }

    /// Removes a key (expired or not), recorded as a write. Returns the entry if it was live.
    pub fn remove(&mut self, key: &[u8], now_ms: u64) -> Option<Entry> {
        let e = self.remove_raw(key)?;
        self.dirty.insert(Bytes::copy_from_slice(key));
        (!e.expired(now_ms)).then_some(e)
    }

    /// Deletes every key (and search index), recorded as a flush.
    pub fn flush(&mut self) {
        self.map.clear();
        self.used = 0;
        self.dirty.clear();
        self.indexes.clear();
        self.index_dirty.clear();
        self.flushed = true;
    }

    /// The search index called `name`.
    #[must_use]
    pub fn index(&self, name: &[u8]) -> Option<&IndexDef> {
        self.indexes.get(name)
    }

    /// Whether a search index called `name` exists.
    #[must_use]
    pub fn has_index(&self, name: &[u8]) -> bool {
        self.indexes.contains_key(name)
    }

    /// Creates (or with `None` drops) a search index, recorded as a change to replicate.
    pub fn set_index(&mut self, name: Bytes, def: Option<IndexDef>) {
        match def {
            Some(d) => self.indexes.insert(name.clone(), d),
            None => self.indexes.remove(&name),
        };
        self.index_dirty.insert(name);
    }

    /// The search indexes' names, in byte order.
    pub fn index_names(&self) -> impl Iterator<Item = &Bytes> {
        self.indexes.keys()
    }

    /// A primary's lazy expiry: removes `key` if it has expired (the deletion is replicated).
    pub fn expire_if_needed(&mut self, key: &[u8], now_ms: u64) -> bool {
        if self.map.get(key).is_some_and(|e| e.expired(now_ms)) {
            self.remove_raw(key);
            self.dirty.insert(Bytes::copy_from_slice(key));
            return true;
        }
        false
    }

    /// The active expiry cycle: removes every expired key; returns how many.
    pub fn sweep(&mut self, now_ms: u64) -> usize {
        let gone: Vec<Bytes> =
            self.map.iter().filter(|(_, e)| e.expired(now_ms)).map(|(k, _)| k.clone()).collect();
        for k in &gone {
            self.expire_if_needed(k, now_ms);
        }
        gone.len()
    }

    /// The changes recorded since the last call, as replication effects (a flush first).
    pub fn take_effects(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        if std::mem::take(&mut self.flushed) {
            out.push(Effect::Flush);
        }
        for k in std::mem::take(&mut self.dirty) {
            match self.map.get(&k) {
                Some(e) => out.push(Effect::Put(k, e.val.clone(), e.expires_at)),
                None => out.push(Effect::Del(k)),
            }
        }
        for name in std::mem::take(&mut self.index_dirty) {
            let def = self.indexes.get(&name).cloned();
            out.push(Effect::Index(name, def));
        }
        out
    }

    /// Drops the record of changes (a replica's applied writes are not its own to replicate).
    pub fn clear_effects(&mut self) {
        self.dirty.clear();
        self.index_dirty.clear();
        self.flushed = false;
    }

    /// Applies one replicated effect (not recorded as a change of this store).
    pub fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::Flush => {
                self.map.clear();
                self.indexes.clear();
                self.used = 0;
            }
            Effect::Index(name, def) => match def {
                Some(d) => {
                    self.indexes.insert(name.clone(), d.clone());
                }
                None => {
                    self.indexes.remove(name);
                }
            },
            Effect::Put(k, v, exp) => {
                self.put_raw(k.clone(), Entry { val: v.clone(), expires_at: *exp, access: 0 });
            }
            Effect::Del(k) => {
                self.remove_raw(k);
            }
        }
    }

    /// Replaces the whole keyspace with a copy of `other` (a full resynchronisation).
    pub fn replace_with(&mut self, other: &Self) {
        self.map = other.map.clone();
        self.indexes = other.indexes.clone();
        self.index_dirty.clear();
        self.used = other.used;
        self.dirty.clear();
        self.flushed = false;
    }

    /// What `MEMORY USAGE` reports for `key`: its approximate bytes (key, value and
    /// metadata), if live.
    #[must_use]
    pub fn usage(&self, key: &[u8], now_ms: u64) -> Option<usize> {
        self.peek(key, now_ms).map(|e| e.size(key))
    }

    /// Raw iteration over entries (for eviction sampling and `INFO`).
    pub fn entries(&self) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.map.iter()
    }

    /// One `SCAN` step: starting at `cursor`, visits about `count` keys in the order of a
    /// fixed hash of each key (so keys present for the whole iteration are returned once
    /// whatever else is added or removed meanwhile), and returns the next cursor (0 at the end)
    /// with the live keys visited.
    #[must_use]
    pub fn scan(&self, cursor: u64, count: usize, now_ms: u64) -> (u64, Vec<Bytes>) {
        let mut all: Vec<(u64, &Bytes, &Entry)> =
            self.map.iter().map(|(k, e)| (scan_hash(k), k, e)).filter(|(h, _, _)| *h >= cursor).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        let mut out = Vec::new();
        let mut i = 0;
        while i < all.len() {
            // Never stop inside a group of keys with the same hash.
            let h = all[i].0;
            if i >= count.max(1) && all[i - 1].0 != h {
                return (h, out);
            }
            if !all[i].2.expired(now_ms) {
                out.push(all[i].1.clone());
            }
            i += 1;
        }
        (0, out)
    }

    fn put_raw(&mut self, key: Bytes, mut entry: Entry) {
        self.tick += 1;
        entry.access = self.tick;
        self.used += entry.size(&key);
        if let Some(old) = self.map.insert(key.clone(), entry) {
            self.used -= old.size(&key);
        }
    }

    fn remove_raw(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.map.remove(key)?;
        self.used -= e.size(key);
        Some(e)
    }
}

/// The `SCAN` order of a key: FNV-1a, kept in `1..2^63` so cursor 0 means "start" and "done".
fn scan_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 1) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Entry {
        Entry::new(Val::Str(Bytes::copy_from_slice(v.as_bytes())))
    }

    #[test]
    fn expired_keys_are_absent_and_memory_is_counted() {
        let mut st = Store::new();
        st.insert(Bytes::from("a"), Entry { expires_at: Some(100), ..s("x") });
        st.insert(Bytes::from("b"), s("y"));
        assert!(st.used_memory() > 0);
        assert!(st.peek(b"a", 99).is_some());
        assert!(st.peek(b"a", 100).is_none());
        assert_eq!(st.len(), 2, "still present until removed");
        assert_eq!(st.sweep(100), 1);
        st.remove(b"b", 100);
        assert_eq!(st.used_memory(), 0);
        let fx = st.take_effects();
        assert_eq!(fx, vec![Effect::Del(Bytes::from("a")), Effect::Del(Bytes::from("b"))]);
    }

    #[test]
    fn scan_walks_every_key_once_despite_changes() {
        let mut st = Store::new();
        for i in 0..100 {
            st.insert(Bytes::from(format!("k{i}")), s("v"));
        }
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        let mut rounds = 0;
        loop {
            let (next, keys) = st.scan(cursor, 7, 0);
            seen.extend(keys);
            // Churn: add and remove other keys between steps.
            st.insert(Bytes::from(format!("new{rounds}")), s("v"));
            st.remove(format!("new{}", rounds / 2).as_bytes(), 0);
            rounds += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for i in 0..100 {
            assert!(seen.contains(format!("k{i}").as_bytes()), "k{i} returned");
        }
        assert!(rounds >= 14, "COUNT bounds each step: {rounds}");
    }
}
