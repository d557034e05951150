//! Writes: `set`, `set_with_ttl`, `bulk_set`, `invalidate`, `set_expires_after`,
//! `set_refreshable_after`. The protocols are the core's machines (`op::write`, the tag part
//! of a tagged write included); the core's `Typed` prepares each write.

use std::time::Duration;

use slotcache_core::cache::op::expiry::ExpireEntry;
use slotcache_core::cache::op::invalidate::InvalidateKey;
use slotcache_core::cache::op::refresh_mark::MarkRefreshable;
use slotcache_core::cache::op::write::WriteEntries;
use slotcache_core::cache::ttl::lifetime_ms;
use slotcache_core::cache::{CacheError, Ttl};

use super::exec::wall_ms;
use super::namespace::Cache;
use super::random;
use crate::observe::Op;

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// Writes entries, all with `ttl` (`None`: the namespace's) and `tags`: first every tag
    /// membership (which hands back each tag's token), then the values with those tokens in
    /// their envelopes. Two round trips for any number of tagged entries, one when none is
    /// tagged, none for no entry.
    async fn write<'a>(
        &self,
        op: Op,
        items: impl IntoIterator<Item = (&'a K, &'a V)>,
        ttl: Option<Ttl>,
        tags: &[&str],
    ) -> Result<(), CacheError> {
        let typed = &self.inner.typed;
        let prepare = |item| typed.write(item, ttl, tags, wall_ms(), &mut random::fill);
        let writes = |d| {
            WriteEntries::machine(typed.scope(), items.into_iter().map(prepare).collect::<Result<_, _>>()?, d)
        };
        self.run(op, writes, |_| Ok(())).await
    }

    /// Stores `value` under `key` with the namespace's TTL (its expiry function, else the
    /// provider's default) and these tags. Setting a key again **replaces** its tags.
    ///
    /// An untagged set is one round trip; a tagged one is two (the tags' tokens first).
    ///
    /// # Errors
    /// An invalid tag, an unencodable or oversized value, a cluster error.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// users.set(&"alice".to_string(), &"Alice".to_string(), &["team:red", "admins"]).await?;
    /// users.set(&"bob".to_string(), &"Bob".to_string(), &[]).await?; // untagged: one round trip
    /// # Ok(()) }
    /// ```
    pub async fn set(&self, key: &K, value: &V, tags: &[&str]) -> Result<(), CacheError> {
        self.write(Op::Set, [(key, value)], None, tags).await
    }

    /// Like [`Cache::set`] with an explicit TTL (see [`Ttl`] for its one meaning).
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] for a zero TTL, before anything is sent; as `set` otherwise.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// use std::time::Duration;
    /// use slotcache_rt::Ttl;
    ///
    /// let session = "s-42".to_string();
    /// let half_an_hour = Ttl::After(Duration::from_secs(30 * 60));
    /// users.set_with_ttl(&session, &"alice".to_string(), half_an_hour, &["sessions"]).await?;
    /// users.set_with_ttl(&"root".to_string(), &"Root".to_string(), Ttl::Never, &[]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_with_ttl(&self, key: &K, value: &V, ttl: Ttl, tags: &[&str]) -> Result<(), CacheError> {
        self.write(Op::SetWithTtl, [(key, value)], Some(ttl), tags).await
    }

    /// Stores many entries, all with these tags: the tag memberships of every entry in one
    /// pipeline, then the values in one pipeline (per node, nodes in parallel).
    ///
    /// # Errors
    /// Nothing is sent when an entry cannot be encoded; a cluster error otherwise (some
    /// entries may then be stored and others not).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// let items = vec![("alice".to_string(), "Alice".to_string()), ("bob".to_string(), "Bob".to_string())];
    /// // Two pipelines in all, whatever the number of entries.
    /// users.bulk_set(&items, &["team:red"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn bulk_set(&self, items: &[(K, V)], tags: &[&str]) -> Result<(), CacheError> {
        self.write(Op::BulkSet, items.iter().map(|(k, v)| (k, v)), None, tags).await
    }

    /// Removes `key`, and its memberships in its tags. Returns whether it existed.
    ///
    /// With [`Durability::Replicas`](super::Durability::Replicas), returns only once a replica
    /// acknowledged the delete (a failover cannot bring the value back).
    ///
    /// # Errors
    /// A cluster error; [`CacheError::NotDurable`] when too few replicas acknowledged.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// // After the database changed: the next `get` loads the new value.
    /// let existed = users.invalidate(&"alice".to_string()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn invalidate(&self, key: &K) -> Result<bool, CacheError> {
        let typed = &self.inner.typed;
        self.run(Op::Invalidate, |d| Ok(InvalidateKey::machine(typed.scope(), typed.key(key)?, d)), Ok).await
    }

    /// Sets the remaining lifetime of `key` (and keeps its tag memberships alive as long).
    /// Returns whether the key existed.
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] for zero; a cluster error.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// use std::time::Duration;
    ///
    /// let existed = users.set_expires_after(&"alice".to_string(), Duration::from_secs(60)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_expires_after(&self, key: &K, ttl: Duration) -> Result<bool, CacheError> {
        let typed = &self.inner.typed;
        let expire = |d| {
            let ms = lifetime_ms(ttl)?;
            Ok(ExpireEntry::machine(typed.scope(), typed.key(key)?, ms, d))
        };
        self.run(Op::SetExpiresAfter, expire, Ok).await
    }

    /// Marks `key` for a background reload by [`Cache::get`] once `after` has passed; until the
    /// reload has stored a new value, `get` keeps serving this one. Returns whether the key
    /// existed (and did not change meanwhile).
    ///
    /// # Errors
    /// A cluster error.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// use std::time::Duration;
    ///
    /// // From 10 s on, a `get` still answers at once, and starts a background reload.
    /// users.set_refreshable_after(&"alice".to_string(), Duration::from_secs(10)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_refreshable_after(&self, key: &K, after: Duration) -> Result<bool, CacheError> {
        let typed = &self.inner.typed;
        let mark = |d| Ok(MarkRefreshable::machine(typed.scope(), typed.key(key)?, after, d));
        self.run(Op::SetRefreshableAfter, mark, Ok).await
    }
}
