//! Reads: `get_if_present`, `bulk_get`, `get_entry`/`probe_entry`, and the tag-token check
//! every read of a tagged entry makes. The protocol is the core's `ReadEntries` and
//! `CheckFresh` machines; this file encodes keys, decodes values and keeps the statistics.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use slotcache_core::cache::op::read::{Found, ReadEntries, Reads};
use slotcache_core::cache::{CacheError, Entry};

use super::exec::Deadline;
use super::namespace::{Cache, Counters};

/// What a read found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryInfo<V> {
    /// The value.
    pub value: V,
    /// Time left before it expires; `None` when it never expires.
    pub ttl: Option<Duration>,
    /// Its tags.
    pub tags: Vec<String>,
    /// When `get` starts reloading it in the background.
    pub refreshable_at: Option<SystemTime>,
}

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    pub(crate) fn count_stale(&self, stale: u64) {
        for _ in 0..stale {
            Counters::bump(&self.inner.counters.stale);
        }
    }

    /// Reads `keys` (fresh entries only, in order), with their TTLs when `ttl`.
    async fn read(
        &self,
        keys: &[&K],
        ttl: bool,
        deadline: &Deadline,
    ) -> Result<Vec<Option<Found>>, CacheError> {
        let keys = keys.iter().map(|k| self.key(k)).collect::<Result<Vec<_>, _>>()?;
        let scope = self.inner.scope.clone();
        let machine = if ttl {
            ReadEntries::with_ttl(scope, keys, *deadline)
        } else {
            ReadEntries::machine(scope, keys, *deadline)
        };
        let Reads { found, stale } = self.inner.exec.drive(machine).await?;
        self.count_stale(stale);
        Ok(found)
    }

    fn count_read(&self, hit: bool) {
        Counters::bump(if hit { &self.inner.counters.hits } else { &self.inner.counters.misses });
    }

    /// Reads one entry (fresh only), counting a hit or a miss.
    pub(crate) async fn read_entry(&self, key: &K, deadline: &Deadline) -> Result<Option<Entry>, CacheError> {
        let entry = self.read_fresh(key, deadline).await?;
        self.count_read(entry.is_some());
        Ok(entry)
    }

    /// Reads one entry (fresh only) without counting it.
    pub(crate) async fn read_fresh(&self, key: &K, deadline: &Deadline) -> Result<Option<Entry>, CacheError> {
        Ok(self.read(&[key], false, deadline).await?.pop().flatten().map(|f| f.entry))
    }

    /// Reads many entries (fresh only, in `keys`' order) without counting them: one pipelined
    /// round trip, plus one for the tokens of their tags.
    pub(crate) async fn read_fresh_many(
        &self,
        keys: &[K],
        deadline: &Deadline,
    ) -> Result<Vec<Option<Entry>>, CacheError> {
        let keys: Vec<&K> = keys.iter().collect();
        Ok(self.read(&keys, false, deadline).await?.into_iter().map(|f| f.map(|f| f.entry)).collect())
    }

    /// The value under `key`, or `None`. A value whose tag was invalidated is a miss.
    ///
    /// # Errors
    /// A cluster error (never turned into a miss), an undecodable or oversized value.
    pub async fn get_if_present(&self, key: &K) -> Result<Option<V>, CacheError> {
        let d = self.op_deadline("get_if_present");
        match self.read_entry(key, &d).await? {
            Some(e) => self.decode_value(&e).map(Some),
            None => Ok(None),
        }
    }

    /// The values of `keys` that are present: one `GET` per key, the keys of one node
    /// pipelined together, nodes in parallel (one round trip). Not `MGET`: it reads a key
    /// holding another type as missing, which would hide the error and let a loader overwrite
    /// it.
    ///
    /// # Errors
    /// A read error is an error for the whole call, not a miss (a miss would trigger loads and
    /// overwrites).
    pub async fn bulk_get(&self, keys: &[K]) -> Result<HashMap<K, V>, CacheError>
    where
        K: Clone + Eq + Hash,
    {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let d = self.deadline("bulk_get", self.inner.settings.config.bulk_operation_timeout);
        let entries = self.read_fresh_many(keys, &d).await?;
        let mut out = HashMap::with_capacity(keys.len());
        for (k, e) in keys.iter().zip(entries) {
            self.count_read(e.is_some());
            if let Some(e) = e {
                out.insert(k.clone(), self.decode_value(&e)?);
            }
        }
        Ok(out)
    }

    async fn entry_info(&self, key: &K, count: bool) -> Result<Option<EntryInfo<V>>, CacheError> {
        let d = self.op_deadline("get_entry");
        let found = self.read(&[key], true, &d).await?.pop().flatten();
        if count {
            self.count_read(found.is_some());
        }
        let Some(Found { entry, ttl_ms }) = found else { return Ok(None) };
        Ok(Some(EntryInfo {
            value: self.decode_value(&entry)?,
            ttl: ttl_ms.map(Duration::from_millis),
            tags: entry.tags.iter().map(|t| String::from_utf8_lossy(&t.tag).into_owned()).collect(),
            refreshable_at: entry.refresh_at_ms.map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
        }))
    }

    /// The entry under `key` with its remaining TTL (milliseconds; `None` = no expiry, told
    /// apart from a missing key, which is `Ok(None)`), tags and refresh time. Counts as a read.
    ///
    /// # Errors
    /// A cluster error, an undecodable value.
    pub async fn get_entry(&self, key: &K) -> Result<Option<EntryInfo<V>>, CacheError> {
        self.entry_info(key, true).await
    }

    /// Like [`Cache::get_entry`] but does not count as a read in the statistics.
    ///
    /// # Errors
    /// A cluster error, an undecodable value.
    pub async fn probe_entry(&self, key: &K) -> Result<Option<EntryInfo<V>>, CacheError> {
        self.entry_info(key, false).await
    }
}
