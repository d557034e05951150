//! What a caller asks a search for, and the typed page it gets back.

use super::op::search_query::Query;
use super::search::query::{Filter, Knn, SortBy};

/// Options of `Cache::search` and `Cache::query`.
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

    /// The query for the search machine: full-text `text` (`None` for a filter-only query) with
    /// these options.
    #[must_use]
    pub fn query(&self, text: Option<&str>) -> Query {
        Query {
            text: text.map(str::to_owned),
            filters: self.filters.clone(),
            sort: self.sort.clone(),
            knn: self.knn.clone(),
            offset: self.offset,
            limit: self.limit,
        }
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
