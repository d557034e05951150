//! Loaders: `get` with single-flight stampede protection (and an optional lock in the key's
//! slot across processes), background `refresh`, `bulk_refresh` and `bulk_get_with`.
//!
//! Every protocol (the lock and its polling, the checks before loading, the tags a reload
//! keeps, the store) is a core machine (`op::lookup`, and `op::load`, `op::bulk_refresh`,
//! `op::bulk_load` as the typed machines of `typed_loads`, which encode, decode and count);
//! which caller leads a load is decided by the core's `op::flights`. This file calls the
//! loaders (timing them), spawns the loads and shares them between callers.
//!
//! A load runs in its own task: callers that give up (their future is dropped) do not cancel
//! it, and every concurrent caller of the same key in this process awaits the same load. A
//! loader that panics releases its waiters with [`CacheError::LoaderAborted`].

use core::future::Future;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::FutureExt;
use slotcache_core::cache::CacheError;
use slotcache_core::cache::op::Machine;
use slotcache_core::cache::op::flights::{Barrier, Role};
use slotcache_core::cache::op::load::{LoadKind, aborted};
use slotcache_core::cache::op::lookup::LookUp;
use slotcache_core::cache::typed_loads::{
    TypedBulkLoad, TypedBulkRefresh, TypedLoad, TypedLoadReportingTags,
};

use super::namespace::{Cache, Flight, OnDrop};
use crate::observe::Op;
use tracing::Instrument as _;

impl<K: Clone + Send + Sync + 'static, V: Clone + Send + Sync + 'static> Cache<K, V> {
    /// The value under `key`; on a miss, `loader(key)` produces it, it is stored (no tags), and
    /// returned. Concurrent callers for one key share one load; the load goes on if they give
    /// up. A call never shares a load that started before an invalidation of this namespace
    /// (through this provider) that returned before the call started: it starts a new one (an
    /// invalidation by another process is not known here; see `docs/consistency.md`). With
    /// `cluster_lock`, processes coordinate through a lock in the key's slot.
    ///
    /// A read error does not fail the call: the loader runs (the cache must not make the
    /// application less available), and a failure to store what it loaded is counted in
    /// [`CacheStats::store_failures`](super::CacheStats) and logged, the value still returned.
    /// An entry past its refresh time is returned at once while a background load replaces it
    /// (keeping its tags, as [`Cache::refresh`] does).
    ///
    /// # Errors
    /// The loader's error ([`CacheError::NotFound`] is not cached; the loader's own error
    /// comes back as it was, see [`CacheError::loader`]), or [`CacheError::LoaderAborted`]
    /// when it panicked.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// use slotcache_rt::CacheError;
    ///
    /// // Stands for a database query.
    /// async fn load_user(id: String) -> Result<String, CacheError> {
    ///     if id == "alice" { Ok("Alice".to_string()) } else { Err(CacheError::NotFound) }
    /// }
    ///
    /// // On a miss, one call of the loader, shared by every concurrent caller of the key; stored.
    /// let name = users.get(&"alice".to_string(), load_user).await?;
    /// // The loader's `NotFound` is not cached: the next call asks again.
    /// assert!(matches!(users.get(&"nobody".to_string(), load_user).await, Err(CacheError::NotFound)));
    /// # Ok(()) }
    /// ```
    pub async fn get<F, Fut>(&self, key: &K, loader: F) -> Result<V, CacheError>
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, CacheError>> + Send + 'static,
    {
        self.observed(Op::Get, async move {
            // Taken first: no load older than an invalidation that returned before this call is
            // joined (see the core's `op::flights`).
            let (barrier, typed) = (self.flights().barrier(), &self.inner.typed);
            let lookup = LookUp::new(typed.scope(), typed.key(key)?, self.deadline_for(Op::Get));
            if let Some((value, reload)) = typed.looked_up(self.inner.exec.drive(lookup).await)? {
                if reload {
                    drop(self.load_shared(key.clone(), loader, LoadKind::Refresh, barrier));
                }
                return Ok(value);
            }
            self.load_shared(key.clone(), loader, LoadKind::Miss, barrier).await
        })
        .await
    }

