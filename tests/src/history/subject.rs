//! The cache under test, behind one interface: slotcache itself, or the naive protocol.

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, TryStreamExt};
use slotcache_core::Namespace;
use slotcache_core::cache::op::iterate;
use slotcache_rt::cache::testing;
use slotcache_rt::{Cache, Compute, NamespaceOptions, Provider, ProviderConfig, Ttl};

/// A boxed operation: errors are carried as text (the history only needs to know it failed).
pub type Fut<'a, T> = BoxFuture<'a, Result<T, String>>;

/// What a loader calls when it runs (to record when: see [`super::Record::loaded`]).
pub type LoaderCalled = std::sync::Arc<dyn Fn() + Send + Sync>;

/// The operations the workload and the checks drive, on user keys and tag names.
pub trait Subject: Send + Sync + 'static {
    /// A name for figures and messages.
    fn name(&self) -> &'static str;
    /// Writes one value with these tags (`ttl`: the entry's TTL; `None` for the default).
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        tags: &'a [String],
        ttl: Option<Duration>,
    ) -> Fut<'a, ()>;
    /// Writes several values, all with these tags.
    fn bulk_set<'a>(&'a self, items: &'a [(String, String)], tags: &'a [String]) -> Fut<'a, ()>;
    /// Reads one value (`get_if_present`).
    fn get<'a>(&'a self, key: &'a str) -> Fut<'a, Option<String>>;
    /// Reads several values at once (`bulk_get`): one per key, in order (`None`: a miss).
    fn bulk_get<'a>(&'a self, keys: &'a [String]) -> Fut<'a, Vec<Option<String>>>;
    /// Reads one value, loading it on a miss (`get` with a loader): the loader calls `called`,
    /// then gives `value`, which is stored untagged.
    fn get_or_load<'a>(&'a self, key: &'a str, value: &'a str, called: LoaderCalled) -> Fut<'a, String>;
    /// Reads one entry: its value and, when the subject can tell, its tags.
    fn get_entry<'a>(&'a self, key: &'a str) -> Fut<'a, Option<(String, Option<Vec<String>>)>>;
    /// Removes one key; whether it existed.
    fn invalidate<'a>(&'a self, key: &'a str) -> Fut<'a, bool>;
    /// Invalidates every entry written with any of `tags`; the count the subject reports.
    fn invalidate_by_tags<'a>(&'a self, tags: &'a [String]) -> Fut<'a, u64>;
    /// Removes the namespace's entries (and whatever metadata the subject removes).
    fn invalidate_all(&self) -> Fut<'_, u64>;
    /// Whether the subject runs the whole mix (`compute`, reloads, expiry, iteration,
    /// `estimated_size`, `invalidate_all`); the others below fail for a subject that does not.
    fn full_mix(&self) -> bool {
        false
    }
    /// `compute` setting `value`; the tags the value it wrote kept.
    fn compute<'a>(&'a self, key: &'a str, value: &'a str) -> Fut<'a, Vec<String>> {
        let _ = (key, value);
        unsupported(self.name())
    }
    /// A reload (`refresh`) whose loader calls `called` then gives `value`; the value it
    /// returned and the tags it kept.
    fn refresh<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        called: LoaderCalled,
    ) -> Fut<'a, (String, Vec<String>)> {
        let _ = (key, value, called);
        unsupported(self.name())
    }
    /// `refresh` through the public API (it may join a load of the key in flight, or be
    /// joined): the value it returned (its loader's, or that of the load it joined).
    fn refresh_shared<'a>(&'a self, key: &'a str, value: &'a str, called: LoaderCalled) -> Fut<'a, String> {
        let _ = (key, value, called);
        unsupported(self.name())
    }
    /// `bulk_refresh` of the keys of `items`, whose loader calls `called` then gives `items`;
    /// how many values it stored.
    fn bulk_refresh<'a>(&'a self, items: &'a [(String, String)], called: LoaderCalled) -> Fut<'a, u64> {
        let _ = (items, called);
        unsupported(self.name())
    }
    /// `set_expires_after`; whether the key existed.
    fn set_expires_after<'a>(&'a self, key: &'a str, ttl: Duration) -> Fut<'a, bool> {
        let _ = (key, ttl);
        unsupported(self.name())
    }
    /// `estimated_size`.
    fn estimated_size(&self) -> Fut<'_, u64> {
        unsupported(self.name())
    }
    /// The whole `entries()` stream.
    fn entries(&self) -> Fut<'_, Vec<(String, String)>> {
        unsupported(self.name())
    }
    /// The whole `keys()` stream.
    fn keys(&self) -> Fut<'_, Vec<String>> {
        unsupported(self.name())
    }
    /// The full data key of a user key.
    fn data_key(&self, key: &str) -> Vec<u8>;
    /// The full key of a tag.
    fn tag_key(&self, tag: &str) -> Vec<u8>;
    /// `SCAN MATCH` patterns of the namespace's data keys and of its tag keys.
    fn scan_patterns(&self) -> (Vec<u8>, Vec<u8>);
}

