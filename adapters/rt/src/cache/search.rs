//! Search and query over the search module on every primary: the typed API over the core's
//! machines (`slotcache_core::cache::op::{search_index, search_query, search_drop}`), which
//! hold the protocol.
//!
//! See `slotcache_core::cache::search` for why each primary has its own index, and
//! `docs/search.md` for what is supported and how it differs from valkey-search.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use slotcache_core::cache::CacheError;
use slotcache_core::cache::op::search_drop::DropIndex;
use slotcache_core::cache::op::search_index::{EnsureIndex, IndexNews, IndexSpec, KnownIndexes};
use slotcache_core::cache::op::search_query::{Query, SearchQuery};
use slotcache_core::cache::search::query::{Knn, SortBy};
use slotcache_core::cache::search::{Filter, SearchSchema};

use super::namespace::Cache;

/// Options of [`Cache::search`] and [`Cache::query`].
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct QueryOptions {
    /// Conditions on schema fields, all of which must hold.
    pub filters: Vec<Filter>,
    /// Sort by a sortable field; without it, full-text results come by score and filter-only
    /// results in a stable shard-by-shard order.
    pub sort: Option<SortBy>,
    /// Results to skip (over the whole cluster).
    pub offset: usize,
    /// Results to return; 0 means 10.
    pub limit: usize,
    /// Nearest neighbours on a VECTOR field (RediSearch): the `k` documents nearest to the
    /// vector over the whole cluster, among those matching the filters, nearest first (then
    /// paginated). Cannot be combined with `sort`.
    pub knn: Option<Knn>,
}

impl QueryOptions {
    /// No filter, first 10 results.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a filter.
    #[must_use]
    pub fn filter(mut self, f: Filter) -> Self {
        self.filters.push(f);
        self
    }

    /// Sorts by `sort`.
    #[must_use]
    pub fn sort(mut self, sort: SortBy) -> Self {
        self.sort = Some(sort);
        self
    }

    /// Asks for the nearest neighbours of a vector.
    #[must_use]
    pub fn nearest(mut self, knn: Knn) -> Self {
        self.knn = Some(knn);
        self
    }

    /// Sets the page.
    #[must_use]
    pub const fn page(mut self, offset: usize, limit: usize) -> Self {
        self.offset = offset;
        self.limit = limit;
        self
    }
}

/// A page of results over the whole cluster.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SearchResults<K, V> {
    /// Matches over every shard (entries made stale by a tag invalidation included until they
    /// are deleted).
    pub total: u64,
    /// The page: keys and values, in order. Entries made stale by a tag invalidation are left
    /// out (the page may then be shorter).
    pub items: Vec<(K, V)>,
    /// The offset asked for.
    pub offset: usize,
    /// The limit used.
    pub limit: usize,
}

/// What a searchable namespace keeps: its index and the indexes known to exist.
#[derive(Debug)]
pub(crate) struct SearchState {
    spec: Arc<IndexSpec>,
    known: Mutex<KnownIndexes>,
}

impl SearchState {
    pub(crate) fn new(schema: SearchSchema, index_prefix: &str, data_prefix: &[u8]) -> Self {
        let spec =
            IndexSpec { schema, index_prefix: index_prefix.to_owned(), data_prefix: data_prefix.to_vec() };
        Self { spec: Arc::new(spec), known: Mutex::new(KnownIndexes::default()) }
    }

    fn known(&self) -> Result<KnownIndexes, CacheError> {
        Ok(self.known.lock().map_err(|_| CacheError::Closed)?.clone())
    }

    fn learn(&self, news: IndexNews) -> Result<(), CacheError> {
        self.known.lock().map_err(|_| CacheError::Closed)?.apply(news);
        Ok(())
    }
}

