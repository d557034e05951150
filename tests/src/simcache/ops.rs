//! The history's operations ([`crate::history::Op`]) as the core's machines, for one namespace
//! whose values are the history's strings stored as plain envelopes, or (a searchable
//! namespace, [`Storage::Document`]) as JSON documents `{"v":<value>,"g":<tag>,"n":<number>}`
//! whose searchable members are drawn from the value ([`document`]).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use slotcache_core::cache::Entry;
use slotcache_core::cache::op::Deadline;
use slotcache_core::cache::op::Scope;
use slotcache_core::cache::op::invalidate::InvalidateKey;
use slotcache_core::cache::op::invalidate_tags::{InvalidateTags, Variant};
use slotcache_core::cache::op::read::{ReadEntries, Reads};
use slotcache_core::cache::op::scope::distinct_tags;
use slotcache_core::cache::op::write::{Write, WriteEntries};
use slotcache_core::keys::EncodedKey;

use slotcache_core::cache::Storage;
use slotcache_core::cache::op::bulk_load::Item;
use slotcache_core::cache::op::bulk_refresh::{BulkRefresh, Refreshed};
use slotcache_core::cache::op::compute::{self, ComputeEntry, ComputeOutcome, Decision};
use slotcache_core::cache::op::expiry::ExpireEntry;
use slotcache_core::cache::op::flights::{Flights, Role};
use slotcache_core::cache::op::iterate::{self, NextPage};
use slotcache_core::cache::op::load::{self, Load, LoadConfig, LoadKind, LoadResult, Loaded, Prepared};
use slotcache_core::cache::op::scan::ScanAll;
use slotcache_core::cache::op::search_drop::DropIndex;
use slotcache_core::cache::op::search_index::{EnsureIndex, IndexSpec, KnownIndexes};
use slotcache_core::cache::op::search_query::{self, Query, SearchQuery};
use slotcache_core::cache::op::walk::{Ahead, Walk};
use slotcache_core::cache::op::{Ctx, Input, Machine, Step};
use slotcache_core::cache::search::{Filter, FilterOp, SearchSchema, SortBy, SortOrder};

use crate::history::{Op, Ret};

use super::flight::{Joined, Led, Marked, Shared, Table};
use super::runner::{Answering, Mapped, SimOp};

/// Builds the machine of each operation.
#[derive(Clone, Debug)]
pub struct CacheOps {
    /// The namespace.
    pub scope: Arc<Scope>,
    /// Every operation's time budget.
    pub budget: Duration,
    /// TTL of every write (`None`: no expiry).
    pub ttl_ms: Option<u64>,
    /// The `invalidate_by_tags` bug variant (test-only).
    pub invalidate_tags_variant: Variant,
    /// The reload bug variant (test-only).
    pub load_variant: load::Variant,
    /// A test-only bug in `bulk_refresh` (the reload's variants).
    pub bulk_refresh_variant: load::Variant,
    /// The compute bug variant (test-only).
    pub compute_variant: compute::Variant,
    /// The iteration bug variant (test-only).
    pub iterate_variant: iterate::Variant,
    /// Loads take the cluster lock for at most this long (`None`: no lock).
    pub lock_hold: Option<Duration>,
    /// A loader takes up to this long (each its own latency, drawn from its value), as one
    /// reading a database does: loads overlap invalidations.
    pub loader_ms: u64,
    /// The process's loads in flight (and its invalidations marked in it).
    pub flights: Table,
    /// The namespace's search index, for a searchable namespace.
    pub search: Option<Search>,
}

/// A searchable namespace's index, the indexes it knows to exist (shared by its operations,
/// like the async layer's namespace state), and the search bug variant.
#[derive(Clone, Debug)]
pub struct Search {
    /// The index.
    pub spec: Arc<IndexSpec>,
    /// The indexes known to exist.
    pub known: Rc<RefCell<KnownIndexes>>,
    /// The search bug variant (test-only).
    pub variant: search_query::Variant,
}

