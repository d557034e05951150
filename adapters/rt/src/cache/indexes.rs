//! What a searchable namespace keeps between searches: its index and the indexes known to
//! exist (behind a lock; the decisions are the core's `KnownIndexes`).

use std::sync::{Arc, Mutex};

use slotcache_core::cache::CacheError;
use slotcache_core::cache::op::search_index::{IndexNews, IndexSpec, KnownIndexes};
use slotcache_core::cache::search::SearchSchema;

/// A searchable namespace's index, and the indexes known to exist.
#[derive(Debug)]
pub(crate) struct SearchState {
    pub(crate) spec: Arc<IndexSpec>,
    known: Mutex<KnownIndexes>,
}

impl SearchState {
    pub(crate) fn new(schema: SearchSchema, index_prefix: &str, data_prefix: &[u8]) -> Self {
        let spec =
            IndexSpec { schema, index_prefix: index_prefix.to_owned(), data_prefix: data_prefix.to_vec() };
        Self { spec: Arc::new(spec), known: Mutex::new(KnownIndexes::default()) }
    }

    pub(crate) fn known(&self) -> Result<KnownIndexes, CacheError> {
        Ok(self.known.lock().map_err(|_| CacheError::Closed)?.clone())
    }

    pub(crate) fn learn(&self, news: IndexNews) -> Result<(), CacheError> {
        self.known.lock().map_err(|_| CacheError::Closed)?.apply(news);
        Ok(())
    }

    pub(crate) fn forget(&self) -> Result<(), CacheError> {
        self.known.lock().map_err(|_| CacheError::Closed)?.clear();
        Ok(())
    }
}
