//! Loaders: `get` with single-flight stampede protection (and an optional lock in the key's
//! slot across processes), background `refresh`, `bulk_refresh` and `bulk_get_with`.
//!
//! Every protocol (the lock and its polling, the checks before loading, the tags a reload
//! keeps, the store) is a core machine (`op::lookup`, `op::load`, `op::bulk_refresh`,
//! `op::bulk_load`); which caller leads a load is decided by the core's `op::flights`. This
//! file holds the loaders, encodes and decodes values, spawns the loads and maps outcomes.
//!
//! A load runs in its own task: callers that give up (their future is dropped) do not cancel
//! it, and every concurrent caller of the same key in this process awaits the same load. A
//! loader that panics releases its waiters with [`CacheError::LoaderAborted`].

use core::future::Future;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::FutureExt;
use slotcache_core::cache::op::bulk_load::{BulkLoad, Item, LoadMisses};
use slotcache_core::cache::op::bulk_refresh::BulkRefresh;
use slotcache_core::cache::op::flights::Role;
use slotcache_core::cache::op::load::{
    CallLoader, Load, LoadConfig, LoadKind, LoadResult, Loaded, Prepared, Warning,
};
use slotcache_core::cache::op::lookup::{LookUp, Lookup};
use slotcache_core::cache::{CacheError, Entry};
use slotcache_core::keys::EncodedKey;

use super::namespace::{Cache, Counters, Flight, Inner, wall_ms};

/// Ends a led load in the in-flight table once it is over (or has panicked).
struct FlightGuard<K, V> {
    inner: Arc<Inner<K, V>>,
    key: Bytes,
    ticket: u64,
}

impl<K, V> Drop for FlightGuard<K, V> {
    fn drop(&mut self) {
        if let Ok(mut f) = self.inner.flights.lock() {
            f.finish(&self.key, self.ticket);
        }
    }
}

fn aborted(what: &str) -> CacheError {
    CacheError::LoaderAborted(format!("the {what} panicked or was dropped"))
}