impl Search {
    /// The index of the workload's documents over `scope`'s namespace: `g` TAG and `n`
    /// NUMERIC, both sortable.
    #[must_use]
    pub fn new(scope: &Scope, variant: search_query::Variant) -> Self {
        let spec = IndexSpec {
            schema: SearchSchema::new().tag("g", true).numeric("n", true),
            index_prefix: "index:".into(),
            data_prefix: scope.ns.data_prefix().to_vec(),
        };
        Self { spec: Arc::new(spec), known: Rc::default(), variant }
    }
}

/// The `g` members of the workload's documents.
pub const COLOURS: [&str; 3] = ["red", "blue", "green"];

/// The searchable members of value `value` (`w<worker>-<seq>`): `g` is a colour and `n` a
/// digit, both from the sequence number.
#[must_use]
pub fn members(value: &str) -> (&'static str, u64) {
    let seq: u64 = value.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (COLOURS[(seq % 3) as usize], seq % 10)
}

/// The JSON document value `value` is stored as in a searchable namespace.
#[must_use]
pub fn document(value: &str) -> String {
    let (g, n) = members(value);
    serde_json::json!({ "v": value, "g": g, "n": n }).to_string()
}

/// A query of the workload, in a small notation: space-separated `g=<colour>`, `g!=<colour>`,
/// `n<=<x>`, `n>=<x>`, `sort=<field>:asc|desc`, `offset=<k>`, `limit=<k>`; `*` alone for none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchFilter {
    /// `g` equal to this.
    pub g: Option<String>,
    /// `g` not equal to this.
    pub not_g: Option<String>,
    /// `n` at least this.
    pub n_min: Option<u64>,
    /// `n` at most this.
    pub n_max: Option<u64>,
    /// Sort field and whether descending.
    pub sort: Option<(String, bool)>,
    /// Results to skip.
    pub offset: usize,
    /// Results to return (0: the default).
    pub limit: usize,
}

impl SearchFilter {
    /// Parses the notation; `None` for anything else.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let mut f = Self::default();
        for w in s.split_whitespace().filter(|w| *w != "*") {
            if let Some(v) = w.strip_prefix("g!=") {
                f.not_g = Some(v.to_owned());
            } else if let Some(v) = w.strip_prefix("g=") {
                f.g = Some(v.to_owned());
            } else if let Some(v) = w.strip_prefix("n<=") {
                f.n_max = Some(v.parse().ok()?);
            } else if let Some(v) = w.strip_prefix("n>=") {
                f.n_min = Some(v.parse().ok()?);
            } else if let Some(v) = w.strip_prefix("sort=") {
                let (field, order) = v.split_once(':')?;
                f.sort = Some((field.to_owned(), order == "desc"));
            } else if let Some(v) = w.strip_prefix("offset=") {
                f.offset = v.parse().ok()?;
            } else if let Some(v) = w.strip_prefix("limit=") {
                f.limit = v.parse().ok()?;
            } else {
                return None;
            }
        }
        Some(f)
    }

    /// The machine's query.
    #[must_use]
    pub fn query(&self) -> Query {
        let mut filters = Vec::new();
        if let Some(g) = &self.g {
            filters.push(Filter::eq("g", g.as_str()));
        }
        if let Some(g) = &self.not_g {
            filters.push(Filter::ne("g", g.as_str()));
        }
        #[allow(clippy::cast_precision_loss)]
        match (self.n_min, self.n_max) {
            (Some(lo), Some(hi)) => filters.push(Filter::between("n", lo as f64, hi as f64)),
            (Some(lo), None) => filters.push(Filter::new("n", FilterOp::Ge(lo as f64))),
            (None, Some(hi)) => filters.push(Filter::new("n", FilterOp::Le(hi as f64))),
            (None, None) => {}
        }
        let sort = self.sort.as_ref().map(|(field, desc)| SortBy {
            field: field.clone(),
            order: if *desc { SortOrder::Desc } else { SortOrder::Asc },
        });
        Query { filters, sort, offset: self.offset, limit: self.limit, ..Query::default() }
    }

    /// Whether the document of `value` matches the filter.
    #[must_use]
    pub fn matches(&self, value: &str) -> bool {
        let (g, n) = members(value);
        self.g.as_deref().is_none_or(|x| x == g)
            && self.not_g.as_deref().is_none_or(|x| x != g)
            && self.n_min.is_none_or(|x| n >= x)
            && self.n_max.is_none_or(|x| n <= x)
    }
}