/// Checks a searchable namespace's options when it is created.
pub(crate) fn check_options(schema: &SearchSchema, codec: &str, transforms: usize) -> Result<(), CacheError> {
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

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    fn state(&self, what: &str) -> Result<&SearchState, CacheError> {
        self.inner.search.as_deref().ok_or_else(|| {
            CacheError::SearchNotSupported(format!(
                "namespace {} has no search schema: set NamespaceOptions::search to enable {what}",
                self.inner.name
            ))
        })
    }

    /// Makes sure every primary has this namespace's index with this schema: creates it where
    /// it is missing (and waits until existing documents are indexed), and fails on an index
    /// built with another schema.
    ///
    /// Searches call this themselves; call it up front to pay the cost before the first one.
    ///
    /// # Errors
    /// [`CacheError::SearchNotSupported`] without a schema or without the module;
    /// [`CacheError::Search`] with [`SearchError::SchemaMismatch`] for a differing index.
    ///
    /// [`SearchError::SchemaMismatch`]: slotcache_core::cache::search::SearchError::SchemaMismatch
    pub async fn ensure_search_index(&self) -> Result<(), CacheError> {
        let st = self.state("search")?;
        let d = self.deadline("ensure_search_index", self.inner.settings.config.search_timeout);
        let ensured = self.inner.exec.drive(EnsureIndex::new(st.spec.clone(), st.known()?, d)).await?;
        st.learn(ensured.news)
    }

    /// Full-text search for `text` over the schema's TEXT fields (RediSearch only), with
    /// `options`' filters, sort and page, over every primary.
    ///
    /// # Errors
    /// As [`Cache::query`]; [`CacheError::Search`] when the schema has no TEXT field.
    pub async fn search(
        &self,
        text: &str,
        options: &QueryOptions,
    ) -> Result<SearchResults<K, V>, CacheError> {
        self.run_search("search", Some(text), options).await
    }

    /// The entries matching every filter, sorted and paginated over the whole cluster.
    ///
    /// # Errors
    /// [`CacheError::SearchNotSupported`] (no schema, or no module on the cluster);
    /// [`CacheError::Search`] for an invalid filter (never silently widened), a schema
    /// mismatch or a server error; [`CacheError::Timeout`] past `search_timeout`.
    pub async fn query(&self, options: &QueryOptions) -> Result<SearchResults<K, V>, CacheError> {
        self.run_search("query", None, options).await
    }

    async fn run_search(
        &self,
        op: &'static str,
        text: Option<&str>,
        options: &QueryOptions,
    ) -> Result<SearchResults<K, V>, CacheError> {
        let st = self.state(op)?;
        let query = Query {
            text: text.map(str::to_owned),
            filters: options.filters.clone(),
            sort: options.sort.clone(),
            knn: options.knn.clone(),
            offset: options.offset,
            limit: options.limit,
        };
        let d = self.deadline(op, self.inner.settings.config.search_timeout);
        let machine = SearchQuery::new(self.inner.scope.clone(), st.spec.clone(), st.known()?, d, query)?;
        let found = self.inner.exec.drive(machine).await?;
        st.learn(found.news)?;
        self.inner.counters.stale.fetch_add(found.stale, Ordering::Relaxed);
        let mut items = Vec::with_capacity(found.items.len());
        for (k, e) in found.items {
            items.push((self.user_key(&k)?, self.decode_value(&e)?));
        }
        Ok(SearchResults { total: found.total, items, offset: found.offset, limit: found.limit })
    }

    /// Drops this namespace's index on every primary (its documents stay). The next search
    /// creates it again.
    ///
    /// # Errors
    /// [`CacheError::SearchNotSupported`]; a cluster error.
    pub async fn drop_search_index(&self) -> Result<(), CacheError> {
        let st = self.state("drop_search_index")?;
        let d = self.deadline("drop_search_index", self.inner.settings.config.search_timeout);
        st.known.lock().map_err(|_| CacheError::Closed)?.clear();
        self.inner.exec.drive(DropIndex::new(st.spec.clone(), d)).await
    }
}

impl<K, V> super::namespace::NamespaceOptions<K, V> {
    /// These options with a search schema: the namespace stores JSON documents and can be
    /// searched (see [`Cache::query`]).
    #[must_use]
    pub fn with_search(mut self, schema: SearchSchema) -> Self {
        self.search = Some(schema);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searchable_namespaces_store_plain_json() {
        assert!(check_options(&SearchSchema::new().tag("a", false), "json", 0).is_ok());
        assert!(matches!(
            check_options(&SearchSchema::new().tag("a", false), "binary", 0),
            Err(CacheError::Config(_))
        ));
        assert!(matches!(
            check_options(&SearchSchema::new().tag("a", false), "json", 1),
            Err(CacheError::Config(_))
        ));
        assert!(matches!(check_options(&SearchSchema::new(), "json", 0), Err(CacheError::Search(_))));
    }
}
