//! Writes: `set`, `set_with_ttl`, `bulk_set`, `invalidate`, `set_expires_after`,
//! `set_refreshable_after`. The protocols are the core's machines (`op::write`, the tag part
//! of a tagged write included); the core's `Typed` prepares each write.

use std::time::Duration;

use slotcache_core::cache::op::expiry::ExpireEntry;
use slotcache_core::cache::op::invalidate::InvalidateKey;
use slotcache_core::cache::op::refresh_mark::MarkRefreshable;
use slotcache_core::cache::op::write::{Write, WriteEntries};
use slotcache_core::cache::ttl::lifetime_ms;
use slotcache_core::cache::{CacheError, Ttl};

use super::exec::{Deadline, wall_ms};
use super::namespace::Cache;
use super::random;
use crate::observe::Op;

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// Writes entries: first every tag membership (which hands back each tag's token), then the
    /// values with those tokens in their envelopes. Two round trips for any number of tagged
    /// entries, one when none is tagged.
    async fn write_entries(&self, writes: Vec<Write>, deadline: Deadline) -> Result<(), CacheError> {
        let machine = WriteEntries::machine(self.inner.typed.scope(), writes, deadline)?;
        self.inner.exec.drive(machine).await.map(|_| ())
    }

    fn prepare(&self, key: &K, value: &V, ttl: Option<Ttl>, tags: &[&str]) -> Result<Write, CacheError> {
        self.inner.typed.write((key, value), ttl, tags, wall_ms(), &mut random::fill)
    }

    /// Stores `value` under `key` with the namespace's TTL (its expiry function, else the
    /// provider's default) and these tags. Setting a key again **replaces** its tags.
    ///
    /// An untagged set is one round trip; a tagged one is two (the tags' tokens first).
    ///
    /// # Errors
    /// An invalid tag, an unencodable or oversized value, a cluster error.
    pub async fn set(&self, key: &K, value: &V, tags: &[&str]) -> Result<(), CacheError> {
        self.observed(Op::Set, async move {
            let w = self.prepare(key, value, None, tags)?;
            self.write_entries(vec![w], self.op_deadline("set")).await
        })
        .await
    }

    /// Like [`Cache::set`] with an explicit TTL (see [`Ttl`] for its one meaning).
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] for a zero TTL, before anything is sent; as `set` otherwise.
    pub async fn set_with_ttl(&self, key: &K, value: &V, ttl: Ttl, tags: &[&str]) -> Result<(), CacheError> {
        self.observed(Op::SetWithTtl, async move {
            let w = self.prepare(key, value, Some(ttl), tags)?;
            self.write_entries(vec![w], self.op_deadline("set_with_ttl")).await
        })
        .await
    }

    /// Stores many entries, all with these tags: the tag memberships of every entry in one
    /// pipeline, then the values in one pipeline (per node, nodes in parallel).
    ///
    /// # Errors
    /// Nothing is sent when an entry cannot be encoded; a cluster error otherwise (some
    /// entries may then be stored and others not).
    pub async fn bulk_set(&self, items: &[(K, V)], tags: &[&str]) -> Result<(), CacheError> {
        self.observed(Op::BulkSet, async move {
            if items.is_empty() {
                return Ok(());
            }
            let writes =
                items.iter().map(|(k, v)| self.prepare(k, v, None, tags)).collect::<Result<Vec<_>, _>>()?;
            let d = self.deadline("bulk_set", self.inner.config.bulk_operation_timeout);
            self.write_entries(writes, d).await
        })
        .await
    }

    /// Removes `key`, and its memberships in its tags. Returns whether it existed.
    ///
    /// With [`Durability::Replicas`](super::Durability::Replicas), returns only once a replica
    /// acknowledged the delete (a failover cannot bring the value back).
    ///
    /// # Errors
    /// A cluster error; [`CacheError::NotDurable`] when too few replicas acknowledged.
    pub async fn invalidate(&self, key: &K) -> Result<bool, CacheError> {
        self.observed(Op::Invalidate, async move {
            let fk = self.inner.typed.key(key)?;
            let _running = self.invalidating();
            let d = self.op_deadline("invalidate");
            self.inner.exec.drive(InvalidateKey::machine(self.inner.typed.scope(), fk, d)).await
        })
        .await
    }

    /// Sets the remaining lifetime of `key` (and keeps its tag memberships alive as long).
    /// Returns whether the key existed.
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] for zero; a cluster error.
    pub async fn set_expires_after(&self, key: &K, ttl: Duration) -> Result<bool, CacheError> {
        self.observed(Op::SetExpiresAfter, async move {
            let ms = lifetime_ms(ttl)?;
            let fk = self.inner.typed.key(key)?;
            let d = self.op_deadline("set_expires_after");
            self.inner.exec.drive(ExpireEntry::machine(self.inner.typed.scope(), fk, ms, d)).await
        })
        .await
    }

    /// Marks `key` for a background reload by [`Cache::get`] once `after` has passed; until the
    /// reload has stored a new value, `get` keeps serving this one. Returns whether the key
    /// existed (and did not change meanwhile).
    ///
    /// # Errors
    /// A cluster error.
    pub async fn set_refreshable_after(&self, key: &K, after: Duration) -> Result<bool, CacheError> {
        self.observed(Op::SetRefreshableAfter, async move {
            let fk = self.inner.typed.key(key)?;
            let d = self.op_deadline("set_refreshable_after");
            self.inner.exec.drive(MarkRefreshable::machine(self.inner.typed.scope(), fk, after, d)).await
        })
        .await
    }
}
