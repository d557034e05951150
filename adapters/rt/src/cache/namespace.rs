//! A namespace: its options, and the typed [`Cache`] handle.

use core::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{BoxFuture, Shared};
use serde::Serialize;
use serde::de::DeserializeOwned;
use slotcache_core::cache::codec::{Codec, Json};
use slotcache_core::cache::op::flights::Flights;
use slotcache_core::cache::search::SearchSchema;
use slotcache_core::cache::transform::{Transform, ValuePipeline};
use slotcache_core::cache::{CacheError, Entry, Ttl};
use slotcache_core::keys::{BytesKeys, DecimalKeys, EncodedKey, KeyEncoder, Namespace, StringKeys};

use super::exec::{Deadline, Exec};
use super::random;

/// A key encoder usable by a namespace.
pub type SharedKeyEncoder<K> = Arc<dyn KeyEncoder<Key = K> + Send + Sync>;

/// Computes an entry's TTL from the entry (the reference's expiry calculator).
pub type ExpiryFn<K, V> = Arc<dyn Fn(&K, &V) -> Ttl + Send + Sync>;

/// Key types with a default encoder: strings verbatim, integers in decimal, bytes as is.
pub trait DefaultKey: Sized + Send + Sync + 'static {
    /// The default encoder for this key type.
    fn default_encoder() -> SharedKeyEncoder<Self>;
}

impl DefaultKey for String {
    fn default_encoder() -> SharedKeyEncoder<Self> {
        Arc::new(StringKeys)
    }
}

impl DefaultKey for Bytes {
    fn default_encoder() -> SharedKeyEncoder<Self> {
        Arc::new(BytesKeys)
    }
}

macro_rules! decimal_key {
    ($($t:ty),*) => {$(
        impl DefaultKey for $t {
            fn default_encoder() -> SharedKeyEncoder<Self> {
                Arc::new(DecimalKeys::<$t>::default())
            }
        }
    )*};
}
decimal_key!(u32, u64, i32, i64, usize);

/// Options of one namespace.
pub struct NamespaceOptions<K, V> {
    /// How user keys become bytes (and back, for iteration).
    pub key_encoder: SharedKeyEncoder<K>,
    /// How values become bytes. Default: JSON, byte-compatible with the reference.
    pub codec: Arc<dyn Codec<V>>,
    /// Transformers applied to the codec's bytes, in order (compression, encryption).
    pub transforms: Vec<Arc<dyn Transform>>,
    /// Per-entry TTL from the entry; `None` uses the provider's `default_ttl`.
    pub expiry: Option<ExpiryFn<K, V>>,
    /// Entries older than this are served while a background reload replaces them (only
    /// through [`Cache::get`], which has a loader).
    pub refresh_after: Option<Duration>,
    /// Guards loads with a lock in the key's slot (`SET NX PX`) held at most this long, so
    /// that many processes do not all load the same key.
    pub cluster_lock: Option<Duration>,
    /// Makes the namespace searchable (see `Cache::query`): entries are stored as JSON
    /// documents (the codec must be JSON, with no transformers) and indexed on every primary.
    pub search: Option<SearchSchema>,
}

impl<K, V> Clone for NamespaceOptions<K, V> {
    fn clone(&self) -> Self {
        Self {
            key_encoder: self.key_encoder.clone(),
            codec: self.codec.clone(),
            transforms: self.transforms.clone(),
            expiry: self.expiry.clone(),
            refresh_after: self.refresh_after,
            cluster_lock: self.cluster_lock,
            search: self.search.clone(),
        }
    }
}

impl<K, V: 'static> fmt::Debug for NamespaceOptions<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamespaceOptions")
            .field("codec", &self.codec.name())
            .field("transforms", &self.transforms.iter().map(|t| t.name()).collect::<Vec<_>>())
            .field("expiry", &self.expiry.is_some())
            .field("refresh_after", &self.refresh_after)
            .field("cluster_lock", &self.cluster_lock)
            .field("search", &self.search)
            .finish_non_exhaustive()
    }
}

