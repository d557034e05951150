//! Reads: `get_if_present`, `bulk_get`, `get_entry`/`probe_entry`. The protocol (with the
//! tag-token check every read of a tagged entry makes) is the core's `ReadEntries` machine;
//! the typed side and the statistics are the core's `Typed`.

use std::collections::HashMap;
use std::hash::Hash;
use std::slice;

use slotcache_core::cache::op::read::{Found, ReadEntries, ReadHow};
use slotcache_core::cache::{CacheError, EntryInfo};

use super::exec::Deadline;
use super::namespace::Cache;
use crate::observe::Op;

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// Reads `keys` (fresh entries only, in order) with the read machine `how` makes: one
    /// pipelined round trip, plus one for the tokens of their tags.
    async fn read(&self, keys: &[K], how: ReadHow, d: Deadline) -> Result<Vec<Option<Found>>, CacheError> {
        let (scope, keys) = (self.inner.typed.scope(), self.inner.typed.keys(keys)?);
        Ok(self.inner.typed.reads(self.inner.exec.drive(how(scope, keys, d)).await?))
    }

    /// Counts what reads of `op` found as hits and misses (for the metrics; the namespace's
    /// own counters are the core's).
    fn count_reads(&self, op: Op, found: &[Option<Found>]) {
        let hits = found.iter().filter(|f| f.is_some()).count() as u64;
        self.inner.obs.reads(op, hits, found.len() as u64 - hits);
    }

    /// The value under `key`, or `None`. A value whose tag was invalidated is a miss. With
    /// [`NamespaceOptions::expire_after_read`](super::NamespaceOptions::expire_after_read), a
    /// hit's remaining life is reset by the same command.
    ///
    /// # Errors
    /// A cluster error (never turned into a miss), an undecodable or oversized value.
    pub async fn get_if_present(&self, key: &K) -> Result<Option<V>, CacheError> {
        self.observed(Op::GetIfPresent, async move {
            let d = self.op_deadline("get_if_present");
            let found = self.read(slice::from_ref(key), ReadEntries::machine, d).await?.pop().flatten();
            self.count_reads(Op::GetIfPresent, slice::from_ref(&found));
            self.inner.typed.present(found)
        })
        .await
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
        self.observed(Op::BulkGet, async move {
            if keys.is_empty() {
                return Ok(HashMap::new());
            }
            let d = self.deadline("bulk_get", self.inner.config.bulk_operation_timeout);
            let found = self.read(keys, ReadEntries::machine, d).await?;
            self.count_reads(Op::BulkGet, &found);
            self.inner.typed.hits(keys, found)
        })
        .await
    }

    async fn entry_info(&self, key: &K, count: bool) -> Result<Option<EntryInfo<V>>, CacheError> {
        let (how, d) = (ReadEntries::for_entry(count), self.op_deadline("get_entry"));
        let found = self.read(slice::from_ref(key), how, d).await?.pop().flatten();
        if count {
            self.count_reads(Op::GetEntry, slice::from_ref(&found));
        }
        self.inner.typed.entry_info(found, count)
    }

    /// The entry under `key` with its remaining TTL (milliseconds; `None` = no expiry, told
    /// apart from a missing key, which is `Ok(None)`), tags and refresh time. Counts as a read.
    ///
    /// # Errors
    /// A cluster error, an undecodable value.
    pub async fn get_entry(&self, key: &K) -> Result<Option<EntryInfo<V>>, CacheError> {
        self.observed(Op::GetEntry, async move { self.entry_info(key, true).await }).await
    }

    /// Like [`Cache::get_entry`] but does not count as a read in the statistics, and never
    /// extends the entry (sliding expiry).
    ///
    /// # Errors
    /// A cluster error, an undecodable value.
    pub async fn probe_entry(&self, key: &K) -> Result<Option<EntryInfo<V>>, CacheError> {
        self.observed(Op::ProbeEntry, async move { self.entry_info(key, false).await }).await
    }
}