impl CacheOps {
    /// Operations on `scope` with a 10 s budget, no TTL, no bug.
    #[must_use]
    pub fn new(scope: Arc<Scope>) -> Self {
        Self {
            scope,
            budget: Duration::from_secs(10),
            ttl_ms: None,
            invalidate_tags_variant: Variant::Correct,
            load_variant: load::Variant::Correct,
            bulk_refresh_variant: load::Variant::Correct,
            compute_variant: compute::Variant::Correct,
            iterate_variant: iterate::Variant::Correct,
            lock_hold: None,
            loader_ms: 0,
            flights: Rc::new(RefCell::new(Flights::default())),
            search: None,
        }
    }

    /// The loader latency of the load producing `value` (`w<worker>-<seq>`): up to
    /// [`CacheOps::loader_ms`], from its sequence number.
    fn loader_latency(&self, value: &str) -> Duration {
        let seq: u64 = value.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0);
        Duration::from_millis(seq.wrapping_mul(7919) % (self.loader_ms + 1))
    }

    /// `op` marked in the process's table of loads in flight while it runs (an invalidation).
    fn marked(&self, op: Box<dyn SimOp>) -> Box<dyn SimOp> {
        let mark = self.flights.borrow_mut().invalidation_started();
        Box::new(Marked { op, table: self.flights.clone(), mark: Some(mark) })
    }

    /// Whether the namespace stores JSON documents.
    fn documents(&self) -> bool {
        self.scope.storage == Storage::Document
    }

    /// The entry value `value` is stored as.
    fn entry(&self, value: &str) -> Entry {
        stored(self.documents(), value)
    }

    /// The data key of user key `key`.
    #[must_use]
    pub fn key(&self, key: &str) -> EncodedKey {
        self.scope.ns.data_key(key.as_bytes())
    }

    fn write(&self, key: &str, value: &str, tags: &[String]) -> Write {
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        Write {
            key: self.key(key),
            entry: self.entry(value),
            ttl_ms: self.ttl_ms,
            on_update: None,
            tags: distinct_tags(&tags),
            lease: None,
        }
    }

    /// The machine that runs `op`, started at `now`; `None` for an operation this simulation
    /// has no machine for yet.
    #[must_use]
    pub fn machine(&self, op: &Op, now: Instant) -> Option<Box<dyn SimOp>> {
        let d = |name| Deadline::new(now, name, self.budget);
        let scope = self.scope.clone();
        let doc = self.documents();
        Some(match op {
            Op::Set { key, value, tags } => {
                let w = self.write(key, value, tags);
                let m = WriteEntries::machine(scope, vec![w], d("set")).ok()?;
                Box::new(Mapped::new(m, |_| Ret::Done))
            }
            Op::BulkSet { items, tags } => {
                let ws = items.iter().map(|(k, v)| self.write(k, v, tags)).collect();
                let m = WriteEntries::machine(scope, ws, d("bulk_set")).ok()?;
                Box::new(Mapped::new(m, |_| Ret::Done))
            }
            Op::Invalidate { key } => {
                let m = InvalidateKey::machine(scope, self.key(key), d("invalidate"));
                self.marked(Box::new(Mapped::new(m, Ret::Existed)))
            }
            Op::InvalidateTags { tags } => {
                let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
                let m = InvalidateTags::machine_with(
                    scope,
                    distinct_tags(&tags),
                    d("invalidate_by_tags"),
                    self.invalidate_tags_variant,
                );
                self.marked(Box::new(Mapped::new(m, Ret::Count)))
            }
            Op::Get { key } => {
                let m = ReadEntries::machine(scope, vec![self.key(key)], d("get_if_present"));
                Box::new(Mapped::new(m, move |r: Reads| Ret::Read(first_value(doc, r.found))))
            }
            Op::BulkGet { keys } => {
                let keys = keys.iter().map(|k| self.key(k)).collect();
                let m = ReadEntries::machine(scope, keys, d("bulk_get"));
                Box::new(Mapped::new(m, move |r: Reads| {
                    Ret::Values(
                        r.found.into_iter().map(|f| f.map(|f| value_of(doc, &f.entry.payload))).collect(),
                    )
                }))
            }
            Op::Compute { key, value } => {
                let m = ComputeEntry::<()>::new(scope, self.key(key), 10, d("compute"))
                    .with_variant(self.compute_variant);
                let (entry, ttl_ms) = (self.entry(value), self.ttl_ms);
                let answer = move |_call| Ok(Decision::Set { entry: entry.clone(), ttl_ms, value: () });
                Box::new(Answering::new(m, answer, |out: ComputeOutcome<()>| {
                    Ok(Ret::Computed(out.kept_tags.iter().map(|t| text(t)).collect()))
                }))
            }
            Op::Load { key, value } | Op::Refresh { key, value } => return Some(self.load(op, key, value)),
            Op::Expire { key, ms } => {
                let m = ExpireEntry::machine(scope, self.key(key), *ms, d("set_expires_after"));
                Box::new(Mapped::new(m, Ret::Existed))
            }
            Op::InvalidateAll => {
                let m = ScanAll::unlink_namespace(&self.scope.ns, self.scope.durability, d("invalidate_all"));
                self.marked(Box::new(Mapped::new(m, Ret::Count)))
            }
            Op::EstimatedSize => Box::new(Mapped::new(
                ScanAll::count(self.scope.ns.scan_pattern(), d("estimated_size")),
                Ret::Count,
            )),
            Op::GetEntry { key } => {
                let m = ReadEntries::with_ttl(scope, vec![self.key(key)], d("get_entry"));
                Box::new(Mapped::new(m, move |r: Reads| {
                    Ret::Entry(r.found.into_iter().next().flatten().map(|f| {
                        let tags = f
                            .entry
                            .tags
                            .iter()
                            .map(|t| String::from_utf8_lossy(&t.tag).into_owned())
                            .collect();
                        (value_of(doc, &f.entry.payload), Some(tags))
                    }))
                }))
            }
            Op::Query { filter } => {
                let search = self.search.as_ref()?;
                let q = SearchFilter::parse(filter)?.query();
                let known = search.known.borrow().clone();
                let m = SearchQuery::new(scope, search.spec.clone(), known, d("query"), q)
                    .ok()?
                    .with_variant(search.variant);
                let (shared, prefix) = (search.known.clone(), self.scope.ns.data_prefix().to_vec());
                Box::new(Mapped::new(m, move |found: search_query::Found| {
                    shared.borrow_mut().apply(found.news);
                    Ret::Found(
                        found
                            .items
                            .iter()
                            .map(|(k, e)| {
                                let key = k.strip_prefix(prefix.as_slice()).unwrap_or(k);
                                (text(key), value_of(true, &e.payload))
                            })
                            .collect(),
                    )
                }))
            }
            Op::EnsureIndex => {
                let search = self.search.as_ref()?;
                let known = search.known.borrow().clone();
                let m = EnsureIndex::new(search.spec.clone(), known, d("ensure_search_index"));
                let shared = search.known.clone();
                Box::new(Mapped::new(m, move |e: slotcache_core::cache::op::search_index::Ensured| {
                    shared.borrow_mut().apply(e.news);
                    Ret::Done
                }))
            }
            Op::Entries | Op::Keys => {
                let entries = matches!(op, Op::Entries);
                let walk =
                    if entries { Walk::entries(scope, self.budget) } else { Walk::keys(scope, self.budget) }
                        .with_variant(self.iterate_variant);
                Box::new(Walking {
                    walk,
                    page: None,
                    items: Vec::new(),
                    ns: self.scope.ns.clone(),
                    doc,
                    entries,
                })
            }
            Op::BulkRefresh { items } => {
                // One loader call for every key (as the async layer's `bulk_refresh`), no
                // single-flight table; each value kept under its entry's lease.
                let keys = items.iter().map(|(k, _)| self.key(k)).collect();
                let m = BulkRefresh::new(scope, keys, self.budget).with_variant(self.bulk_refresh_variant);
                let prepared: Vec<Item> = items
                    .iter()
                    .map(|(k, v)| Item {
                        key: self.key(k),
                        prepared: Prepared { entry: self.entry(v), ttl_ms: self.ttl_ms, on_update: None },
                    })
                    .collect();
                let n = prepared.len();
                let answer = move |_keys| Ok((n, prepared.clone()));
                let values: Vec<(Bytes, String)> =
                    items.iter().map(|(k, v)| (self.key(k).bytes().clone(), v.clone())).collect();
                // What the API returns, the values stored (not those an invalidation
                // superseded), and the tags each value kept.
                let map = move |r: Refreshed<usize>| {
                    let tags = r
                        .kept_tags
                        .iter()
                        .filter_map(|(k, ts)| {
                            let (_, v) = values.iter().find(|(key, _)| key == k)?;
                            Some((v.clone(), ts.iter().map(|t| text(t)).collect()))
                        })
                        .collect();
                    let stored = r.loaded.saturating_sub(r.superseded) as u64;
                    Ok(Ret::BulkRefreshed { stored, tags })
                };
                let latency = items.first().map_or(Duration::ZERO, |(_, v)| self.loader_latency(v));
                Box::new(Answering::new(m, answer, map).loader(latency))
            }
            Op::DropIndex => {
                let search = self.search.as_ref()?;
                search.known.borrow_mut().clear();
                let m = DropIndex::new(search.spec.clone(), d("drop_search_index"));
                Box::new(Mapped::new(m, |()| Ret::Done))
            }
        })
    }
}

