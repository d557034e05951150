//! Loaders: `get` with single-flight stampede protection (and an optional lock in the key's
//! slot across processes), background `refresh`, and `bulk_get_with`.
//!
//! A load runs in its own task: callers that give up (their future is dropped) do not cancel
//! it, and every concurrent caller of the same key in this process awaits the same load. A
//! loader that panics releases its waiters with [`CacheError::LoaderAborted`].

use core::future::Future;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_channel::oneshot;
use futures_util::FutureExt;
use slotcache_core::cache::CacheError;
use slotcache_core::cache::plan;
use slotcache_core::cache::scripts;
use slotcache_core::client::Cmd;
use slotcache_core::keys::EncodedKey;

use super::exec::Step;
use super::namespace::{Cache, Counters, Inner, wall_ms};
use super::random;

/// Loads finished in this process so far (every namespace). A `get` whose read missed compares
/// it with what it saw before reading: see [`Cache::load_shared`].
static LOADS_FINISHED: AtomicU64 = AtomicU64::new(0);

/// Removes a finished (or panicked) load from the in-flight map.
struct FlightGuard<K, V> {
    inner: Arc<Inner<K, V>>,
    key: Bytes,
}

impl<K, V> Drop for FlightGuard<K, V> {
    fn drop(&mut self) {
        if let Ok(mut f) = self.inner.flights.lock() {
            f.remove(&self.key);
        }
    }
}