impl<K: DefaultKey, V: Serialize + DeserializeOwned + Send + Sync + 'static> Default
    for NamespaceOptions<K, V>
{
    fn default() -> Self {
        Self::with_key_encoder(K::default_encoder())
    }
}

impl<K, V: Serialize + DeserializeOwned + Send + Sync + 'static> NamespaceOptions<K, V> {
    /// JSON values, no transformers, default TTL, this key encoder.
    #[must_use]
    pub fn with_key_encoder(key_encoder: SharedKeyEncoder<K>) -> Self {
        Self {
            key_encoder,
            codec: Arc::new(Json),
            transforms: Vec::new(),
            expiry: None,
            refresh_after: None,
            cluster_lock: None,
            search: None,
        }
    }
}

impl<K, V: 'static> NamespaceOptions<K, V> {
    /// A fingerprint of the options that change what is stored or how loads behave: reusing a
    /// namespace with different ones is refused rather than silently ignored.
    pub(crate) fn fingerprint(&self) -> String {
        let t: Vec<&str> = self.transforms.iter().map(|t| t.name()).collect();
        // search hook: the schema is part of what is stored.
        format!(
            "{}|{t:?}|{:?}|{}|{:?}|{:?}",
            self.codec.name(),
            self.refresh_after,
            self.expiry.is_some(),
            self.cluster_lock,
            self.search
        )
    }
}

/// Counters of one namespace (client-side, so per namespace, unlike the reference's
/// server-wide figures).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) stale: AtomicU64,
    pub(crate) loads: AtomicU64,
    pub(crate) load_failures: AtomicU64,
    pub(crate) load_nanos: AtomicU64,
    pub(crate) store_failures: AtomicU64,
}

/// A snapshot of a namespace's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads that found a fresh entry.
    pub hits: u64,
    /// Reads that found nothing (stale entries included).
    pub misses: u64,
    /// Reads that found an entry made stale by a tag invalidation.
    pub stale: u64,
    /// Loader calls that succeeded.
    pub loads: u64,
    /// Loader calls that failed.
    pub load_failures: u64,
    /// Time spent in loaders.
    pub load_time: Duration,
    /// Loaded values that could not be stored (they were still returned).
    pub store_failures: u64,
}

impl Counters {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(c: &AtomicU64, n: u64) {
        if n > 0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Records a loader call that started at `started` and ended with `outcome`.
    pub(crate) fn record_load<T>(&self, started: std::time::Instant, outcome: &Result<T, CacheError>) {
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.load_nanos.fetch_add(nanos, Ordering::Relaxed);
        Self::bump(if outcome.is_ok() { &self.loads } else { &self.load_failures });
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
            loads: self.loads.load(Ordering::Relaxed),
            load_failures: self.load_failures.load(Ordering::Relaxed),
            load_time: Duration::from_nanos(self.load_nanos.load(Ordering::Relaxed)),
            store_failures: self.store_failures.load(Ordering::Relaxed),
        }
    }
}

/// A load shared by every concurrent caller of one key.
pub(crate) type Flight<V> = Shared<BoxFuture<'static, Result<V, CacheError>>>;

/// What every handle of one namespace shares.
pub(crate) struct Inner<K, V> {
    pub(crate) exec: Exec,
    /// The namespace as the core's operations see it.
    pub(crate) scope: Arc<slotcache_core::cache::op::Scope>,
    pub(crate) settings: Arc<super::provider::Settings>,
    pub(crate) ns: Namespace,
    pub(crate) name: String,
    pub(crate) opts: NamespaceOptions<K, V>,
    pub(crate) values: ValuePipeline,
    pub(crate) flights: Mutex<Flights<Flight<V>>>,
    pub(crate) counters: Counters,
    /// search hook: `Some` for a searchable namespace (JSON documents).
    pub(crate) search: Option<Arc<super::search::SearchState>>,
}

