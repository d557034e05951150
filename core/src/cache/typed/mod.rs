//! A namespace's typed side: user keys and values to and from what the machines store, TTLs,
//! and (in `found`) what the machines found, typed and counted. Everything the async API
//! does between a caller's types and a core machine, without I/O: the caller passes the
//! wall-clock time and the randomness in.

mod found;

pub use found::EntryInfo;

use std::sync::Arc;

use crate::keys::{EncodedKey, Namespace};

use super::compute::Compute;
use super::config::ProviderConfig;
use super::envelope::Entry;
use super::error::CacheError;
use super::op::Scope;
use super::op::bulk_load::Item;
use super::op::compute::{Apply, Decision};
use super::op::load::{Loaded, Prepared};
use super::op::scope::distinct_tags;
#[cfg(feature = "search")]
use super::op::search_index::IndexSpec;
use super::op::write::Write;
use super::options::NamespaceOptions;
use super::plan::Tags;
use super::stats::Counters;
use super::storage::Storage;
use super::transform::ValuePipeline;
use super::ttl::{Ttl, check_default};

/// Randomness for value transformers (nonces): fills the buffer.
pub type Random<'a> = &'a mut dyn FnMut(&mut [u8]);

/// A namespace's key layout, scope, search index, options, value pipeline, default TTL and
/// counters.
pub struct Typed<K, V> {
    ns: Namespace,
    name: String,
    scope: Arc<Scope>,
    #[cfg(feature = "search")]
    index: Option<Arc<IndexSpec>>,
    opts: NamespaceOptions<K, V>,
    values: ValuePipeline,
    default_ttl_ms: u64,
    counters: Counters,
}

impl<K, V: 'static> core::fmt::Debug for Typed<K, V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Typed").field("name", &self.name).field("options", &self.opts).finish_non_exhaustive()
    }
}