/// The lock key for loading `fk`: in `fk`'s slot when its hashed part allows it.
fn lock_key(fk: &EncodedKey) -> EncodedKey {
    let tag = slotcache_core::hash_tag(fk.bytes());
    let key = if tag.contains(&b'}') {
        [b"lock:".as_slice(), fk.bytes()].concat()
    } else {
        [b"lock:{".as_slice(), tag, b"}"].concat()
    };
    EncodedKey::new(Bytes::from(key))
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
    /// An entry past its refresh time is returned at once while a background load replaces it.
    ///
    /// # Errors
    /// The loader's error ([`CacheError::NotFound`] is not cached), or
    /// [`CacheError::LoaderAborted`] when it panicked.
    pub async fn get<F, Fut>(&self, key: &K, loader: F) -> Result<V, CacheError>
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, CacheError>> + Send + 'static,
    {
        let d = self.op_deadline("get");
        let epoch = LOADS_FINISHED.load(Ordering::Acquire);
        match self.read_entry(key, &d).await {
            Ok(Some(entry)) => {
                let value = self.decode_value(&entry)?;
                if entry.refresh_at_ms.is_some_and(|at| wall_ms() >= at) {
                    drop(self.load_shared(key.clone(), loader, None));
                }
                return Ok(value);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(namespace = %self.inner.name, error = %e, "read failed; loading instead")
            }
        }
        self.load_shared(key.clone(), loader, Some(epoch)).await
    }

    /// Starts (or joins) the load of `key`. `missed_at`: the [`LOADS_FINISHED`] count seen before
    /// the read that missed (`None` for a refresh of an entry that is there).
    fn load_shared<F, Fut>(
        &self,
        key: K,
        loader: F,
        missed_at: Option<u64>,
    ) -> futures_util::future::Shared<futures_util::future::BoxFuture<'static, Result<V, CacheError>>>
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
        if let Some(f) = flights.get(fk.bytes()) {
            return f.clone();
        }
        let (tx, rx) = oneshot::channel();
        let shared = rx
            .map(|r| {
                r.unwrap_or_else(|_| {
                    Err(CacheError::LoaderAborted("the loader panicked or was dropped".into()))
                })
            })
            .boxed()
            .shared();
        // A load finished since our read missed: it may have been this key's, whose flight we
        // then missed by a hair (our read went out before its store, we came to join after it
        // ended). Read once more before loading, so 20 concurrent callers still load once.
        let recheck = missed_at.is_some_and(|e| LOADS_FINISHED.load(Ordering::Acquire) != e);
        flights.insert(fk.bytes().clone(), shared.clone());
        drop(flights);
        let this = self.clone();
        let guard = FlightGuard { inner: self.inner.clone(), key: fk.bytes().clone() };
        self.inner.exec.rt.spawn(Box::pin(async move {
            let result = this.load_and_store(key, fk, loader, recheck).await;
            LOADS_FINISHED.fetch_add(1, Ordering::AcqRel);
            drop(guard);
            let _ = tx.send(result);
        }));
        shared
    }

    async fn load_and_store<F, Fut>(
        &self,
        key: K,
        fk: EncodedKey,
        loader: F,
        recheck: bool,
    ) -> Result<V, CacheError>
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, CacheError>> + Send + 'static,
    {
        if recheck {
            let d = self.op_deadline("get");
            if let Ok(Some(entry)) = self.read_entry(&key, &d).await {
                if let Ok(v) = self.decode_value(&entry) {
                    return Ok(v);
                }
            }
        }
        let lock = match self.inner.opts.cluster_lock {
            Some(hold) => match self.acquire_lock(&key, &fk, hold).await {
                Ok(Ok(token)) => Some(token),
                Ok(Err(found)) => return Ok(found),
                Err(e) => {
                    tracing::warn!(error = %e, "load lock unavailable; loading without it");
                    None
                }
            },
            None => None,
        };
        let started = Instant::now();
        let loaded = loader(key.clone()).await;
        let c = &self.inner.counters;
        c.record_load(started, &loaded);
        if let Ok(v) = &loaded {
            if let Err(e) = self.set(&key, v, &[]).await {
                Counters::bump(&c.store_failures);
                tracing::warn!(namespace = %self.inner.name, error = %e, "storing a loaded value failed");
            }
        }
        let result = loaded;
        if let Some(token) = lock {
            let d = self.op_deadline("unlock");
            let lk = lock_key(&fk);
            let cmd = plan::script(&scripts::UNLOCK, &lk, vec![token], true, true);
            if let Err(e) = self.inner.exec.one(Step::script(cmd, &scripts::UNLOCK), &d).await {
                tracing::warn!(error = %e, "releasing a load lock failed; it expires by itself");
            }
        }
        result
    }

    /// Takes the load lock, or waits for another process's load to store the value:
    /// `Ok(Ok(token))` = ours; `Ok(Err(value))` = someone else loaded it.
    async fn acquire_lock(
        &self,
        key: &K,
        fk: &EncodedKey,
        hold: Duration,
    ) -> Result<Result<Bytes, V>, CacheError> {
        let lk = lock_key(fk);
        let token = random::token();
        let hold_ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX).max(1);
        let d = self.deadline("load_lock", hold + self.inner.settings.config.operation_timeout);
        let mut pause = Duration::from_millis(5);
        loop {
            let cmd =
                Cmd::new("SET").arg(lk.bytes().clone()).arg(token.clone()).arg("NX").arg("PX").arg(hold_ms);
            let v = self.inner.exec.one(cmd.with_slot(lk.slot()).into(), &d).await?;
            if !v.is_nil() {
                return Ok(Ok(token));
            }
            if let Some(found) = self.get_if_present(key).await? {
                return Ok(Err(found));
            }
            if d.remaining(self.inner.exec.now())? <= pause {
                return Err(d.timeout_error());
            }
            self.inner.exec.sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Reloads `key` in the background; the old value keeps being served until the new one is
    /// stored. The returned future resolves to the loaded value (dropping it does not cancel
    /// the reload).
    pub fn refresh<F, Fut>(
        &self,
        key: &K,
        loader: F,
    ) -> impl Future<Output = Result<V, CacheError>> + Send + 'static
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, CacheError>> + Send + 'static,
    {
        self.load_shared(key.clone(), loader, None)
    }

    /// Reloads `keys` in the background with one call of `loader` and one `bulk_set`; the
    /// returned future resolves to how many values were stored.
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
            let r = async {
                let items = loader(keys).await?;
                this.bulk_set(&items, &[]).await?;
                Ok(items.len())
            }
            .await;
            let _ = tx.send(r);
        }));
        rx.map(|r| r.unwrap_or_else(|_| Err(CacheError::LoaderAborted("the bulk loader panicked".into()))))
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
        let mut found = self.bulk_get(keys).await?;
        let misses: Vec<K> = keys.iter().filter(|k| !found.contains_key(*k)).cloned().collect();
        if misses.is_empty() {
            return Ok(found);
        }
        let started = Instant::now();
        let loaded = loader(misses).await;
        let c = &self.inner.counters;
        c.record_load(started, &loaded);
        let loaded = loaded?;
        if let Err(e) = self.bulk_set(&loaded, &[]).await {
            Counters::bump(&c.store_failures);
            tracing::warn!(namespace = %self.inner.name, error = %e, "storing bulk-loaded values failed");
        }
        found.extend(loaded);
        Ok(found)
    }
}
