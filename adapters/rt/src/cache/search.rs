//! Search and query over the search module on every primary, and the JSON-document storage of
//! searchable namespaces (the hooks the read and write paths call).
//!
//! See `slotcache_core::cache::search` for why each primary has its own index, and
//! `docs/search.md` for what is supported and how it differs from valkey-search.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use slotcache_core::cache::scripts::Script;
use slotcache_core::cache::search::doc::{self, CAS_JSON};
use slotcache_core::cache::search::query::{self, Knn, SortBy, SortOrder};
use slotcache_core::cache::search::reply::{self, ShardPage};
use slotcache_core::cache::search::{self as core_search, Filter, SearchError, SearchSchema};
use slotcache_core::cache::{CacheError, Entry, plan, scripts};
use slotcache_core::client::{Cmd, RequestError};
use slotcache_core::keys::EncodedKey;
use slotcache_core::{Slot, Value};

use super::exec::Deadline;
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

/// What a searchable namespace keeps: its schema and the indexes known to exist.
#[derive(Debug)]
pub(crate) struct SearchState {
    pub(crate) schema: SearchSchema,
    ready: Mutex<HashSet<Vec<u8>>>,
}

impl SearchState {
    pub(crate) fn new(schema: SearchSchema) -> Self {
        Self { schema, ready: Mutex::new(HashSet::new()) }
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

fn is_unknown_command(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("unknown command") || m.contains("unknown redis command")
}

fn is_unknown_index(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("unknown index")
        || m.contains("no such index")
        || (m.contains("index") && m.contains("not found"))
}

fn not_supported() -> CacheError {
    CacheError::SearchNotSupported(
        "the cluster has no search module (FT.*): load RediSearch + RedisJSON or valkey-search + valkey-json"
            .into(),
    )
}

/// A pipelined reply: the value, or the server's error text (to classify); a timeout or a
/// connection failure is the whole call's error.
fn value_result(r: Result<Value, RequestError>, d: &Deadline) -> Result<Result<Value, String>, CacheError> {
    match r {
        Ok(Value::Error(e)) => Ok(Err(String::from_utf8_lossy(&e).into_owned())),
        Ok(v) => Ok(Ok(v)),
        Err(RequestError::Server(e)) => Ok(Err(e.to_string())),
        Err(RequestError::Timeout { .. }) => Err(d.timeout_error()),
        Err(e) => Err(CacheError::Request(e)),
    }
}

/// `CLUSTER SLOTS` → one slot per primary (its lowest), sorted: the shards to search.
fn shard_slots(v: &Value) -> Result<Vec<Slot>, CacheError> {
    let bad = || CacheError::UnexpectedReply {
        command: "CLUSTER SLOTS",
        got: format!("{v:?}").chars().take(200).collect(),
    };
    let Value::Array(ranges) = v else { return Err(bad()) };
    let mut by_primary: Vec<(Bytes, u16)> = Vec::new();
    for r in ranges {
        let Value::Array(parts) = r else { return Err(bad()) };
        let start =
            parts.first().and_then(Value::as_int).and_then(|s| u16::try_from(s).ok()).ok_or_else(bad)?;
        let Some(Value::Array(master)) = parts.get(2) else { return Err(bad()) };
        // host and port identify the primary (the id is not sent by every server version).
        let host = master.first().and_then(Value::as_bytes).cloned().unwrap_or_default();
        let port = master.get(1).and_then(Value::as_int).unwrap_or(0);
        let id = Bytes::from(format!("{}:{port}", String::from_utf8_lossy(&host)));
        match by_primary.iter_mut().find(|(p, _)| *p == id) {
            Some((_, s)) => *s = (*s).min(start),
            None => by_primary.push((id, start)),
        }
    }
    let mut slots: Vec<Slot> = by_primary.into_iter().filter_map(|(_, s)| Slot::new(s)).collect();
    slots.sort();
    if slots.is_empty() {
        return Err(bad());
    }
    Ok(slots)
}

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> Cache<K, V> {
    // ---- storage hooks (called from read.rs, write.rs, compute.rs, iter.rs, tags.rs) ----

    /// Whether this namespace stores JSON documents (it has a search schema).
    pub(crate) fn is_json(&self) -> bool {
        self.inner.search.is_some()
    }

    /// The read of one stored entry: `GET`, or `JSON.GET k $` for documents.
    pub(crate) fn read_cmd(&self, key: &EncodedKey, primary: bool) -> Cmd {
        if self.is_json() {
            let c = Cmd::new("JSON.GET").arg(key.bytes().clone()).arg("$").with_slot(key.slot());
            if primary { c.with_read_only(false) } else { c }
        } else if primary {
            plan::get_primary(key)
        } else {
            plan::get(key)
        }
    }

    /// `MGET keys...`, or `JSON.MGET keys... $`.
    pub(crate) fn mget_cmd(&self, keys: impl IntoIterator<Item = Bytes>) -> Cmd {
        let mut c = Cmd::new(if self.is_json() { "JSON.MGET" } else { "MGET" });
        for k in keys {
            c.push_arg(k);
        }
        if self.is_json() { c.arg("$") } else { c }
    }

    /// The bytes to store for `entry` (size-checked).
    pub(crate) fn stored_form(&self, entry: &Entry) -> Result<Bytes, CacheError> {
        let b = if self.is_json() { doc::to_document(entry)? } else { entry.encode()? };
        self.check_size(&b)?;
        Ok(b)
    }

    /// The compare-and-set script for this storage mode.
    pub(crate) fn cas_script(&self) -> &'static Script {
        if self.is_json() { &CAS_JSON } else { &scripts::CAS }
    }

    // ---- search ----

    fn state(&self, what: &str) -> Result<&SearchState, CacheError> {
        self.inner.search.as_deref().ok_or_else(|| {
            CacheError::SearchNotSupported(format!(
                "namespace {} has no search schema: set NamespaceOptions::search to enable {what}",
                self.inner.name
            ))
        })
    }

    fn index_name(&self, slot: Slot) -> Vec<u8> {
        core_search::index_name(&self.inner.settings.config.index_prefix, self.inner.ns.data_prefix(), slot)
    }

    async fn shards(&self, d: &Deadline) -> Result<Vec<Slot>, CacheError> {
        let v = self.inner.exec.one(Cmd::new("CLUSTER").arg("SLOTS").into(), d).await?;
        shard_slots(&v)
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
    pub async fn ensure_search_index(&self) -> Result<(), CacheError> {
        let d = self.deadline("ensure_search_index", self.inner.settings.config.search_timeout);
        let shards = self.shards(&d).await?;
        self.ensure_on(&shards, &d).await
    }

    async fn ensure_on(&self, shards: &[Slot], d: &Deadline) -> Result<(), CacheError> {
        let st = self.state("search")?;
        let prefix = self.inner.ns.data_prefix().to_vec();
        let missing: Vec<Slot> = {
            let ready = st.ready.lock().map_err(|_| CacheError::Closed)?;
            shards.iter().copied().filter(|s| !ready.contains(&self.index_name(*s))).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let info = |s: Slot| Cmd::new("FT.INFO").arg(Bytes::from(self.index_name(s))).with_slot(s);
        let replies = self.inner.exec.run(missing.iter().map(|s| info(*s).into()).collect(), d).await?;
        let mut create = Vec::new();
        for (s, r) in missing.iter().zip(replies) {
            match value_result(r, d)? {
                Ok(v) => {
                    st.schema.check_info(&v, &prefix)?;
                    self.mark_ready(*s)?;
                }
                Err(m) if is_unknown_command(&m) => return Err(not_supported()),
                Err(m) if is_unknown_index(&m) => create.push(*s),
                Err(m) => return Err(SearchError::Server(m).into()),
            }
        }
        if create.is_empty() {
            return Ok(());
        }
        let mut steps = Vec::with_capacity(create.len());
        for s in &create {
            steps.push(st.schema.create_command(&self.index_name(*s), &prefix)?.with_slot(*s).into());
        }
        for r in self.inner.exec.run(steps, d).await? {
            match value_result(r, d)? {
                Ok(_) => {}
                Err(m) if is_unknown_command(&m) => return Err(not_supported()),
                // Another process created it meanwhile: compared below.
                Err(m) if m.to_ascii_lowercase().contains("already exists") => {}
                Err(m) => return Err(SearchError::Server(m).into()),
            }
        }
        // Wait (bounded by the deadline) until each new index has indexed what was there, and
        // check the schema of indexes another process may have created.
        let mut pending = create;
        while !pending.is_empty() {
            let replies = self.inner.exec.run(pending.iter().map(|s| info(*s).into()).collect(), d).await?;
            let mut still = Vec::new();
            for (s, r) in pending.iter().zip(replies) {
                let v = value_result(r, d)?.map_err(SearchError::Server)?;
                st.schema.check_info(&v, &prefix)?;
                if indexing(&v) {
                    still.push(*s);
                } else {
                    self.mark_ready(*s)?;
                }
            }
            pending = still;
            if !pending.is_empty() {
                d.remaining(self.inner.exec.now())?;
                self.inner.exec.sleep(Duration::from_millis(10)).await;
            }
        }
        Ok(())
    }

    fn mark_ready(&self, s: Slot) -> Result<(), CacheError> {
        let st = self.state("search")?;
        st.ready.lock().map_err(|_| CacheError::Closed)?.insert(self.index_name(s));
        Ok(())
    }

    fn forget_indexes(&self) {
        if let Some(st) = self.inner.search.as_deref() {
            if let Ok(mut r) = st.ready.lock() {
                r.clear();
            }
        }
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
        let limit = if options.limit == 0 { 10 } else { options.limit };
        let window = options
            .offset
            .checked_add(limit)
            .ok_or_else(|| SearchError::InvalidFilter("offset + limit overflows".into()))?;
        let q = query::build_query(&st.schema, text, &options.filters)?;
        let by_score = text.is_some_and(|t| !query::text_terms(t).is_empty()) && options.knn.is_none();
        let d = self.deadline(op, self.inner.settings.config.search_timeout);
        if options.knn.is_some() && options.sort.is_some() {
            return Err(SearchError::InvalidFilter(
                "nearest-neighbour results are sorted by distance".into(),
            )
            .into());
        }
        // Per shard: its first `window` results; with KNN, at most k of them count.
        let (window, keep) = match &options.knn {
            Some(knn) => (window.min(knn.k), knn.k),
            None => (window, usize::MAX),
        };
        let command = |index: &[u8]| match &options.knn {
            Some(knn) => query::knn_command(&st.schema, index, &q, knn, window),
            None => query::search_command(&st.schema, index, &q, options.sort.as_ref(), by_score, window),
        };
        // Validate the command before any round trip.
        command(b"")?;
        let sort_order =
            if options.knn.is_some() { Some(SortOrder::Asc) } else { options.sort.as_ref().map(|s| s.order) };
        let mut retried = false;
        loop {
            let shards = self.shards(&d).await?;
            self.ensure_on(&shards, &d).await?;
            let mut steps = Vec::with_capacity(shards.len());
            for s in &shards {
                let c = command(&self.index_name(*s))?;
                steps.push(c.with_slot(*s).into());
            }
            let replies = self.inner.exec.run(steps, &d).await?;
            let mut pages: Vec<ShardPage> = Vec::with_capacity(shards.len());
            let mut lost_index = false;
            for r in replies {
                match value_result(r, &d)? {
                    Ok(v) => pages.push(reply::parse_search(&v, by_score, sort_order.is_some())?),
                    Err(m) if is_unknown_command(&m) => return Err(not_supported()),
                    Err(m) if is_unknown_index(&m) => lost_index = true,
                    Err(m) => return Err(SearchError::Server(m).into()),
                }
            }
            if lost_index {
                // Dropped behind our back (or the shard's slots moved): create again, once.
                self.forget_indexes();
                if retried {
                    return Err(
                        SearchError::Server("search index missing after re-creating it".into()).into()
                    );
                }
                retried = true;
                continue;
            }
            let (total, hits) = reply::merge(pages, sort_order, by_score, 0, keep.min(window));
            let total = total.min(u64::try_from(keep).unwrap_or(u64::MAX));
            let hits: Vec<_> = hits.into_iter().skip(options.offset).take(limit).collect();
            let keys: Vec<Bytes> = hits.into_iter().map(|h| h.key).collect();
            // The documents, read like `bulk_get` does (split per slot by the client).
            let stored = if keys.is_empty() {
                Vec::new()
            } else {
                let v = self.inner.exec.one(self.mget_cmd(keys.iter().cloned()).into(), &d).await?;
                let Value::Array(docs) = v else {
                    return Err(CacheError::UnexpectedReply { command: "JSON.MGET", got: format!("{v:?}") });
                };
                if docs.len() != keys.len() {
                    return Err(CacheError::UnexpectedReply {
                        command: "JSON.MGET",
                        got: format!("{} values", docs.len()),
                    });
                }
                docs.into_iter().map(plan::read_stored).collect::<Result<Vec<_>, _>>()?
            };
            // Documents deleted or expired since the search are left out, like stale ones.
            let entries = self.fresh_entries(stored, &d).await?;
            let mut items = Vec::with_capacity(keys.len());
            for (k, e) in keys.into_iter().zip(entries) {
                if let Some(e) = e {
                    items.push((self.user_key(&k)?, self.decode_value(&e)?));
                }
            }
            return Ok(SearchResults { total, items, offset: options.offset, limit });
        }
    }

    /// Drops this namespace's index on every primary (its documents stay). The next search
    /// creates it again.
    ///
    /// # Errors
    /// [`CacheError::SearchNotSupported`]; a cluster error.
    pub async fn drop_search_index(&self) -> Result<(), CacheError> {
        self.state("drop_search_index")?;
        let d = self.deadline("drop_search_index", self.inner.settings.config.search_timeout);
        let shards = self.shards(&d).await?;
        self.forget_indexes();
        let steps = shards
            .iter()
            .map(|s| Cmd::new("FT.DROPINDEX").arg(Bytes::from(self.index_name(*s))).with_slot(*s).into())
            .collect();
        for r in self.inner.exec.run(steps, &d).await? {
            match value_result(r, &d)? {
                Ok(_) => {}
                Err(m) if is_unknown_command(&m) => return Err(not_supported()),
                Err(m) if is_unknown_index(&m) => {}
                Err(m) => return Err(SearchError::Server(m).into()),
            }
        }
        Ok(())
    }
}

/// Whether an `FT.INFO` reply says the index is still indexing existing documents.
fn indexing(info: &Value) -> bool {
    let pairs: Vec<(Value, Value)> = match info {
        Value::Map(m) => m.clone(),
        Value::Array(a) => a
            .chunks(2)
            .filter_map(|c| match c {
                [k, v] => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect(),
        _ => return false,
    };
    pairs.iter().any(|(k, v)| {
        k.as_bytes().is_some_and(|k| k.as_ref() == b"indexing")
            && match v {
                Value::Int(i) => *i != 0,
                Value::Double(d) => *d != 0.0,
                other => other.as_bytes().is_some_and(|b| b.as_ref() != b"0"),
            }
    })
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

    fn b(s: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn range(start: i64, end: i64, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            Value::Array(vec![b("127.0.0.1"), Value::Int(port)]),
        ])
    }

    #[test]
    fn one_slot_per_primary_from_cluster_slots() {
        let v = Value::Array(vec![
            range(10923, 16383, 3),
            range(100, 5460, 1),
            range(0, 99, 1),
            range(5461, 10922, 2),
        ]);
        let slots: Vec<u16> = shard_slots(&v).expect("slots").into_iter().map(Slot::get).collect();
        assert_eq!(slots, [0, 5461, 10923]);
        assert!(shard_slots(&Value::Array(vec![])).is_err());
        assert!(shard_slots(&Value::Int(1)).is_err());
        assert!(shard_slots(&Value::Array(vec![Value::Array(vec![Value::Int(0)])])).is_err());
    }

    #[test]
    fn indexing_flag_in_both_protocols() {
        let r3 = |i| Value::Map(vec![(b("indexing"), Value::Int(i))]);
        assert!(indexing(&r3(1)));
        assert!(!indexing(&r3(0)));
        assert!(indexing(&Value::Array(vec![b("indexing"), b("1")])));
        assert!(!indexing(&Value::Array(vec![b("num_docs"), b("1")])));
    }

    #[test]
    fn error_classes() {
        assert!(is_unknown_command("ERR unknown command 'FT.INFO', with args beginning with:"));
        assert!(is_unknown_command("ERR Error running script: Unknown Redis command called from script"));
        assert!(is_unknown_index("Unknown index name"));
        assert!(is_unknown_index("idx: no such index"));
        assert!(!is_unknown_index("Property not found"));
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