impl CacheOps {
    /// A load (`get` with a loader, `refresh`) of `key` whose loader gives `value`: it joins
    /// the process's load of the key in flight when the table allows, else leads a new one.
    fn load(&self, op: &Op, key: &str, value: &str) -> Box<dyn SimOp> {
        let refresh = matches!(op, Op::Refresh { .. });
        let fk = self.key(key);
        let mut table = self.flights.borrow_mut();
        let barrier = table.barrier();
        let (role, shared) = table.join_or_lead(fk.bytes(), barrier, Shared::default);
        drop(table);
        let ticket = match role {
            Role::Join(shared) => return Box::new(Joined { shared, refresh }),
            Role::Lead(ticket) => ticket,
        };
        let kind = if refresh { LoadKind::Refresh } else { LoadKind::Miss };
        let config = LoadConfig { op_timeout: self.budget, lock_hold: self.lock_hold };
        let m = Load::new(self.scope.clone(), fk.clone(), kind, config).with_variant(self.load_variant);
        let (entry, ttl_ms, loaded, doc) =
            (self.entry(value), self.ttl_ms, value.to_owned(), self.documents());
        let answer = move |_call| Loaded::Value {
            value: loaded.clone(),
            store: Ok(Prepared { entry: entry.clone(), ttl_ms, on_update: None }),
        };
        let map = move |out: load::LoadOutcome<String>| match out.result {
            Ok(LoadResult::Found(e)) if refresh => {
                Ok(Ret::Refreshed { value: value_of(doc, &e.payload), tags: Vec::new() })
            }
            Ok(LoadResult::Found(e)) => Ok(Ret::Read(Some(value_of(doc, &e.payload)))),
            Ok(LoadResult::Loaded(v)) if refresh => {
                Ok(Ret::Refreshed { value: v, tags: out.kept_tags.iter().map(|t| text(t)).collect() })
            }
            Ok(LoadResult::Loaded(v)) => Ok(Ret::Read(Some(v))),
            Err(e) => Err(e.to_string()),
        };
        let load = Answering::new(m, answer, map).loader(self.loader_latency(value));
        let key = fk.bytes().clone();
        Box::new(Led { load: Box::new(load), shared, table: self.flights.clone(), key, ticket })
    }
}