impl<K, V> Cache<K, V>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The value under `key`; on a miss, `loader(key)` produces it, it is stored (no tags), and
    /// returned. Concurrent callers for one key share one load; the load goes on if they give
    /// up. With `cluster_lock`, processes coordinate through a lock in the key's slot.
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
    pub async fn get<F, Fut>(&self, key: &K, loader: F) -> Result<V, CacheError>
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, CacheError>> + Send + 'static,
    {
        let fk = self.key(key)?;
        let looked =
            self.inner.exec.drive(LookUp::new(self.inner.scope.clone(), fk, self.op_deadline("get")));
        let c = &self.inner.counters;
        match Lookup::or_unavailable(looked.await)? {
            Lookup::Hit { entry, reload } => {
                Counters::bump(&c.hits);
                let value = self.decode_value(&entry)?;
                if reload {
                    drop(self.load_shared(key.clone(), loader, LoadKind::Refresh));
                }
                return Ok(value);
            }
            Lookup::Miss { stale } => {
                Counters::add(&c.stale, u64::from(stale));
                Counters::bump(&c.misses);
            }
            Lookup::Unavailable(e) => {
                tracing::warn!(namespace = %self.inner.name, error = %e, "read failed; loading instead");
            }
        }
        self.load_shared(key.clone(), loader, LoadKind::Miss).await
    }

    /// Starts (or joins) the load of `key`.
    fn load_shared<F, Fut>(&self, key: K, loader: F, kind: LoadKind) -> Flight<V>
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, CacheError>> + Send + 'static,
    {
        let fk = match self.key(&key) {
            Ok(fk) => fk,
            Err(e) => return futures_util::future::ready(Err(e)).boxed().shared(),
        };
        let Ok(mut flights) = self.inner.flights.lock() else {
            return futures_util::future::ready(Err(CacheError::Closed)).boxed().shared();
        };
        let (tx, rx) = oneshot::channel();
        let (role, shared) = flights.join_or_lead(fk.bytes(), || {
            rx.map(|r| r.unwrap_or_else(|_| Err(aborted("loader")))).boxed().shared()
        });
        drop(flights);
        let Role::Lead(ticket) = role else { return shared };
        let this = self.clone();
        let guard = FlightGuard { inner: self.inner.clone(), key: fk.bytes().clone(), ticket };
        self.inner.exec.rt.spawn(Box::pin(async move {
            let result = this.load(key, fk, loader, kind).await;
            drop(guard);
            let _ = tx.send(result);
        }));
        shared
    }

    /// Runs the load machine of `key`.
    async fn load<F, Fut>(&self, key: K, fk: EncodedKey, loader: F, kind: LoadKind) -> Result<V, CacheError>
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, CacheError>> + Send + 'static,
    {
        let config = LoadConfig {
            op_timeout: self.inner.settings.config.operation_timeout,
            lock_hold: self.inner.opts.cluster_lock,
        };
        let machine = Load::new(self.inner.scope.clone(), fk, kind, config);
        let mut loader = Some(loader);
        let call = |CallLoader| {
            let (key, loader) = (key.clone(), loader.take());
            async move {
                let Some(loader) = loader else { return Loaded::Failed(aborted("loader")) };
                match self.timed_load(loader(key.clone())).await {
                    Err(e) => Loaded::Failed(e),
                    Ok(v) => Loaded::Value { store: self.prepare_load(&key, &v), value: v },
                }
            }
        };
        let outcome = self.inner.exec.drive_with(machine, call).await?;
        let c = &self.inner.counters;
        Counters::add(&c.stale, outcome.stale);
        for w in outcome.warnings {
            match w {
                Warning::LockUnavailable(e) => {
                    tracing::warn!(error = %e, "load lock unavailable; loading without it");
                }
                Warning::StoreFailed(e) => {
                    Counters::bump(&c.store_failures);
                    tracing::warn!(namespace = %self.inner.name, error = %e, "storing a loaded value failed");
                }
                Warning::UnlockFailed(e) => {
                    tracing::warn!(error = %e, "releasing a load lock failed; it expires by itself");
                }
            }
        }
        match outcome.result? {
            LoadResult::Found(entry) => self.decode_value(&entry),
            LoadResult::Loaded(v) => Ok(v),
        }
    }

    /// Awaits a loader, counting it.
    async fn timed_load<T>(
        &self,
        load: impl Future<Output = Result<T, CacheError>>,
    ) -> Result<T, CacheError> {
        let started = Instant::now();
        let loaded = load.await;
        self.inner.counters.record_load(started, &loaded);
        loaded
    }

    /// A loaded value, ready to store.
    fn prepare_load(&self, key: &K, value: &V) -> Result<Prepared, CacheError> {
        Ok(Prepared { ttl_ms: self.ttl_for(key, value, None)?, entry: self.encode_value(value, wall_ms())? })
    }

    /// Loaded values, ready to store.
    fn prepare_items(&self, items: &[(K, V)]) -> Result<Vec<Item>, CacheError> {
        items
            .iter()
            .map(|(k, v)| Ok(Item { key: self.key(k)?, prepared: self.prepare_load(k, v)? }))
            .collect()
    }

    /// Reloads `key` in the background; the old value keeps being served until the new one is
    /// stored, with the tags the old one had (a key that is absent is stored untagged). If
    /// reading those tags fails, nothing is loaded and the future resolves to that error. The
    /// returned future resolves to the loaded value (dropping it does not cancel the reload).
    pub fn refresh<F, Fut>(
        &self,
        key: &K,
        loader: F,
    ) -> impl Future<Output = Result<V, CacheError>> + Send + 'static
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, CacheError>> + Send + 'static,
    {
        self.load_shared(key.clone(), loader, LoadKind::Refresh)
    }

    /// Reloads `keys` in the background with one call of `loader`, and stores every value it
    /// returns in one write, each with the tags its entry had (keys that were absent, and
    /// values the loader returns for keys it was not asked for, are stored untagged); the
    /// returned future resolves to how many values were stored.
    ///
    /// The current entries are read first: if that read fails, nothing is loaded.
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
            let _ = tx.send(this.bulk_reload(keys, loader).await);
        }));
        rx.map(|r| r.unwrap_or_else(|_| Err(aborted("bulk loader"))))
    }

    async fn bulk_reload<F, Fut>(&self, keys: Vec<K>, loader: F) -> Result<usize, CacheError>
    where
        F: FnOnce(Vec<K>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<(K, V)>, CacheError>> + Send + 'static,
    {
        let fks = keys.iter().map(|k| self.key(k)).collect::<Result<Vec<_>, _>>()?;
        let budget = self.inner.settings.config.bulk_operation_timeout;
        let machine = BulkRefresh::new(self.inner.scope.clone(), fks, budget);
        let mut call = Some((keys, loader));
        let outcome = self
            .inner
            .exec
            .drive_with(machine, |CallLoader| {
                let call = call.take();
                async move {
                    let (keys, loader) = call.ok_or_else(|| aborted("bulk loader"))?;
                    let items = loader(keys).await?;
                    Ok((items.len(), self.prepare_items(&items)?))
                }
            })
            .await?;
        Counters::add(&self.inner.counters.stale, outcome.stale);
        Ok(outcome.loaded)
    }

    /// [`Cache::bulk_get`], with the misses produced by one call of `loader` and stored
    /// (default TTL, no tags) in one pipeline. Values the loader returns for keys it was not
    /// asked for are stored and returned too.
    ///
    /// # Errors
    /// A read error (not treated as misses), the loader's error. A failure to store what was
    /// loaded is counted and logged; the values are still returned.
    pub async fn bulk_get_with<F, Fut>(&self, keys: &[K], loader: F) -> Result<HashMap<K, V>, CacheError>
    where
        K: Eq + Hash,
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<(K, V)>, CacheError>>,
    {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let fks = keys.iter().map(|k| self.key(k)).collect::<Result<Vec<_>, _>>()?;
        let budget = self.inner.settings.config.bulk_operation_timeout;
        let machine = BulkLoad::new(self.inner.scope.clone(), fks, budget);
        let mut found = HashMap::with_capacity(keys.len());
        let mut loader = Some(loader);
        let call = |LoadMisses { hits }| {
            let misses = self.take_hits(keys, hits, &mut found);
            let loader = loader.take();
            async move {
                let (misses, loader) = (misses?, loader.ok_or_else(|| aborted("bulk loader"))?);
                let loaded = self.timed_load(loader(misses)).await?;
                let items = self.prepare_items(&loaded);
                Ok((loaded, items))
            }
        };
        let outcome = self.inner.exec.drive_with(machine, call).await?;
        let c = &self.inner.counters;
        Counters::add(&c.stale, outcome.stale);
        if let Some(hits) = outcome.hits {
            self.take_hits(keys, hits, &mut found)?;
        }
        if let Some(e) = outcome.store_error {
            Counters::bump(&c.store_failures);
            tracing::warn!(namespace = %self.inner.name, error = %e, "storing bulk-loaded values failed");
        }
        found.extend(outcome.loaded.unwrap_or_default());
        Ok(found)
    }

    /// Decodes the hits of `keys` into `found`, counting hits and misses; returns the misses.
    fn take_hits(
        &self,
        keys: &[K],
        hits: Vec<Option<Entry>>,
        found: &mut HashMap<K, V>,
    ) -> Result<Vec<K>, CacheError>
    where
        K: Eq + Hash,
    {
        let c = &self.inner.counters;
        let mut misses = Vec::new();
        for (k, e) in keys.iter().zip(hits) {
            match e {
                Some(e) => {
                    Counters::bump(&c.hits);
                    found.insert(k.clone(), self.decode_value(&e)?);
                }
                None => {
                    Counters::bump(&c.misses);
                    misses.push(k.clone());
                }
            }
        }
        Ok(misses)
    }
}