/// A typed cache over one namespace. Cheap to clone; every clone shares the provider's cluster
/// client.
///
/// ```no_run
/// # async fn demo(provider: slotcache_rt::Provider) -> Result<(), slotcache_rt::CacheError> {
/// use std::time::Duration;
/// use slotcache_rt::{Compute, NamespaceOptions, Ttl};
///
/// let pages = provider.create_namespace::<String, String>("pages", NamespaceOptions::default())?;
/// let key = "/home".to_string();
/// // Store with a TTL and two tags; a tagged set is two round trips, an untagged one, one.
/// pages.set_with_ttl(&key, &"<html>".to_string(), Ttl::After(Duration::from_secs(60)), &["site", "home"]).await?;
/// // Read through, loading on a miss (one load for every concurrent caller of the key).
/// let html = pages.get(&key, |k| async move { Ok(format!("rendered {k}")) }).await?;
/// // Atomic read-modify-write (compare-and-set on the key's slot).
/// pages.compute(&key, |old| Compute::Set(format!("{}!", old.cloned().unwrap_or_default()))).await?;
/// // Every entry tagged "site" is a miss from now on, on every client; returns how many were removed.
/// let removed = pages.invalidate_by_tags(&["site"]).await?;
/// # let _ = (html, removed);
/// # Ok(()) }
/// ```
pub struct Cache<K, V> {
    pub(crate) inner: Arc<Inner<K, V>>,
}

impl<K, V> Clone for Cache<K, V> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<K, V: 'static> fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.inner.name)
            .field("options", &self.inner.opts)
            .finish()
    }
}

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// The namespace's normalised name (with its trailing `:`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Counters since the namespace was created.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        self.inner.counters.snapshot()
    }

    /// Closing a namespace never closes the shared client: it is a no-op kept for parity with
    /// the reference (whose namespace `Close` closed every namespace's connection). Close the
    /// [`Provider`](super::Provider) instead.
    pub const fn close(&self) {}

    pub(crate) fn key(&self, key: &K) -> Result<EncodedKey, CacheError> {
        self.inner
            .ns
            .encode_key(self.inner.opts.key_encoder.as_ref(), key)
            .map_err(|e| CacheError::Key(e.to_string()))
    }

    pub(crate) fn deadline(&self, op: &'static str, budget: Duration) -> Deadline {
        Deadline::new(self.inner.exec.now(), op, budget)
    }

    pub(crate) fn op_deadline(&self, op: &'static str) -> Deadline {
        self.deadline(op, self.inner.settings.config.operation_timeout)
    }

    pub(crate) fn default_ttl_ms(&self) -> u64 {
        self.inner.settings.default_ttl_ms
    }

    /// The TTL in ms for a write of `value` (`None`: no expiry).
    pub(crate) fn ttl_for(&self, key: &K, value: &V, ttl: Option<Ttl>) -> Result<Option<u64>, CacheError> {
        let ttl = match (ttl, &self.inner.opts.expiry) {
            (Some(t), _) => t,
            (None, Some(f)) => f(key, value),
            (None, None) => Ttl::Default,
        };
        ttl.resolve(self.default_ttl_ms())
    }

    /// The envelope (without tags) for `value`.
    pub(crate) fn encode_value(&self, value: &V, now_ms: u64) -> Result<Entry, CacheError> {
        let mut bytes = Vec::new();
        self.inner.opts.codec.encode(value, &mut bytes)?;
        let (payload, transforms) = self.inner.values.encode(bytes, &mut random::fill)?;
        let refresh_at_ms = self
            .inner
            .opts
            .refresh_after
            .map(|d| now_ms.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)));
        Ok(Entry { payload, transforms, tags: Vec::new(), refresh_at_ms })
    }

    /// The value in an entry.
    pub(crate) fn decode_value(&self, entry: &Entry) -> Result<V, CacheError> {
        let bytes = self.inner.values.decode(&entry.payload, &entry.transforms)?;
        self.inner.opts.codec.decode(&bytes)
    }
}

/// Wall-clock milliseconds since the Unix epoch (for refresh-after times stored in entries).
pub(crate) fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
