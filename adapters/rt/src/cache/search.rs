//! Search and query over the search module on every primary: the typed API over the core's
//! machines (`slotcache_core::cache::op::{search_index, search_query, search_drop}`), which
//! hold the protocol.
//!
//! See `slotcache_core::cache::search` for why each primary has its own index, and
//! `docs/search.md` for what is supported and how it differs from valkey-search.

use std::sync::{Arc, MutexGuard};

use slotcache_core::cache::op::search_drop::DropIndex;
use slotcache_core::cache::op::search_index::{EnsureIndex, IndexSpec, KnownIndexes};
use slotcache_core::cache::op::search_query::{Found, SearchQuery};
use slotcache_core::cache::search::SearchSchema;
use slotcache_core::cache::{CacheError, QueryOptions, SearchResults};

use super::namespace::Cache;
use crate::observe::Op;

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    /// Whether the namespace has a search schema ([`NamespaceOptions::search`]), so that
    /// [`Cache::query`] and [`Cache::search`] can run. Asks the cluster nothing: whether the
    /// search module is there shows at the first search ([`CacheError::SearchNotSupported`]).
    ///
    /// [`NamespaceOptions::search`]: super::NamespaceOptions::search
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Clone, Debug, Serialize, Deserialize)]
    /// # struct Person { name: String, role: String, age: u32 }
    /// # type People = slotcache_rt::Cache<String, Person>;
    /// # async fn example(people: People) -> Result<(), slotcache_rt::CacheError> {
    /// if !people.supports_search() {
    ///     println!("created without a schema: query and search fail with SearchNotSupported");
    /// }
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn supports_search(&self) -> bool {
        self.inner.typed.index().is_some()
    }

    /// The namespace's search schema, if it has one.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Clone, Debug, Serialize, Deserialize)]
    /// # struct Person { name: String, role: String, age: u32 }
    /// # type People = slotcache_rt::Cache<String, Person>;
    /// # async fn example(people: People) -> Result<(), slotcache_rt::CacheError> {
    /// if let Some(schema) = people.schema() {
    ///     println!("{schema:?}");
    /// }
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn schema(&self) -> Option<&SearchSchema> {
        self.inner.typed.index().map(|i| &i.schema)
    }

    /// The search indexes known to exist (never held across an await).
    fn known(&self) -> Result<MutexGuard<'_, KnownIndexes>, CacheError> {
        self.inner.known.lock().map_err(|_| CacheError::Closed)
    }

    /// The search index (for operation `what`) and the indexes known to exist now.
    fn index(&self, what: &str) -> Result<(Arc<IndexSpec>, KnownIndexes), CacheError> {
        Ok((self.inner.typed.searchable(what)?.clone(), self.known()?.clone()))
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Clone, Debug, Serialize, Deserialize)]
    /// # struct Person { name: String, role: String, age: u32 }
    /// # type People = slotcache_rt::Cache<String, Person>;
    /// # async fn example(people: People) -> Result<(), slotcache_rt::CacheError> {
    /// // At start-up: creates the index on every primary where it is missing.
    /// people.ensure_search_index().await?;
    /// # Ok(()) }
    /// ```
    pub async fn ensure_search_index(&self) -> Result<(), CacheError> {
        let ensure = |d| self.index("search").map(|(index, known)| EnsureIndex::new(index, known, d));
        self.run(Op::EnsureSearchIndex, ensure, |done| self.known().map(|mut k| k.apply(done.news))).await
    }

    /// Full-text search for `text` over the schema's TEXT fields (RediSearch only), with
    /// `options`' filters, sort and page, over every primary.
    ///
    /// # Errors
    /// As [`Cache::query`]; [`CacheError::Search`] when the schema has no TEXT field.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Clone, Debug, Serialize, Deserialize)]
    /// # struct Person { name: String, role: String, age: u32 }
    /// # type People = slotcache_rt::Cache<String, Person>;
    /// # async fn example(people: People) -> Result<(), slotcache_rt::CacheError> {
    /// use slotcache_rt::{Filter, QueryOptions};
    ///
    /// let admins = QueryOptions::new().filter(Filter::eq("role", "admin")).page(0, 10);
    /// let found = people.search("rust", &admins).await?;
    /// for (key, person) in &found.items {
    ///     println!("{key}: {}", person.name);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn search(
        &self,
        text: &str,
        options: &QueryOptions,
    ) -> Result<SearchResults<K, V>, CacheError> {
        self.run_search(Op::Search, Some(text), options).await
    }

    /// The entries matching every filter, sorted and paginated over the whole cluster.
    ///
    /// # Errors
    /// [`CacheError::SearchNotSupported`] (no schema, or no module on the cluster);
    /// [`CacheError::Search`] for an invalid filter (never silently widened), a schema
    /// mismatch or a server error; [`CacheError::Timeout`] past `search_timeout`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Clone, Debug, Serialize, Deserialize)]
    /// # struct Person { name: String, role: String, age: u32 }
    /// # type People = slotcache_rt::Cache<String, Person>;
    /// # async fn example(people: People) -> Result<(), slotcache_rt::CacheError> {
    /// use slotcache_rt::{Filter, QueryOptions, SortBy, SortOrder};
    ///
    /// let admins = people
    ///     .query(
    ///         &QueryOptions::new()
    ///             .filter(Filter::eq("role", "admin"))
    ///             .sort(SortBy { field: "age".into(), order: SortOrder::Desc })
    ///             .page(0, 10),
    ///     )
    ///     .await?;
    /// println!("{} admins; the oldest first:", admins.total);
    /// for (key, person) in &admins.items {
    ///     println!("{key}: {} ({})", person.name, person.age);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn query(&self, options: &QueryOptions) -> Result<SearchResults<K, V>, CacheError> {
        self.run_search(Op::Query, None, options).await
    }

    async fn run_search(
        &self,
        op: Op,
        text: Option<&str>,
        options: &QueryOptions,
    ) -> Result<SearchResults<K, V>, CacheError> {
        let typed = &self.inner.typed;
        let query = |d| {
            let (index, known) = self.index(op.name())?;
            SearchQuery::new(typed.scope(), index, known, d, options.query(text))
        };
        let results = |mut found: Found| {
            self.known()?.apply(core::mem::take(&mut found.news));
            typed.search_results(found)
        };
        self.run(op, query, results).await
    }

    /// Drops this namespace's index on every primary (its documents stay). The next search
    /// creates it again.
    ///
    /// # Errors
    /// [`CacheError::SearchNotSupported`]; a cluster error.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Clone, Debug, Serialize, Deserialize)]
    /// # struct Person { name: String, role: String, age: u32 }
    /// # type People = slotcache_rt::Cache<String, Person>;
    /// # async fn example(people: People) -> Result<(), slotcache_rt::CacheError> {
    /// people.drop_search_index().await?; // the documents stay; the next search creates it again
    /// # Ok(()) }
    /// ```
    pub async fn drop_search_index(&self) -> Result<(), CacheError> {
        let drop_index = |d| {
            let index = self.inner.typed.searchable("drop_search_index")?.clone();
            self.known()?.clear();
            Ok(DropIndex::new(index, d))
        };
        self.run(Op::DropSearchIndex, drop_index, Ok).await
    }
}