fn unsupported<'a, T: Send + 'a>(name: &'static str) -> Fut<'a, T> {
    futures_util::future::ready(Err(format!("not supported by {name}"))).boxed()
}

/// slotcache's `Cache<String, String>` over one namespace.
#[derive(Clone, Debug)]
pub struct SlotcacheSubject {
    provider: Provider,
    cache: Cache<String, String>,
    ns: Namespace,
    iterate: iterate::Variant,
}

impl SlotcacheSubject {
    /// Connects a provider with `config` and opens namespace `name` (default options).
    ///
    /// # Errors
    /// The provider's or the namespace's error, as text.
    pub async fn connect(
        rt: std::sync::Arc<dyn slotcache_rt::Runtime>,
        config: ProviderConfig,
        name: &str,
    ) -> Result<Self, String> {
        let provider = Provider::connect(rt, config).await.map_err(|e| e.to_string())?;
        let cache = provider
            .create_namespace::<String, String>(name, NamespaceOptions::default())
            .map_err(|e| e.to_string())?;
        let ns = Namespace::new(name).map_err(|e| e.to_string())?;
        Ok(Self { provider, cache, ns, iterate: iterate::Variant::Correct })
    }

    /// The same subject, its `entries()` with a test-only bug variant.
    #[must_use]
    pub fn with_iterate_variant(mut self, variant: iterate::Variant) -> Self {
        self.iterate = variant;
        self
    }

    /// The cache.
    #[must_use]
    pub const fn cache(&self) -> &Cache<String, String> {
        &self.cache
    }

    /// Closes the provider.
    pub async fn close(&self) {
        self.provider.close().await;
    }
}

fn strs(tags: &[String]) -> Vec<&str> {
    tags.iter().map(String::as_str).collect()
}

impl Subject for SlotcacheSubject {
    fn name(&self) -> &'static str {
        "slotcache"
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        tags: &'a [String],
        ttl: Option<Duration>,
    ) -> Fut<'a, ()> {
        async move {
            let (k, v, t) = (key.to_owned(), value.to_owned(), strs(tags));
            match ttl {
                Some(d) => self.cache.set_with_ttl(&k, &v, Ttl::After(d), &t).await,
                None => self.cache.set(&k, &v, &t).await,
            }
            .map_err(|e| e.to_string())
        }
        .boxed()
    }

    fn bulk_set<'a>(&'a self, items: &'a [(String, String)], tags: &'a [String]) -> Fut<'a, ()> {
        async move { self.cache.bulk_set(items, &strs(tags)).await.map_err(|e| e.to_string()) }.boxed()
    }

    fn get<'a>(&'a self, key: &'a str) -> Fut<'a, Option<String>> {
        async move { self.cache.get_if_present(&key.to_owned()).await.map_err(|e| e.to_string()) }.boxed()
    }

    fn bulk_get<'a>(&'a self, keys: &'a [String]) -> Fut<'a, Vec<Option<String>>> {
        async move {
            let found = self.cache.bulk_get(keys).await.map_err(|e| e.to_string())?;
            Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
        }
        .boxed()
    }

    fn get_or_load<'a>(&'a self, key: &'a str, value: &'a str, called: LoaderCalled) -> Fut<'a, String> {
        async move {
            let value = value.to_owned();
            let loader = move |_key: String| async move {
                called();
                Ok(value)
            };
            self.cache.get(&key.to_owned(), loader).await.map_err(|e| e.to_string())
        }
        .boxed()
    }

    fn get_entry<'a>(&'a self, key: &'a str) -> Fut<'a, Option<(String, Option<Vec<String>>)>> {
        async move {
            let e = self.cache.get_entry(&key.to_owned()).await.map_err(|e| e.to_string())?;
            Ok(e.map(|e| (e.value, Some(e.tags))))
        }
        .boxed()
    }

    fn invalidate<'a>(&'a self, key: &'a str) -> Fut<'a, bool> {
        async move { self.cache.invalidate(&key.to_owned()).await.map_err(|e| e.to_string()) }.boxed()
    }

    fn invalidate_by_tags<'a>(&'a self, tags: &'a [String]) -> Fut<'a, u64> {
        async move { self.cache.invalidate_by_tags(&strs(tags)).await.map_err(|e| e.to_string()) }.boxed()
    }

    fn invalidate_all(&self) -> Fut<'_, u64> {
        async move { self.cache.invalidate_all().await.map_err(|e| e.to_string()) }.boxed()
    }

    fn full_mix(&self) -> bool {
        true
    }

    fn compute<'a>(&'a self, key: &'a str, value: &'a str) -> Fut<'a, Vec<String>> {
        async move {
            let set = |_: Option<&String>| Compute::Set(value.to_owned());
            let (_, tags) = testing::compute_reporting_tags(&self.cache, &key.to_owned(), set)
                .await
                .map_err(|e| e.to_string())?;
            Ok(tags)
        }
        .boxed()
    }

    fn refresh<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        called: LoaderCalled,
    ) -> Fut<'a, (String, Vec<String>)> {
        async move {
            let value = value.to_owned();
            let loader = move |_key: String| async move {
                called();
                Ok(value)
            };
            testing::refresh_reporting_tags(&self.cache, &key.to_owned(), loader)
                .await
                .map_err(|e| e.to_string())
        }
        .boxed()
    }

    fn refresh_shared<'a>(&'a self, key: &'a str, value: &'a str, called: LoaderCalled) -> Fut<'a, String> {
        let value = value.to_owned();
        let loader = move |_key: String| async move {
            called();
            Ok(value)
        };
        self.cache.refresh(&key.to_owned(), loader).map(|r| r.map_err(|e| e.to_string())).boxed()
    }

    fn bulk_refresh<'a>(&'a self, items: &'a [(String, String)], called: LoaderCalled) -> Fut<'a, u64> {
        async move {
            let keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
            let items = items.to_vec();
            let loader = move |_keys: Vec<String>| async move {
                called();
                Ok(items)
            };
            let n = self.cache.bulk_refresh(keys, loader).await.map_err(|e| e.to_string())?;
            Ok(n as u64)
        }
        .boxed()
    }

    fn set_expires_after<'a>(&'a self, key: &'a str, ttl: Duration) -> Fut<'a, bool> {
        async move { self.cache.set_expires_after(&key.to_owned(), ttl).await.map_err(|e| e.to_string()) }
            .boxed()
    }

    fn estimated_size(&self) -> Fut<'_, u64> {
        async move { self.cache.estimated_size().await.map_err(|e| e.to_string()) }.boxed()
    }

    fn entries(&self) -> Fut<'_, Vec<(String, String)>> {
        async move {
            let stream = match self.iterate {
                iterate::Variant::Correct => self.cache.entries(),
                v => testing::entries_with(&self.cache, v),
            };
            stream.try_collect().await.map_err(|e| e.to_string())
        }
        .boxed()
    }

    fn keys(&self) -> Fut<'_, Vec<String>> {
        async move { self.cache.keys().try_collect().await.map_err(|e| e.to_string()) }.boxed()
    }

    fn data_key(&self, key: &str) -> Vec<u8> {
        self.ns.data_key(key.as_bytes()).bytes().to_vec()
    }

    fn tag_key(&self, tag: &str) -> Vec<u8> {
        self.ns.tag_key(tag.as_bytes()).map(|k| k.bytes().to_vec()).unwrap_or_default()
    }

    fn scan_patterns(&self) -> (Vec<u8>, Vec<u8>) {
        (self.ns.scan_pattern(), self.ns.tag_scan_pattern())
    }
}
