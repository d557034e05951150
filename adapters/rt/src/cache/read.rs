//! Reads: `get_if_present`, `bulk_get`, `get_entry`/`probe_entry`. The protocol (with the
//! tag-token check every read of a tagged entry makes) is the core's `ReadEntries` machine;
//! the typed side and the statistics (hits and misses, by read) are the core's `Typed`.

use std::collections::HashMap;
use std::hash::Hash;
use std::slice;

use slotcache_core::cache::op::read::{Found, ReadEntries, ReadHow};
use slotcache_core::cache::{CacheError, EntryInfo};

use super::namespace::Cache;
use crate::observe::Op;

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// Runs operation `op`: reads `keys` (fresh entries only, in order) with the read machine
    /// `how` makes (one pipelined round trip, plus one for the tokens of their tags; none for
    /// no key), and hands what it found to `then`.
    async fn read<T>(
        &self,
        op: Op,
        keys: &[K],
        how: ReadHow,
        then: impl FnOnce(Vec<Option<Found>>) -> Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        let typed = &self.inner.typed;
        self.run(op, |d| Ok(how(typed.scope(), typed.keys(keys)?, d)), |reads| then(typed.reads(reads))).await
    }

    /// The value under `key`, or `None`. A value whose tag was invalidated is a miss. With
    /// [`NamespaceOptions::expire_after_read`](super::NamespaceOptions::expire_after_read), a
    /// hit's remaining life is reset by the same command.
    ///
    /// # Errors
    /// A cluster error (never turned into a miss), an undecodable or oversized value.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// match users.get_if_present(&"alice".to_string()).await? {
    ///     Some(name) => println!("cached: {name}"),
    ///     None => println!("not cached (or invalidated by one of its tags)"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_if_present(&self, key: &K) -> Result<Option<V>, CacheError> {
        let present = |mut found: Vec<_>| self.inner.typed.present(found.pop().flatten());
        self.read(Op::GetIfPresent, slice::from_ref(key), ReadEntries::machine, present).await
    }

    /// The values of `keys` that are present: one `GET` per key, the keys of one node
    /// pipelined together, nodes in parallel (one round trip). Not `MGET`: it reads a key
    /// holding another type as missing, which would hide the error and let a loader overwrite
    /// it.
    ///
    /// # Errors
    /// A read error is an error for the whole call, not a miss (a miss would trigger loads and
    /// overwrites).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// let keys = ["alice".to_string(), "bob".to_string(), "carol".to_string()];
    /// let found = users.bulk_get(&keys).await?; // only the keys present
    /// for (key, name) in &found {
    ///     println!("{key}: {name}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn bulk_get(&self, keys: &[K]) -> Result<HashMap<K, V>, CacheError>
    where
        K: Clone + Eq + Hash,
    {
        self.read(Op::BulkGet, keys, ReadEntries::machine, |found| self.inner.typed.hits(keys, found)).await
    }

    /// The entry under `key` with its remaining TTL (milliseconds; `None` = no expiry, told
    /// apart from a missing key, which is `Ok(None)`), tags and refresh time. Counts as a read.
    ///
    /// # Errors
    /// A cluster error, an undecodable value.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// if let Some(entry) = users.get_entry(&"alice".to_string()).await? {
    ///     println!("{} (expires in {:?}, tags {:?})", entry.value, entry.ttl, entry.tags);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_entry(&self, key: &K) -> Result<Option<EntryInfo<V>>, CacheError> {
        self.entry_info(Op::GetEntry, key, true).await
    }

    /// Like [`Cache::get_entry`] but does not count as a read in the statistics, and never
    /// extends the entry (sliding expiry).
    ///
    /// # Errors
    /// A cluster error, an undecodable value.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// // Not counted as a hit or a miss, and a sliding expiry is left alone.
    /// let ttl = users.probe_entry(&"alice".to_string()).await?.and_then(|entry| entry.ttl);
    /// # Ok(()) }
    /// ```
    pub async fn probe_entry(&self, key: &K) -> Result<Option<EntryInfo<V>>, CacheError> {
        self.entry_info(Op::ProbeEntry, key, false).await
    }

    async fn entry_info(&self, op: Op, key: &K, count: bool) -> Result<Option<EntryInfo<V>>, CacheError> {
        let info = |mut found: Vec<_>| self.inner.typed.entry_info(found.pop().flatten(), count);
        self.read(op, slice::from_ref(key), ReadEntries::for_entry(count), info).await
    }
}
