//! A namespace's options: how its keys and values are encoded, their TTLs, refresh, the cluster
//! lock and search. Plain data, checked when the namespace is created.

use core::fmt;
use core::time::Duration;
use std::sync::Arc;

use bytes::Bytes;
#[cfg(feature = "json")]
use serde::Serialize;
#[cfg(feature = "json")]
use serde::de::DeserializeOwned;

use crate::keys::{BytesKeys, DecimalKeys, KeyEncoder, StringKeys};

use super::codec::Codec;
#[cfg(feature = "json")]
use super::codec::Json;
use super::error::CacheError;
#[cfg(feature = "search")]
use super::search::SearchSchema;
use super::transform::Transform;
use super::ttl::Ttl;

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
    /// How values become bytes. Default: JSON, byte-compatible with the reference (feature
    /// `json`; without it, name a codec with [`NamespaceOptions::with_codec`]).
    pub codec: Arc<dyn Codec<V>>,
    /// Transformers applied to the codec's bytes, in order (compression, encryption).
    pub transforms: Vec<Arc<dyn Transform>>,
    /// Per-entry TTL from the entry, given by every write without an explicit TTL (the
    /// reference's `ExpireAfterCreate`; also on updates unless
    /// [`expire_after_update`](Self::expire_after_update) says otherwise); `None` uses the
    /// provider's `default_ttl`.
    pub expiry: Option<ExpiryFn<K, V>>,
    /// The TTL a write without an explicit TTL gives an entry that **already exists** (the
    /// reference's `ExpireAfterUpdate`): for example `Ttl::After(1 h)` with `expiry` at 10 min
    /// keeps entries that are written again alive longer. `None`: an update gets the same TTL
    /// as a new entry. Whether the entry exists is decided on the server, atomically with the
    /// write (a one-slot script instead of `SET`), so it costs no round trip; `compute`
    /// decides it from the entry it read (an entry made stale by a tag invalidation counts as
    /// absent).
    pub expire_after_update: Option<ExpiryFn<K, V>>,
    /// Sliding expiry (the reference's `ExpireAfterRead`, an access expiration): every read
    /// that finds an entry (`get_if_present`, `get`, `bulk_get`, `bulk_get_with`, `get_entry`)
    /// sets its remaining life to this, in the same command (`GETEX key PX ms` instead of
    /// `GET`; a one-slot script for JSON documents), so a read costs no extra round trip. The
    /// read then goes to the primary (it writes the TTL), even with replica reads. An entry
    /// written without expiry gets one on its first read. `probe_entry`, iteration, search
    /// and `compute` do not extend. The reads of a tagged entry renew its memberships in its
    /// tags in the token check they already make (the `TAG_TOUCH` script), so an entry that
    /// reads keep alive is still found, deleted and counted by `invalidate_by_tags`. When that
    /// round fails, an extended entry may outlive its memberships: a later invalidation of the
    /// tag still makes it a miss, but neither deletes nor counts it. `None` (the
    /// default): reads leave the TTL alone. At least 1 ms.
    pub expire_after_read: Option<Duration>,
    /// Entries older than this are served while a background reload replaces them (only
    /// through `Cache::get`, which has a loader).
    pub refresh_after: Option<Duration>,
    /// Guards loads with a lock in the key's slot (`SET NX PX`) held at most this long, so
    /// that many processes do not all load the same key.
    pub cluster_lock: Option<Duration>,
    /// Makes the namespace searchable (see `Cache::query`): entries are stored as JSON
    /// documents (the codec must be JSON, with no transformers) and indexed on every primary.
    #[cfg(feature = "search")]
    #[cfg_attr(docsrs, doc(cfg(feature = "search")))]
    pub search: Option<SearchSchema>,
}

impl<K, V> Clone for NamespaceOptions<K, V> {
    fn clone(&self) -> Self {
        Self {
            key_encoder: self.key_encoder.clone(),
            codec: self.codec.clone(),
            transforms: self.transforms.clone(),
            expiry: self.expiry.clone(),
            expire_after_update: self.expire_after_update.clone(),
            expire_after_read: self.expire_after_read,
            refresh_after: self.refresh_after,
            cluster_lock: self.cluster_lock,
            #[cfg(feature = "search")]
            search: self.search.clone(),
        }
    }
}

impl<K, V: 'static> fmt::Debug for NamespaceOptions<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("NamespaceOptions");
        d.field("codec", &self.codec.name())
            .field("transforms", &self.transforms.iter().map(|t| t.name()).collect::<Vec<_>>())
            .field("expiry", &self.expiry.is_some())
            .field("expire_after_update", &self.expire_after_update.is_some())
            .field("expire_after_read", &self.expire_after_read)
            .field("refresh_after", &self.refresh_after)
            .field("cluster_lock", &self.cluster_lock);
        #[cfg(feature = "search")]
        d.field("search", &self.search);
        d.finish_non_exhaustive()
    }
}

