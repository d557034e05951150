//! What the machines found, as the namespace's types: reads, loads, bulk loads, lookups,
//! pages, search results and computes, decoded, with hits, misses, stale entries and warnings
//! counted.

use core::time::Duration;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::cache::op::bulk_load::BulkLoaded;
use crate::cache::op::compute::{ComputeOutcome, Computed};
use crate::cache::op::iterate::Page;
use crate::cache::op::load::{LoadOutcome, LoadResult};
use crate::cache::op::lookup::Lookup;
use crate::cache::op::read::{Found, Reads};
#[cfg(feature = "search")]
use crate::cache::op::search_query;
use crate::cache::op::walk::PageItems;
#[cfg(feature = "search")]
use crate::cache::query::SearchResults;
use crate::cache::stats::Read;

use super::Typed;

/// What a read found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryInfo<V> {
    /// The value.
    pub value: V,
    /// Time left before it expires; `None` when it never expires.
    pub ttl: Option<Duration>,
    /// Its tags.
    pub tags: Vec<String>,
    /// When `get` starts reloading it in the background.
    pub refreshable_at: Option<SystemTime>,
}

impl<K, V: 'static> Typed<K, V> {
    /// A load's value, its stale reads and warnings counted (and the warnings logged).
    ///
    /// # Errors
    /// The loader's (or the tag read's) error; an entry stored meanwhile that does not decode.
    pub fn loaded(&self, outcome: LoadOutcome<V>) -> Result<V, CacheError> {
        self.counters.stale(outcome.stale);
        self.counters.load_warnings(&self.name, outcome.warnings);
        match outcome.result? {
            LoadResult::Found(entry) => self.decode(&entry),
            LoadResult::Loaded(v) => Ok(v),
        }
    }

    /// Adds a bulk load's outcome to `found`: the hits of `keys` when they were read after
    /// the loader call, and what it loaded; counts stale reads and a failure to store (logged).
    ///
    /// # Errors
    /// A hit does not decode.
    pub fn bulk_loaded(
        &self,
        keys: &[K],
        outcome: BulkLoaded<Vec<(K, V)>>,
        found: &mut HashMap<K, V>,
    ) -> Result<(), CacheError>
    where
        K: Clone + Eq + Hash,
    {
        self.counters.stale(outcome.stale);
        if let Some(hits) = outcome.hits {
            self.take_hits(Read::BulkGetWith, keys, hits, found)?;
        }
        if let Some(e) = outcome.store_error {
            self.counters.store_failed(&self.name, &e, "storing bulk-loaded values failed");
        }
        found.extend(outcome.loaded.unwrap_or_default());
        Ok(())
    }

    /// What `get` does with a lookup, counted: `Some((value, reload))` for a hit (`reload`: load
    /// it again in the background), `None` to load it (a miss, or a failed read, logged: see
    /// [`Lookup::or_unavailable`]).
    ///
    /// # Errors
    /// The hit does not decode; [`CacheError::Closed`].
    pub fn looked_up(&self, lookup: Result<Lookup, CacheError>) -> Result<Option<(V, bool)>, CacheError> {
        match Lookup::or_unavailable(lookup)? {
            Lookup::Hit { entry, reload } => {
                self.counters.read(Read::Get, true);
                Ok(Some((self.decode(&entry)?, reload)))
            }
            Lookup::Miss { stale } => {
                self.counters.stale(u64::from(stale));
                self.counters.read(Read::Get, false);
                Ok(None)
            }
            Lookup::Unavailable(e) => {
                tracing::warn!(namespace = %self.name, error = %e, "read failed; loading instead");
                Ok(None)
            }
        }
    }

    /// What reads found, their stale entries counted.
    #[must_use]
    pub fn reads(&self, reads: Reads) -> Vec<Option<Found>> {
        self.counters.stale(reads.stale);
        reads.found
    }

    /// The value a read of one key found (`get_if_present`), counted as a hit or a miss.
    ///
    /// # Errors
    /// The value does not decode.
    pub fn present(&self, found: Option<Found>) -> Result<Option<V>, CacheError> {
        self.counters.read(Read::GetIfPresent, found.is_some());
        found.map(|f| self.decode(&f.entry)).transpose()
    }

    /// The values a read of `keys` found (one result per key, `bulk_get`), decoded; hits and
    /// misses counted.
    ///
    /// # Errors
    /// A value does not decode.
    pub fn hits(&self, keys: &[K], found: Vec<Option<Found>>) -> Result<HashMap<K, V>, CacheError>
    where
        K: Clone + Eq + Hash,
    {
        let mut out = HashMap::with_capacity(keys.len());
        self.take_hits(
            Read::BulkGet,
            keys,
            found.into_iter().map(|f| f.map(|f| f.entry)).collect(),
            &mut out,
        )?;
        Ok(out)
    }

    /// Decodes the hits of `keys` into `found`, counting hits and misses as reads by `read`;
    /// returns the misses.
    ///
    /// # Errors
    /// A hit does not decode.
    pub fn take_hits(
        &self,
        read: Read,
        keys: &[K],
        hits: Vec<Option<Entry>>,
        found: &mut HashMap<K, V>,
    ) -> Result<Vec<K>, CacheError>
    where
        K: Clone + Eq + Hash,
    {
        let mut misses = Vec::new();
        for (k, e) in keys.iter().zip(hits) {
            self.counters.read(read, e.is_some());
            match e {
                Some(e) => drop(found.insert(k.clone(), self.decode(&e)?)),
                None => misses.push(k.clone()),
            }
        }
        Ok(misses)
    }

    /// What a read of one key found, counted as a read by `get_entry` when `count`.
    ///
    /// # Errors
    /// The value does not decode.
    pub fn entry_info(&self, found: Option<Found>, count: bool) -> Result<Option<EntryInfo<V>>, CacheError> {
        if count {
            self.counters.read(Read::GetEntry, found.is_some());
        }
        let Some(Found { entry, ttl_ms }) = found else { return Ok(None) };
        Ok(Some(EntryInfo {
            value: self.decode(&entry)?,
            ttl: ttl_ms.map(Duration::from_millis),
            tags: entry.tags.iter().map(|t| String::from_utf8_lossy(&t.tag).into_owned()).collect(),
            refreshable_at: entry.refresh_at_ms.map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
        }))
    }

    /// The keys of a page, typed (a key that does not decode is an error item).
    ///
    /// # Errors
    /// Never: the page itself does not fail.
    pub fn page_keys(&self, page: Page) -> PageItems<K> {
        Ok(page.keys.iter().map(|k| self.user_key(k)).collect())
    }

    /// The fresh entries of a page, typed (its stale entries counted).
    ///
    /// # Errors
    /// A key or value that does not decode fails the page.
    pub fn page_entries(&self, page: Page) -> PageItems<(K, V)> {
        self.counters.stale(page.stale);
        let mut out = Vec::with_capacity(page.keys.len());
        for (k, e) in page.keys.into_iter().zip(page.entries) {
            if let Some(e) = e {
                out.push(Ok((self.user_key(&k)?, self.decode(&e)?)));
            }
        }
        Ok(out)
    }

    /// A search's page, typed (its stale entries counted).
    ///
    /// # Errors
    /// A key or value that does not decode.
    #[cfg(feature = "search")]
    pub fn search_results(&self, found: search_query::Found) -> Result<SearchResults<K, V>, CacheError> {
        self.counters.stale(found.stale);
        let mut items = Vec::with_capacity(found.items.len());
        for (k, e) in found.items {
            items.push((self.user_key(&k)?, self.decode(&e)?));
        }
        Ok(SearchResults { total: found.total, items, offset: found.offset, limit: found.limit })
    }

    /// What a compute left stored (`None` after a delete, or when nothing was), its stale
    /// reads counted.
    pub fn computed(&self, outcome: ComputeOutcome<Option<V>>) -> Option<V> {
        self.counters.stale(outcome.stale);
        match outcome.computed {
            Computed::Kept(v) | Computed::Written(v) => v,
            Computed::Deleted => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::options::NamespaceOptions;
    use crate::cache::typed::tests::typed;

    fn found(json: &'static str) -> Option<Found> {
        Some(Found { entry: Entry::plain(bytes::Bytes::from_static(json.as_bytes())), ttl_ms: None })
    }

    /// Reads are decoded and counted: stale entries, hits and misses.
    #[test]
    fn reads_are_decoded_and_counted() {
        let t = typed(NamespaceOptions::default());
        let read = t.reads(Reads { found: vec![found("\"a\""), None], stale: 1 });
        let keys = ["a".to_string(), "b".to_string()];
        let hits = t.hits(&keys, read).expect("decodes");
        assert_eq!((hits.len(), hits.get("a").map(String::as_str)), (1, Some("a")));
        assert_eq!(t.present(found("\"x\"")), Ok(Some("x".to_string())));
        assert_eq!(t.present(None), Ok(None));
        assert!(matches!(t.present(found("not json")), Err(CacheError::Codec(_))));
        let s = t.counters().snapshot();
        assert_eq!((s.stale, s.hits, s.misses), (1, 3, 2));
        let by = |r| t.counters().reads(r);
        assert_eq!((by(Read::BulkGet), by(Read::GetIfPresent), by(Read::Get)), ((1, 1), (2, 1), (0, 0)));
    }

    #[test]
    fn a_compute_leaves_what_it_kept_or_wrote_and_counts_stale_reads() {
        let t = typed(NamespaceOptions::default());
        let out = |computed, stale| ComputeOutcome { computed, attempts: 1, stale, kept_tags: Vec::new() };
        assert_eq!(t.computed(out(Computed::Written(Some("new".into())), 2)), Some("new".into()));
        assert_eq!(t.computed(out(Computed::Kept(Some("old".into())), 0)), Some("old".into()));
        assert_eq!(t.computed(out(Computed::Deleted, 1)), None);
        assert_eq!(t.counters().snapshot().stale, 3);
    }
}