impl<K, V: 'static> Typed<K, V> {
    /// The typed side of namespace `ns` with `opts`, under the provider's `config`. A
    /// namespace with a search schema stores plain JSON documents under an index.
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] for a zero default TTL or `expire_after_read`.
    pub fn new<T>(
        config: &ProviderConfig<T>,
        ns: Namespace,
        opts: NamespaceOptions<K, V>,
    ) -> Result<Self, CacheError> {
        let name = String::from_utf8_lossy(ns.data_prefix()).into_owned();
        let default_ttl_ms = check_default(config.default_ttl)?;
        #[cfg(feature = "search")]
        let index = opts.search.clone().map(|schema| {
            let (index_prefix, data_prefix) = (config.index_prefix.clone(), ns.data_prefix().to_vec());
            Arc::new(IndexSpec { schema, index_prefix, data_prefix })
        });
        #[cfg(feature = "search")]
        let storage = if index.is_some() { Storage::Document } else { Storage::Envelope };
        #[cfg(not(feature = "search"))]
        let storage = Storage::Envelope;
        let expire_after_read_ms =
            opts.expire_after_read.map(|d| Ttl::After(d).resolve(0)).transpose()?.flatten();
        let scope = Arc::new(Scope {
            ns: ns.clone(),
            name: name.clone(),
            storage,
            max_value_size: config.max_value_size,
            durability: config.durability,
            expire_after_read_ms,
        });
        let values = ValuePipeline::new(opts.transforms.clone()).with_max_value_size(config.max_value_size);
        Ok(Self {
            ns,
            name,
            scope,
            #[cfg(feature = "search")]
            index,
            opts,
            values,
            default_ttl_ms,
            counters: Counters::default(),
        })
    }

    /// The namespace as the core's operations see it.
    #[must_use]
    pub fn scope(&self) -> Arc<Scope> {
        self.scope.clone()
    }

    /// The search index of a searchable namespace.
    #[cfg(feature = "search")]
    #[must_use]
    pub const fn index(&self) -> Option<&Arc<IndexSpec>> {
        self.index.as_ref()
    }

    /// The search index, or why the namespace cannot be searched (for operation `what`).
    ///
    /// # Errors
    /// [`CacheError::SearchNotSupported`] for a namespace without a search schema.
    #[cfg(feature = "search")]
    pub fn searchable(&self, what: &str) -> Result<&Arc<IndexSpec>, CacheError> {
        self.index.as_ref().ok_or_else(|| {
            CacheError::SearchNotSupported(format!(
                "namespace {} has no search schema: set NamespaceOptions::search to enable {what}",
                self.name
            ))
        })
    }

    /// The key layout.
    #[must_use]
    pub const fn ns(&self) -> &Namespace {
        &self.ns
    }

    /// The normalised name (with its trailing `:`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The options.
    #[must_use]
    pub const fn options(&self) -> &NamespaceOptions<K, V> {
        &self.opts
    }

    /// The counters.
    #[must_use]
    pub const fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The default TTL in ms.
    #[must_use]
    pub const fn default_ttl_ms(&self) -> u64 {
        self.default_ttl_ms
    }

    /// The data key of `key`.
    ///
    /// # Errors
    /// [`CacheError::Key`] when the encoder refuses it.
    pub fn key(&self, key: &K) -> Result<EncodedKey, CacheError> {
        self.ns.encode_key(self.opts.key_encoder.as_ref(), key).map_err(|e| CacheError::Key(e.to_string()))
    }

    /// The data keys of `keys`, in order.
    ///
    /// # Errors
    /// As [`Typed::key`].
    pub fn keys<'k>(&self, keys: impl IntoIterator<Item = &'k K>) -> Result<Vec<EncodedKey>, CacheError>
    where
        K: 'k,
    {
        keys.into_iter().map(|k| self.key(k)).collect()
    }

    /// The user key of a data key.
    ///
    /// # Errors
    /// The key is not of this namespace or does not decode.
    pub fn user_key(&self, data_key: &[u8]) -> Result<K, CacheError> {
        Ok(self.ns.decode_key(self.opts.key_encoder.as_ref(), data_key)?)
    }

    /// The TTL in ms for a write of `value` (`None`: no expiry): `ttl`, else the namespace's
    /// expiry function, else the default.
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] for a zero TTL.
    pub fn ttl_ms(&self, key: &K, value: &V, ttl: Option<Ttl>) -> Result<Option<u64>, CacheError> {
        let ttl = match (ttl, &self.opts.expiry) {
            (Some(t), _) => t,
            (None, Some(f)) => f(key, value),
            (None, None) => Ttl::Default,
        };
        ttl.resolve(self.default_ttl_ms)
    }

    /// The TTL in ms a write of `value` without an explicit TTL gives an entry that exists
    /// already: `None` when the namespace has no `expire_after_update` (the same TTL as a new
    /// entry's), else its TTL (`Some(None)`: no expiry).
    ///
    /// # Errors
    /// [`CacheError::InvalidTtl`] for a zero TTL.
    pub fn update_ttl_ms(&self, key: &K, value: &V) -> Result<Option<Option<u64>>, CacheError> {
        self.opts.expire_after_update.as_ref().map(|f| f(key, value).resolve(self.default_ttl_ms)).transpose()
    }

    /// The envelope (without tags) for `value`, written at wall-clock `now_ms`.
    ///
    /// # Errors
    /// The codec's or a transformer's error; an oversized value.
    pub fn encode(&self, value: &V, now_ms: u64, random: Random<'_>) -> Result<Entry, CacheError> {
        let mut bytes = Vec::new();
        self.opts.codec.encode(value, &mut bytes)?;
        let (payload, transforms) = self.values.encode(bytes, random)?;
        let refresh_at_ms = self
            .opts
            .refresh_after
            .map(|d| now_ms.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)));
        Ok(Entry { payload, transforms, tags: Vec::new(), refresh_at_ms })
    }

    /// The value in an entry.
    ///
    /// # Errors
    /// A transformer's or the codec's error; an oversized value.
    pub fn decode(&self, entry: &Entry) -> Result<V, CacheError> {
        let bytes = self.values.decode(&entry.payload, &entry.transforms)?;
        self.opts.codec.decode(&bytes)
    }

    /// A write of `value` under `key` with `ttl` (`None`: the namespace's) and `tags`.
    ///
    /// # Errors
    /// An invalid key, TTL or tag; an unencodable or oversized value.
    pub fn write(
        &self,
        (key, value): (&K, &V),
        ttl: Option<Ttl>,
        tags: &[&str],
        now_ms: u64,
        random: Random<'_>,
    ) -> Result<Write, CacheError> {
        let fk = self.key(key)?;
        let ttl_ms = self.ttl_ms(key, value, ttl)?;
        // An explicit TTL is the entry's whether it exists or not.
        let on_update = if ttl.is_some() { None } else { self.update_ttl_ms(key, value)? };
        let tags = distinct_tags(tags);
        let plans = Tags::new(&self.ns);
        for t in &tags {
            plans.key(t)?;
        }
        Ok(Write {
            key: fk,
            entry: self.encode(value, now_ms, random)?,
            ttl_ms,
            on_update,
            tags,
            lease: None,
        })
    }

    /// A loaded value, ready to store (the namespace's TTL).
    ///
    /// # Errors
    /// An invalid TTL; an unencodable or oversized value.
    pub fn prepare(
        &self,
        key: &K,
        value: &V,
        now_ms: u64,
        random: Random<'_>,
    ) -> Result<Prepared, CacheError> {
        Ok(Prepared {
            ttl_ms: self.ttl_ms(key, value, None)?,
            on_update: self.update_ttl_ms(key, value)?,
            entry: self.encode(value, now_ms, random)?,
        })
    }

    /// Loaded values, ready to store.
    ///
    /// # Errors
    /// As [`Typed::key`] and [`Typed::prepare`].
    pub fn items(&self, items: &[(K, V)], now_ms: u64, random: Random<'_>) -> Result<Vec<Item>, CacheError> {
        items
            .iter()
            .map(|(k, v)| Ok(Item { key: self.key(k)?, prepared: self.prepare(k, v, now_ms, random)? }))
            .collect()
    }

    /// The loader's answer for the load machine: its value, ready to store.
    pub fn answer(
        &self,
        key: &K,
        loaded: Result<V, CacheError>,
        now_ms: u64,
        random: Random<'_>,
    ) -> Loaded<V> {
        match loaded {
            Err(e) => Loaded::Failed(e),
            Ok(value) => Loaded::Value { store: self.prepare(key, &value, now_ms, random), value },
        }
    }

    /// One attempt of a compute: decodes the entry read, asks `f` (`None` from it: leave the
    /// entry), and encodes its decision.
    ///
    /// # Errors
    /// The entry does not decode; the new value does not encode; an invalid TTL.
    pub fn apply(
        &self,
        key: &K,
        call: Apply,
        f: impl FnOnce(Option<&V>) -> Option<Compute<V>>,
        now_ms: u64,
        random: Random<'_>,
    ) -> Result<Decision<Option<V>>, CacheError> {
        let current = call.current.as_ref().map(|e| self.decode(e)).transpose()?;
        let (new, ttl) = match f(current.as_ref()) {
            None | Some(Compute::Keep) => return Ok(Decision::Keep(current)),
            Some(Compute::Delete) => return Ok(Decision::Delete),
            Some(Compute::Set(new)) => (new, None),
            Some(Compute::SetWithTtl(new, ttl)) => (new, Some(ttl)),
        };
        // The read was on the primary and the write is a compare-and-set against it: whether
        // the entry exists is known exactly here (a stale entry counts as absent).
        let ttl_ms = match (ttl, current.is_some(), self.update_ttl_ms(key, &new)?) {
            (None, true, Some(update)) => update,
            _ => self.ttl_ms(key, &new, ttl)?,
        };
        let entry = self.encode(&new, now_ms, random)?;
        Ok(Decision::Set { entry, ttl_ms, value: Some(new) })
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;
    #[cfg(feature = "search")]
    use crate::cache::search::SearchSchema;
    use crate::keys::StringKeys;

    pub(super) fn typed(opts: NamespaceOptions<String, String>) -> Typed<String, String> {
        let config = ProviderConfig::<()>::new(["127.0.0.1:7000"]);
        Typed::new(&config, Namespace::new("ns").expect("valid"), opts).expect("valid")
    }

    #[cfg(feature = "search")]
    #[test]
    fn only_a_namespace_with_a_schema_is_searchable() {
        let e = typed(NamespaceOptions::default()).searchable("query").expect_err("no schema");
        assert!(
            matches!(&e, CacheError::SearchNotSupported(m) if m.contains("ns:") && m.ends_with("enable query")),
            "{e}"
        );
        let opts = NamespaceOptions::default().with_search(SearchSchema::new().tag("t", false));
        assert!(typed(opts).searchable("query").is_ok());
    }

    fn sliding(update: bool) -> Typed<String, String> {
        let mut opts = NamespaceOptions::<String, String>::with_key_encoder(Arc::new(StringKeys));
        opts.expiry = Some(Arc::new(|_, _| Ttl::After(Duration::from_secs(10))));
        if update {
            opts.expire_after_update = Some(Arc::new(|_, _| Ttl::After(Duration::from_secs(60))));
        }
        opts.expire_after_read = Some(Duration::from_micros(1500));
        typed(opts)
    }

    /// A write without an explicit TTL carries the update TTL for the server to choose; an
    /// explicit one does not; a compute chooses from what it read.
    #[test]
    fn the_update_ttl() {
        let (t, key, v) = (sliding(true), "k".to_owned(), "v".to_owned());
        assert_eq!(t.scope().expire_after_read_ms, Some(2), "rounded up");
        let w = t.write((&key, &v), None, &[], 0, &mut |_| {}).expect("valid");
        assert_eq!((w.ttl_ms, w.on_update), (Some(10_000), Some(Some(60_000))));
        let w = t.write((&key, &v), Some(Ttl::Never), &[], 0, &mut |_| {}).expect("valid");
        assert_eq!((w.ttl_ms, w.on_update), (None, None));
        assert_eq!(
            sliding(false).write((&key, &v), None, &[], 0, &mut |_| {}).expect("valid").on_update,
            None
        );
        let ttl_of = |current: Option<Entry>, c: Compute<String>| match t
            .apply(&key, Apply { current }, |_| Some(c), 0, &mut |_| {})
            .expect("applies")
        {
            Decision::Set { ttl_ms, .. } => ttl_ms,
            other => panic!("{other:?}"),
        };
        let present = Some(Entry::plain(bytes::Bytes::from_static(b"\"old\"")));
        assert_eq!(ttl_of(present.clone(), Compute::Set(v.clone())), Some(60_000), "an update");
        assert_eq!(ttl_of(None, Compute::Set(v.clone())), Some(10_000), "a creation");
        let explicit = Compute::SetWithTtl(v, Ttl::After(Duration::from_secs(1)));
        assert_eq!(ttl_of(present, explicit), Some(1000), "an explicit TTL wins");
    }

    #[test]
    fn a_zero_read_expiry_is_refused() {
        let mut opts = NamespaceOptions::<String, String>::with_key_encoder(Arc::new(StringKeys));
        opts.expire_after_read = Some(Duration::ZERO);
        assert!(matches!(opts.check(), Err(CacheError::InvalidTtl { .. })));
    }
}