    /// Starts (or joins) the load of `key`; `barrier` is what the caller took when it started.
    fn load_shared<F, Fut>(&self, key: K, loader: F, kind: LoadKind, barrier: Barrier) -> Flight<V>
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, CacheError>> + Send + 'static,
    {
        let fk = match self.inner.typed.key(&key) {
            Ok(fk) => fk,
            Err(e) => return futures_util::future::ready(Err(e)).boxed().shared(),
        };
        let (tx, rx) = oneshot::channel();
        let (role, shared) = self.flights().join_or_lead(fk.bytes(), barrier, || {
            rx.map(|r| r.unwrap_or_else(|_| Err(aborted("loader")))).boxed().shared()
        });
        let Role::Lead(ticket) = role else { return shared };
        // Ends the led load in the in-flight table once it is over (or has panicked).
        let (this, cache, flight) = (self.clone(), self.clone(), fk.bytes().clone());
        let guard = OnDrop(Some(move || cache.flights().finish(&flight, ticket)));
        let op = if kind == LoadKind::Miss { Op::Get } else { Op::Refresh };
        let task = async move {
            let machine = TypedLoad::new(&this.inner.typed, key, fk, kind, op.timeout(&this.inner.config));
            let result = this.drive_loader(machine, loader, Some(op)).await;
            drop(guard);
            let _ = tx.send(result);
        };
        self.inner.exec.rt.spawn(Box::pin(task.instrument(self.inner.obs.load_span(op))));
        shared
    }

    /// Runs a load machine, answering its call (it makes one at most) with `loader`: timed
    /// and counted as a load of `op`, if any.
    async fn drive_loader<M, T, F, Fut>(
        &self,
        machine: M,
        loader: F,
        op: Option<Op>,
    ) -> Result<M::Output, CacheError>
    where
        M: Machine<Answer = Result<T, CacheError>>,
        F: FnOnce(M::Call) -> Fut,
        Fut: Future<Output = Result<T, CacheError>>,
    {
        let mut loader = Some(loader);
        let call = |arg| {
            let loader = loader.take();
            async move {
                let load = loader.ok_or_else(|| aborted("loader"))?(arg);
                let Some(op) = op else { return load.await };
                let started = Instant::now();
                let loaded = load.await;
                self.inner.typed.counters().load(started.elapsed(), loaded.is_ok());
                self.inner.obs.load(op, started, loaded.is_ok());
                loaded
            }
        };
        self.inner.exec.drive_with(machine, call).await
    }

    /// Reloads `key` in the background; the old value keeps being served until the new one is
    /// stored, with the tags the old one had (a key that is absent or stale is stored
    /// untagged). If reading those tags fails, nothing is loaded and the future resolves to
    /// that error. The returned future resolves to the loaded value (dropping it does not
    /// cancel the reload).
    ///
    /// The value is stored under its **lease**: the tags' tokens as they were when the old
    /// entry was read, before the loader was called. If one of those tags is invalidated while
    /// the loader runs, the value is not stored (or, if the invalidation lands during the
    /// store, it is stored stale): a value loaded before an invalidation never outlives it.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// // The old value is served meanwhile; this awaits the new one (dropping it does not cancel).
    /// let alice = "alice".to_string();
    /// let fresh = users.refresh(&alice, |id| async move { Ok(format!("{id}, reloaded")) }).await?;
    /// # Ok(()) }
    /// ```
    pub fn refresh<F, Fut>(
        &self,
        key: &K,
        loader: F,
    ) -> impl Future<Output = Result<V, CacheError>> + Send + 'static
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, CacheError>> + Send + 'static,
    {
        // Taken in its own statement: `load_shared` locks the table of loads in flight too.
        let (this, barrier) = (self.clone(), self.flights().barrier());
        let flight = self.load_shared(key.clone(), loader, LoadKind::Refresh, barrier);
        async move { this.observed(Op::Refresh, flight).await }
    }

