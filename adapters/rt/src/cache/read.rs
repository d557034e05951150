//! Reads: `get_if_present`, `bulk_get`, `get_entry`/`probe_entry`, and the tag-token check
//! every read of a tagged entry makes.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use slotcache_core::cache::plan::{self, Tags};
use slotcache_core::cache::{CacheError, Entry};

use super::exec::{Deadline, Step};
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
    /// Decodes stored entries and drops the ones a tag invalidation made stale, checking every
    /// distinct tag's token in one pipeline (untagged entries cost nothing more).
    pub(crate) async fn fresh_entries(
        &self,
        stored: Vec<Option<Bytes>>,
        deadline: &Deadline,
    ) -> Result<Vec<Option<Entry>>, CacheError> {
        let entries: Vec<Option<Entry>> = stored
            .into_iter()
            .map(|s| s.map(|b| self.decode_stored(&b)).transpose())
            .collect::<Result<_, _>>()?;
        let mut tags: Vec<Bytes> =
            entries.iter().flatten().flat_map(|e| e.tags.iter().map(|t| t.tag.clone())).collect();
        if tags.is_empty() {
            return Ok(entries);
        }
        tags.sort();
        tags.dedup();
        let plans = Tags::new(&self.inner.ns);
        let steps =
            tags.iter().map(|t| plans.read_token(t).map(Step::from)).collect::<Result<Vec<_>, _>>()?;
        let replies = self.inner.exec.run(steps, deadline).await?;
        let mut current = HashMap::with_capacity(tags.len());
        for (tag, r) in tags.into_iter().zip(replies) {
            current.insert(tag, plan::read_current_token(r.map_err(CacheError::Request)?)?);
        }
        Ok(entries
            .into_iter()
            .map(|e| {
                e.filter(|e| {
                    let fresh = plan::is_fresh(e, &current);
                    if !fresh {
                        Counters::bump(&self.inner.counters.stale);
                    }
                    fresh
                })
            })
            .collect())
    }

    /// Reads one entry (fresh only), counting a hit or a miss.
    pub(crate) async fn read_entry(&self, key: &K, deadline: &Deadline) -> Result<Option<Entry>, CacheError> {
        let entry = self.read_fresh(key, deadline).await?;
        Counters::bump(if entry.is_some() { &self.inner.counters.hits } else { &self.inner.counters.misses });
        Ok(entry)
    }

    /// Reads one entry (fresh only) without counting it.
    pub(crate) async fn read_fresh(&self, key: &K, deadline: &Deadline) -> Result<Option<Entry>, CacheError> {
        let fk = self.key(key)?;
        let v = self.inner.exec.one(self.read_cmd(&fk, false).into(), deadline).await; // search hook
        let stored = v.and_then(plan::read_stored).map_err(|e| self.storage_error(e))?;
        if let Some(s) = &stored {
            self.check_size(s)?;
        }
        Ok(self.fresh_entries(vec![stored], deadline).await?.pop().flatten())
    }

    /// Reads many entries (fresh only, in `keys`' order) without counting them: one pipelined
    /// round trip, plus one for the tokens of their tags.
    pub(crate) async fn read_fresh_many(
        &self,
        keys: &[K],
        deadline: &Deadline,
    ) -> Result<Vec<Option<Entry>>, CacheError> {
        // search hook: JSON.GET for documents. One pipelined read per key, not MGET (which
        // would hide a key of another type as a miss).
        let mut steps = Vec::with_capacity(keys.len());
        for k in keys {
            steps.push(Step::from(self.read_cmd(&self.key(k)?, false)));
        }
        let replies = self.inner.exec.run(steps, deadline).await?;
        let stored = replies
            .into_iter()
            .map(|r| {
                r.map_err(CacheError::Request).and_then(plan::read_stored).map_err(|e| self.storage_error(e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for s in stored.iter().flatten() {
            self.check_size(s)?;
        }
        self.fresh_entries(stored, deadline).await
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
            match e {
                Some(e) => {
                    Counters::bump(&self.inner.counters.hits);
                    out.insert(k.clone(), self.decode_value(&e)?);
                }
                None => Counters::bump(&self.inner.counters.misses),
            }
        }
        Ok(out)
    }

    async fn entry_info(&self, key: &K, count: bool) -> Result<Option<EntryInfo<V>>, CacheError> {
        let d = self.op_deadline("get_entry");
        let fk = self.key(key)?;
        let mut r =
            self.inner.exec.run(vec![self.read_cmd(&fk, false).into(), plan::pttl(&fk).into()], &d).await?;
        let pttl = plan::read_int(
            "PTTL",
            &r.pop().unwrap_or(Ok(slotcache_core::Value::Nil)).map_err(CacheError::Request)?,
        )?;
        let stored = plan::read_stored(
            r.pop().unwrap_or(Ok(slotcache_core::Value::Nil)).map_err(CacheError::Request)?,
        )?;
        let entry = self.fresh_entries(vec![stored], &d).await?.pop().flatten();
        if count {
            Counters::bump(if entry.is_some() {
                &self.inner.counters.hits
            } else {
                &self.inner.counters.misses
            });
        }
        let Some(entry) = entry else { return Ok(None) };
        Ok(Some(EntryInfo {
            value: self.decode_value(&entry)?,
            // -1: no expiry; -2 (expired in between): treat as gone soon, report zero.
            ttl: match pttl {
                -1 => None,
                ms => Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
            },
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