/// `entries()` or `keys()`: the core's walk, page by page, each page's machine run in turn
/// (as the async layer's stream does), every item kept; an error fails the whole operation.
struct Walking {
    walk: Walk<(String, Option<String>)>,
    page: Option<Box<NextPage>>,
    items: Vec<(String, Option<String>)>,
    ns: slotcache_core::Namespace,
    doc: bool,
    entries: bool,
}

impl SimOp for Walking {
    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input) -> Step<Result<Ret, String>> {
        let mut input = input;
        loop {
            if let Some(page) = self.page.as_mut() {
                match page.resume(cx, std::mem::replace(&mut input, Input::Start)) {
                    Step::Done(paged) => {
                        self.page = None;
                        let (ns, doc) = (&self.ns, self.doc);
                        self.walk.paged(paged, |p| {
                            let keys = p.keys.iter().map(|k| text(ns.user_key(k).unwrap_or(k)));
                            Ok(if p.entries.is_empty() {
                                keys.map(|k| Ok((k, None))).collect()
                            } else {
                                keys.zip(p.entries)
                                    .filter_map(|(k, e)| e.map(|e| Ok((k, Some(value_of(doc, &e.payload))))))
                                    .collect()
                            })
                        });
                    }
                    Step::Send(r) => return Step::Send(r),
                    Step::Sleep(at) => return Step::Sleep(at),
                    Step::Call(never) => match never {},
                }
            }
            match self.walk.ahead() {
                Ahead::Item(Ok(item)) => self.items.push(item),
                Ahead::Item(Err(e)) => return Step::Done(Ok(Err(e.to_string()))),
                Ahead::Fetch(m) => self.page = Some(m),
                Ahead::End => {
                    let items = std::mem::take(&mut self.items);
                    return Step::Done(Ok(Ok(if self.entries {
                        Ret::Found(items.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
                    } else {
                        Ret::Keys(items.into_iter().map(|(k, _)| k).collect())
                    })));
                }
            }
        }
    }
}

/// The value of the first key a read found, as the history's string.
fn first_value(doc: bool, found: Vec<Option<slotcache_core::cache::op::read::Found>>) -> Option<String> {
    found.into_iter().next().flatten().map(|f| value_of(doc, &f.entry.payload))
}

/// The history's value in a read payload: the text, or a document's `v` member.
fn value_of(doc: bool, payload: &[u8]) -> String {
    if !doc {
        return text(payload);
    }
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("v").and_then(|v| v.as_str()).map(str::to_owned))
        .unwrap_or_else(|| format!("<not a workload document: {}>", text(payload)))
}

/// The entry `value` is stored as: plain bytes, or its [`document`].
fn stored(doc: bool, value: &str) -> Entry {
    if doc { Entry::plain(Bytes::from(document(value))) } else { plain(value) }
}

/// Bytes as the history's text.
fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A value stored as a plain envelope.
fn plain(value: &str) -> Entry {
    Entry::plain(Bytes::copy_from_slice(value.as_bytes()))
}