    /// A reload of `key` run at once in this task, outside the table of loads in flight (it
    /// neither joins nor is joined), ending with the value and the tags it kept. Test-only
    /// (see [`super::testing::refresh_reporting_tags`]).
    pub(super) async fn refresh_kept<F, Fut>(&self, key: &K, loader: F) -> Result<(V, Vec<Bytes>), CacheError>
    where
        F: FnOnce(K) -> Fut,
        Fut: Future<Output = Result<V, CacheError>>,
    {
        self.observed(Op::Refresh, async move {
            let fk = self.inner.typed.key(key)?;
            let budget = Op::Refresh.timeout(&self.inner.config);
            let machine =
                TypedLoadReportingTags::new(&self.inner.typed, key.clone(), fk, LoadKind::Refresh, budget);
            self.drive_loader(machine, loader, Some(Op::Refresh)).await
        })
        .await
    }

    /// Reloads `keys` in the background with one call of `loader`, and stores every value it
    /// returns in one write, each with the tags its entry had, under its lease as
    /// [`Cache::refresh`] does (keys that were absent, and values the loader returns for keys
    /// it was not asked for, are stored untagged); the returned future resolves to how many
    /// values were stored (a value whose tag was invalidated while the loader ran is not).
    ///
    /// The current entries are read first: if that read fails, nothing is loaded.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// let keys = vec!["alice".to_string(), "bob".to_string()];
    /// // One call of the loader for all of them (one database query), one write.
    /// let stored = users
    ///     .bulk_refresh(keys, |keys| async move {
    ///         Ok(keys.into_iter().map(|k| { let v = k.to_uppercase(); (k, v) }).collect())
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn bulk_refresh<F, Fut>(
        &self,
        keys: Vec<K>,
        loader: F,
    ) -> impl Future<Output = Result<usize, CacheError>> + Send + 'static
    where
        F: FnOnce(Vec<K>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<(K, V)>, CacheError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let this = self.clone();
        self.inner.exec.rt.spawn(Box::pin(async move {
            let reload = async {
                let budget = Op::BulkRefresh.timeout(&this.inner.config);
                this.drive_loader(TypedBulkRefresh::new(&this.inner.typed, keys, budget)?, loader, None).await
            };
            let _ = tx.send(reload.await);
        }));
        let this = self.clone();
        let done = rx.map(|r| r.unwrap_or_else(|_| Err(aborted("bulk loader"))));
        async move { this.observed(Op::BulkRefresh, done).await }
    }

    /// [`Cache::bulk_get`], with the misses produced by one call of `loader` and stored
    /// (default TTL, no tags) in one pipeline. Values the loader returns for keys it was not
    /// asked for are stored and returned too.
    ///
    /// # Errors
    /// A read error (not treated as misses), the loader's error. A failure to store what was
    /// loaded is counted and logged; the values are still returned.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # type Users = slotcache_rt::Cache<String, String>;
    /// # async fn example(users: Users) -> Result<(), slotcache_rt::CacheError> {
    /// let keys = ["alice".to_string(), "bob".to_string()];
    /// // The loader gets the misses only, in one call.
    /// let found = users
    ///     .bulk_get_with(&keys, |missing| async move {
    ///         Ok(missing.into_iter().map(|k| { let v = k.to_uppercase(); (k, v) }).collect())
    ///     })
    ///     .await?;
    /// assert_eq!(found.len(), 2);
    /// # Ok(()) }
    /// ```
    pub async fn bulk_get_with<F, Fut>(&self, keys: &[K], loader: F) -> Result<HashMap<K, V>, CacheError>
    where
        K: Eq + Hash,
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<(K, V)>, CacheError>>,
    {
        self.observed(Op::BulkGetWith, async move {
            let budget = Op::BulkGetWith.timeout(&self.inner.config);
            let machine = TypedBulkLoad::new(&self.inner.typed, keys, budget)?;
            self.drive_loader(machine, loader, Some(Op::BulkGetWith)).await
        })
        .await
    }
}
