//! Tag invalidation and namespace-wide invalidation.

use slotcache_core::cache::CacheError;
use slotcache_core::cache::op::invalidate_tags::{InvalidateTags, Variant};
use slotcache_core::cache::op::scan::ScanAll;
use slotcache_core::cache::op::scope::distinct_tags;

use super::namespace::Cache;
use crate::observe::Op;

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// Invalidates every entry written with any of `tags`, and returns how many entries it
    /// actually removed.
    ///
    /// Each tag's token is replaced atomically on its slot, so every entry written before
    /// (which carries the old token) is a miss for every read that starts after this returns,
    /// on every client, even if deleting it below fails. Then the entries that still carry the
    /// old token are deleted (entries rewritten since are left alone) and leave the other tags
    /// they had. The count is the number of deleted entries that were still fresh: an entry that
    /// an earlier invalidation of another of its tags had already made stale (its write landed
    /// after that invalidation's deletion step) is deleted as clean-up but not counted. With
    /// [`Durability::Replicas`](super::Durability) the token change is acknowledged by a
    /// replica before this returns, so a failover cannot undo it.
    ///
    /// If deleting some entries fails (a node down, a timeout, an error reply), the entries
    /// not deleted are listed in their tags again before the call fails, so the next
    /// invalidation of the tag deletes them (retrying is enough); if that listing fails too,
    /// the error is [`CacheError::CleanupUnlisted`] and those (stale, never served) entries
    /// stay until their TTL.
    ///
    /// # Errors
    /// An invalid tag; a cluster error; [`CacheError::NotDurable`] when too few replicas
    /// acknowledged (the invalidation is in force on the primary; retrying is safe);
    /// [`CacheError::CleanupUnlisted`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// users.set(&"alice".to_string(), &"Alice".to_string(), &["team:red"]).await?;
    /// users.set(&"bob".to_string(), &"Bob".to_string(), &["team:red", "admins"]).await?;
    /// let removed = users.invalidate_by_tags(&["team:red"]).await?; // 2
    /// assert_eq!(users.get_if_present(&"bob".to_string()).await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn invalidate_by_tags(&self, tags: &[&str]) -> Result<u64, CacheError> {
        self.invalidate_tags(tags, Variant::Correct).await
    }

    /// `invalidate_by_tags` with the machine's `variant` (test-only bugs; see [`testing`]).
    async fn invalidate_tags(&self, tags: &[&str], variant: Variant) -> Result<u64, CacheError> {
        let scope = self.inner.typed.scope();
        let invalidate = |d| Ok(InvalidateTags::machine_with(scope, distinct_tags(tags), d, variant));
        self.run(Op::InvalidateByTags, invalidate, Ok).await
    }

    /// Deletes every entry of this namespace and its tag metadata: `SCAN` of the namespace's
    /// prefix (glob characters escaped) on every primary, never replicas, with `UNLINK` per
    /// page. Returns the number of keys deleted. Never `FLUSHDB` (see
    /// [`Provider::flush_all`](super::Provider::flush_all) for that).
    ///
    /// Keys written while it runs may survive; a slot migrating meanwhile may hide keys from
    /// the scan.
    ///
    /// With [`Durability::Replicas`](super::Durability) each page's unlinks are followed by a
    /// `WAIT` on the connection that ran them (on the node's blocking lane), so a failover
    /// cannot bring the deleted keys back; a node whose replicas do not acknowledge in time
    /// still has every page unlinked (without further `WAIT`s), and the call then fails with
    /// [`CacheError::NotDurable`].
    ///
    /// # Errors
    /// A node's error, or the `flush_timeout`; [`CacheError::NotDurable`] when a primary's
    /// replicas did not acknowledge its unlinks (the keys are gone from the primaries;
    /// retrying is safe).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// let deleted = users.invalidate_all().await?; // this namespace's keys only
    /// # Ok(()) }
    /// ```
    pub async fn invalidate_all(&self) -> Result<u64, CacheError> {
        let (ns, durability) = (self.inner.typed.ns(), self.inner.typed.scope().durability);
        self.run(Op::InvalidateAll, |d| Ok(ScanAll::unlink_namespace(ns, durability, d)), Ok).await
    }

    /// Approximate number of entries: a `SCAN` count of the namespace's prefix on every
    /// primary. Its cost is O(keys in the cluster) (the scan walks every key and filters by
    /// prefix); bounded by `bulk_operation_timeout`, and an error rather than a partial count
    /// when that runs out.
    ///
    /// # Errors
    /// A node's error or the timeout.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// let entries = users.estimated_size().await?;
    /// # Ok(()) }
    /// ```
    pub async fn estimated_size(&self) -> Result<u64, CacheError> {
        self.run(Op::EstimatedSize, |d| Ok(ScanAll::count(self.inner.typed.ns().scan_pattern(), d)), Ok).await
    }

    /// Bytes the namespace's entries take on the servers: the sum of `MEMORY USAGE` (the
    /// server's own figure for a key: value, key name and overhead) of every entry key of the
    /// namespace, found by a `SCAN` of its prefix on every primary. Tag and reverse-index keys
    /// are not counted (they are shared bookkeeping, not entries).
    ///
    /// Its cost is that of [`Cache::estimated_size`] (the scan walks every key of the cluster)
    /// plus one `MEMORY USAGE` per entry, pipelined with the scan's next page (so about as
    /// many round trips); bounded by `bulk_operation_timeout`, an error rather than a partial
    /// sum when that runs out. For the servers' whole memory use (every application's),
    /// `INFO memory` through [`Provider::client`](super::Provider::client); for their limit,
    /// [`Provider::maximum`](super::Provider::maximum).
    ///
    /// # Errors
    /// A node's error or the timeout.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// let bytes = users.weighted_size().await?;
    /// println!("{} entries, {bytes} bytes on the servers", users.estimated_size().await?);
    /// # Ok(()) }
    /// ```
    pub async fn weighted_size(&self) -> Result<u64, CacheError> {
        self.run(Op::WeightedSize, |d| Ok(ScanAll::weigh(self.inner.typed.ns().scan_pattern(), d)), Ok).await
    }
}

