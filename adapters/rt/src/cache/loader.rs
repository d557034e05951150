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

/// Why a load runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LoadKind {
    /// A caller found nothing: the value may have been stored since its read (by a load that
    /// just finished here, or by another process), so the load checks again first.
    Miss,
    /// A reload of a present value (`refresh`, refresh-after): always loads.
    Refresh,
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
    /// An entry past its refresh time is returned at once while a background load replaces it
    /// (keeping its tags, as [`Cache::refresh`] does).
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
        match self.read_entry(key, &d).await {
            Ok(Some(entry)) => {
                let value = self.decode_value(&entry)?;
                if entry.refresh_at_ms.is_some_and(|at| wall_ms() >= at) {
                    drop(self.load_shared(key.clone(), loader, LoadKind::Refresh));
                }
                return Ok(value);
            }
            Ok(None) => {}
            // A closed provider is the caller's state, not the cache being unavailable.
            Err(CacheError::Closed) => return Err(CacheError::Closed),
            Err(e) => {
                tracing::warn!(namespace = %self.inner.name, error = %e, "read failed; loading instead")
            }
        }
        self.load_shared(key.clone(), loader, LoadKind::Miss).await
    }

    /// Starts (or joins) the load of `key`.
    fn load_shared<F, Fut>(
        &self,
        key: K,
        loader: F,
        kind: LoadKind,
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
        flights.insert(fk.bytes().clone(), shared.clone());
        drop(flights);
        let this = self.clone();
        let guard = FlightGuard { inner: self.inner.clone(), key: fk.bytes().clone() };
        self.inner.exec.rt.spawn(Box::pin(async move {
            let result = this.load_and_store(key, fk, loader, kind).await;
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
        kind: LoadKind,
    ) -> Result<V, CacheError>
    where
        F: FnOnce(K) -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, CacheError>> + Send + 'static,
    {
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
        if kind == LoadKind::Miss {
            // The caller's read may predate a store that has happened since: by the load this
            // one follows in this process, or by the process that held the lock until now.
            // Checking inside the flight (as the reference's single-flight does) makes the
            // herd load exactly once; a failed check just loads.
            if let Ok(Some(found)) = self.peek(&key).await {
                self.release_lock(&fk, lock).await;
                return Ok(found);
            }
        }
        // A reload keeps the tags of the entry it replaces: stored untagged, it would escape
        // their invalidations. Read before loading; if that read fails, nothing is loaded and
        // the old value stays.
        let tags = if kind == LoadKind::Refresh {
            match self.read_fresh(&key, &self.op_deadline("refresh")).await {
                Ok(entry) => entry.map(|e| tag_names(&e)).unwrap_or_default(),
                Err(e) => {
                    self.release_lock(&fk, lock).await;
                    return Err(e);
                }
            }
        } else {
            Vec::new()
        };
        let started = Instant::now();
        let loaded = loader(key.clone()).await;
        let c = &self.inner.counters;
        c.record_load(started, &loaded);
        if let Ok(v) = &loaded {
            let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            if let Err(e) = self.set(&key, v, &tags).await {
                Counters::bump(&c.store_failures);
                tracing::warn!(namespace = %self.inner.name, error = %e, "storing a loaded value failed");
            }
        }
        let result = loaded;
        self.release_lock(&fk, lock).await;
        result
    }

    /// Releases a load lock this process holds (if it still holds it).
    async fn release_lock(&self, fk: &EncodedKey, token: Option<Bytes>) {
        let Some(token) = token else { return };
        let d = self.op_deadline("unlock");
        let lk = lock_key(fk);
        let cmd = plan::script(&scripts::UNLOCK, &lk, vec![token], true, true);
        if let Err(e) = self.inner.exec.one(Step::script(cmd, &scripts::UNLOCK), &d).await {
            tracing::warn!(error = %e, "releasing a load lock failed; it expires by itself");
        }
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
            if let Some(found) = self.peek(key).await? {
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

    /// Reloads `keys` in the background with one call of `loader` and one `bulk_set` per
    /// distinct set of tags (each entry keeps the tags it had; keys that were absent, and
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
            let r = async {
                let d = this.deadline("bulk_refresh", this.inner.settings.config.bulk_operation_timeout);
                let current = this.read_fresh_many(&keys, &d).await?;
                let mut tags_of: HashMap<Bytes, Vec<String>> = HashMap::new();
                for (k, e) in keys.iter().zip(current) {
                    if let Some(e) = e.filter(|e| !e.tags.is_empty()) {
                        tags_of.insert(this.key(k)?.bytes().clone(), tag_names(&e));
                    }
                }
                let items = loader(keys).await?;
                let n = items.len();
                // One bulk_set per distinct set of tags (usually one or two).
                let mut groups: Vec<TagGroup<K, V>> = Vec::new();
                for (k, v) in items {
                    let tags =
                        this.key(&k).ok().and_then(|fk| tags_of.get(fk.bytes()).cloned()).unwrap_or_default();
                    match groups.iter_mut().find(|(t, _)| *t == tags) {
                        Some((_, g)) => g.push((k, v)),
                        None => groups.push((tags, vec![(k, v)])),
                    }
                }
                for (tags, group) in groups {
                    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
                    this.bulk_set(&group, &tags).await?;
                }
                Ok(n)
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

/// Entries to store with one set of tags.
type TagGroup<K, V> = (Vec<String>, Vec<(K, V)>);

/// The names of an entry's tags.
fn tag_names(entry: &slotcache_core::cache::Entry) -> Vec<String> {
    entry.tags.iter().map(|t| String::from_utf8_lossy(&t.tag).into_owned()).collect()
}