#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
impl<K: DefaultKey, V: Serialize + DeserializeOwned + Send + Sync + 'static> Default
    for NamespaceOptions<K, V>
{
    fn default() -> Self {
        Self::with_key_encoder(K::default_encoder())
    }
}

#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
impl<K, V: Serialize + DeserializeOwned + Send + Sync + 'static> NamespaceOptions<K, V> {
    /// JSON values, no transformers, default TTL, this key encoder.
    #[must_use]
    pub fn with_key_encoder(key_encoder: SharedKeyEncoder<K>) -> Self {
        Self::with_codec(key_encoder, Arc::new(Json))
    }
}

impl<K, V> NamespaceOptions<K, V> {
    /// Values in `codec`, no transformers, default TTL, this key encoder (with or without the
    /// `json` feature: `Arc::new(Binary)` or `Arc::new(Raw)` are codecs too).
    #[must_use]
    pub fn with_codec(key_encoder: SharedKeyEncoder<K>, codec: Arc<dyn Codec<V>>) -> Self {
        Self {
            key_encoder,
            codec,
            transforms: Vec::new(),
            expiry: None,
            expire_after_update: None,
            expire_after_read: None,
            refresh_after: None,
            cluster_lock: None,
            #[cfg(feature = "search")]
            search: None,
        }
    }
    /// These options with a search schema: the namespace stores JSON documents and can be
    /// searched (see `Cache::query`).
    #[cfg(feature = "search")]
    #[cfg_attr(docsrs, doc(cfg(feature = "search")))]
    #[must_use]
    pub fn with_search(mut self, schema: SearchSchema) -> Self {
        self.search = Some(schema);
        self
    }
}

impl<K, V: 'static> NamespaceOptions<K, V> {
    /// A fingerprint of the options that change what is stored or how loads behave: reusing a
    /// namespace with different ones is refused rather than silently ignored.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let t: Vec<&str> = self.transforms.iter().map(|t| t.name()).collect();
        // search hook: the schema is part of what is stored.
        #[cfg(feature = "search")]
        let search = &self.search;
        #[cfg(not(feature = "search"))]
        let search: &Option<()> = &None;
        format!(
            "{}|{t:?}|{:?}|{}|{}|{:?}|{:?}|{:?}",
            self.codec.name(),
            self.refresh_after,
            self.expiry.is_some(),
            self.expire_after_update.is_some(),
            self.expire_after_read,
            self.cluster_lock,
            search
        )
    }

    /// Checks the options when the namespace is created: a positive `expire_after_read`; a
    /// searchable namespace stores plain JSON documents (a valid schema, the JSON codec, no
    /// transformers).
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] for a zero `expire_after_read`; [`CacheError::Search`] for an
    /// invalid schema, [`CacheError::Config`] otherwise.
    pub fn check(&self) -> Result<(), CacheError> {
        if self.expire_after_read.is_some_and(|d| d.is_zero()) {
            return Err(CacheError::InvalidTtl { reason: "expire_after_read must be at least 1 ms" });
        }
        #[cfg(feature = "search")]
        if let Some(schema) = &self.search {
            return check_searchable(schema, self.codec.name(), self.transforms.len());
        }
        Ok(())
    }
}

/// Checks a searchable namespace's schema, codec name and number of transformers.
#[cfg(feature = "search")]
fn check_searchable(schema: &SearchSchema, codec: &str, transforms: usize) -> Result<(), CacheError> {
    schema.validate()?;
    if codec != "json" {
        return Err(CacheError::Config(format!(
            "a searchable namespace stores JSON documents: its codec must be json, not {codec}"
        )));
    }
    if transforms != 0 {
        return Err(CacheError::Config("a searchable namespace cannot use value transformers".into()));
    }
    Ok(())
}

#[cfg(all(test, feature = "search"))]
mod tests {
    use super::*;

    #[test]
    fn searchable_namespaces_store_plain_json() {
        assert!(check_searchable(&SearchSchema::new().tag("a", false), "json", 0).is_ok());
        assert!(matches!(
            check_searchable(&SearchSchema::new().tag("a", false), "binary", 0),
            Err(CacheError::Config(_))
        ));
        assert!(matches!(
            check_searchable(&SearchSchema::new().tag("a", false), "json", 1),
            Err(CacheError::Config(_))
        ));
        assert!(matches!(check_searchable(&SearchSchema::new(), "json", 0), Err(CacheError::Search(_))));
    }
}