/// Test-only entry points that run a cache operation's machine with a reintroduced bug, so
/// the real-cluster tests can show that what they check would catch it. Not part of the API.
#[doc(hidden)]
pub mod testing {
    use core::future::Future;

    use slotcache_core::cache::op::invalidate_tags::Variant;
    use slotcache_core::cache::{CacheError, Compute};

    use super::Cache;
    use crate::observe::Op;

    /// `entries()` whose pages run with the machine's bug `variant` (e.g. entries not checked
    /// against their tags' tokens).
    pub fn entries_with<K, V>(
        cache: &Cache<K, V>,
        variant: slotcache_core::cache::op::iterate::Variant,
    ) -> futures_util::stream::BoxStream<'static, Result<(K, V), CacheError>>
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        let walk = slotcache_core::cache::op::walk::Walk::entries(
            cache.inner.typed.scope(),
            cache.inner.config.operation_timeout,
        )
        .with_variant(variant);
        cache.walk(Op::Entries, walk, slotcache_core::cache::Typed::page_entries)
    }

    fn text(tags: Vec<bytes::Bytes>) -> Vec<String> {
        tags.iter().map(|t| String::from_utf8_lossy(t).into_owned()).collect()
    }

    /// `compute`, also returning the tags the value it wrote kept (those of the entry its
    /// compare-and-set replaced, fresh or stale; none when it wrote nothing): the real-cluster
    /// history checker cannot know them otherwise (which entry a compute replaced depends on
    /// the races it won).
    ///
    /// # Errors
    /// As `compute`.
    pub async fn compute_reporting_tags<K, V, F>(
        cache: &Cache<K, V>,
        key: &K,
        mut f: F,
    ) -> Result<(Option<V>, Vec<String>), CacheError>
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static,
        F: FnMut(Option<&V>) -> Compute<V>,
    {
        let run = cache.compute_kept(Op::Compute, key, |cur| Some(f(cur)));
        cache.observed(Op::Compute, run).await.map(|(v, tags)| (v, text(tags)))
    }

    /// A `refresh` of `key` that runs in the calling task, outside the table of loads in
    /// flight (it neither joins another load nor is joined), returning the value and the tags
    /// it kept (the entry's when it read them, if it was fresh; none otherwise).
    ///
    /// # Errors
    /// As `refresh`.
    pub async fn refresh_reporting_tags<K, V, F, Fut>(
        cache: &Cache<K, V>,
        key: &K,
        loader: F,
    ) -> Result<(V, Vec<String>), CacheError>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = Result<V, CacheError>>,
    {
        cache.refresh_kept(key, loader).await.map(|(v, tags)| (v, text(tags)))
    }

    /// `invalidate_by_tags` with bug A6 reintroduced ([`Variant::EraseBeforeEarlyReturn`]): a
    /// delete round that fails returns at once, and the entries it did not delete are no
    /// longer listed in their tag.
    ///
    /// # Errors
    /// As `invalidate_by_tags`.
    pub async fn invalidate_by_tags_without_relisting<K, V>(
        cache: &Cache<K, V>,
        tags: &[&str],
    ) -> Result<u64, CacheError>
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        invalidate_by_tags_with(cache, tags, Variant::EraseBeforeEarlyReturn).await
    }

    /// `invalidate_by_tags` with the machine's bug `variant`.
    ///
    /// # Errors
    /// As `invalidate_by_tags`.
    pub async fn invalidate_by_tags_with<K, V>(
        cache: &Cache<K, V>,
        tags: &[&str],
        variant: Variant,
    ) -> Result<u64, CacheError>
    where
        K: Send + Sync + 'static,
        V: Send + Sync + 'static,
    {
        cache.invalidate_tags(tags, variant).await
    }
}
