//! History checking of the tag guarantees of `docs/consistency.md` (guarantees 1–5).
//!
//! A test runs many concurrent workers against a cache (the [`Subject`]) for a bounded time,
//! and every operation is **recorded**: its arguments, the instant it was invoked and the
//! instant it completed (the machine's monotonic clock from one shared reference, [`Clock`]:
//! comparable across the processes of one machine), and its result.
//! Every value written is unique (worker id and sequence number), so a read names the one write
//! it observed. The [`check`] module then decides, from the history alone, whether the cache
//! broke a guarantee; the [`quiescent`] module adds checks that need the workers stopped
//! (orphans, exact counts, replace semantics, bounded metadata).
//!
//! The same workload and checker run against slotcache ([`SlotcacheSubject`]) and against a
//! test-only implementation of the reference's naive tag protocol ([`naive::NaiveSubject`]):
//! the checker must find violations in the latter, or it proves nothing.
//!
//! - [`workload`]: the workers and their operation mix;
//! - [`check`]: guarantee 1 (no stale hit after an invalidation) on a history;
//! - [`quiescent`]: guarantees 2–5 once the workers stopped;
//! - [`naive`]: the reference's protocol, for the negative control;
//! - [`run`]: one run on a real cluster (workload, disruption, checks, `[figure]` lines);
//! - [`process`]: a workload in a client process of its own, its history in a file.

use core::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod check;
pub mod naive;
pub mod process;
pub mod quiescent;
pub mod run;
mod subject;
pub mod workload;

pub use subject::{Fut, LoaderCalled, SlotcacheSubject, Subject};

/// One clock for a whole history: instants are nanoseconds since its reference, read from the
/// machine's `CLOCK_MONOTONIC`.
///
/// That clock is one for the whole machine (every process reads the same counter; it never
/// jumps, unlike the wall clock), so client processes given the same reference
/// ([`Clock::from_reference`]) record instants that compare exactly with each other's.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    reference: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// The machine's `CLOCK_MONOTONIC` in nanoseconds (0 if it cannot be read, which Linux never
/// does).
fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
        let nanos = u64::try_from(t.tv_nsec()).unwrap_or(0);
        secs.saturating_mul(1_000_000_000).saturating_add(nanos)
    })
}

impl Clock {
    /// A clock starting now.
    #[must_use]
    pub fn new() -> Self {
        Self { reference: monotonic_ns() }
    }

    /// A clock whose instants count from `reference` (another clock's [`Clock::reference`],
    /// possibly in another process of this machine).
    #[must_use]
    pub const fn from_reference(reference: u64) -> Self {
        Self { reference }
    }

    /// The `CLOCK_MONOTONIC` reading this clock counts from.
    #[must_use]
    pub const fn reference(&self) -> u64 {
        self.reference
    }

    /// Nanoseconds since the reference.
    #[must_use]
    pub fn now(&self) -> u64 {
        monotonic_ns().saturating_sub(self.reference)
    }
}

/// An operation and its arguments (user keys, not full data keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `set` / `set_with_ttl` of one key.
    Set {
        /// The key.
        key: String,
        /// The (unique) value.
        value: String,
        /// Its tags (empty: untagged).
        tags: Vec<String>,
    },
    /// `bulk_set` of several keys, all with the same tags.
    BulkSet {
        /// Keys and their (unique) values.
        items: Vec<(String, String)>,
        /// The tags of every item.
        tags: Vec<String>,
    },
    /// `get_if_present`.
    Get {
        /// The key.
        key: String,
    },
    /// `get_entry` (reports the entry's tags when the subject knows them).
    GetEntry {
        /// The key.
        key: String,
    },
    /// `invalidate` of one key.
    Invalidate {
        /// The key.
        key: String,
    },
    /// `invalidate_by_tags`.
    InvalidateTags {
        /// The tags.
        tags: Vec<String>,
    },
    /// `bulk_get` of several keys.
    BulkGet {
        /// The keys.
        keys: Vec<String>,
    },
    /// `compute`, whose function sets this (unique) value; the entry keeps the tags it had
    /// ([`Ret::Computed`] reports them).
    Compute {
        /// The key.
        key: String,
        /// The value the function sets.
        value: String,
    },
    /// `get` with a loader that produces this (unique) value on a miss.
    Load {
        /// The key.
        key: String,
        /// The value the loader produces.
        value: String,
    },
    /// A reload (`refresh`) whose loader produces this (unique) value; it keeps the tags the
    /// entry had when it started ([`Ret::Refreshed`] reports them, and the value it returned:
    /// its own, or that of the load it joined).
    Refresh {
        /// The key.
        key: String,
        /// The value the loader produces.
        value: String,
    },
    /// `bulk_refresh` of several keys, whose loader (one call) gives these (unique) values; each
    /// keeps the tags its entry had. The API reports only a count ([`Ret::Count`]:
    /// [`Record::tags_known`] is false, the checks take the tags from `get_entry`'s reports of
    /// the value); the simulation reports each value's tags ([`Ret::BulkRefreshed`]).
    BulkRefresh {
        /// Keys and the values the loader gives them.
        items: Vec<(String, String)>,
    },
    /// `entries()`: the whole stream; every entry it yields is checked like a read
    /// ([`Ret::Found`]).
    Entries,
    /// `keys()`: the whole stream ([`Ret::Keys`]); every key it yields must have been written.
    Keys,
    /// `set_expires_after` of one key.
    Expire {
        /// The key.
        key: String,
        /// The new TTL in ms.
        ms: u64,
    },
    /// `invalidate_all` (exercised, not checked: keys written while it runs may survive).
    InvalidateAll,
    /// `estimated_size` (exercised, not checked).
    EstimatedSize,
    /// `query` of a searchable namespace: every document it returns is checked like a read
    /// ([`Ret::Found`]).
    Query {
        /// The filter, sort and page, in the workload's notation (see
        /// [`crate::simcache::ops::SearchFilter`]).
        filter: String,
    },
    /// `ensure_search_index` (exercised, not checked).
    EnsureIndex,
    /// `drop_search_index` (exercised, not checked).
    DropIndex,
}

impl Op {
    /// The values this operation writes, with their keys (empty for other operations).
    #[must_use]
    pub fn writes(&self) -> Vec<(&str, &str)> {
        match self {
            Self::Set { key, value, .. }
            | Self::Compute { key, value }
            | Self::Load { key, value }
            | Self::Refresh { key, value } => vec![(key.as_str(), value.as_str())],
            Self::BulkSet { items, .. } | Self::BulkRefresh { items } => {
                items.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The keys this operation names (empty for whole-namespace operations and tags).
    #[must_use]
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Self::Set { key, .. }
            | Self::Get { key }
            | Self::GetEntry { key }
            | Self::Invalidate { key }
            | Self::Compute { key, .. }
            | Self::Load { key, .. }
            | Self::Refresh { key, .. }
            | Self::Expire { key, .. } => vec![key.as_str()],
            Self::BulkSet { items, .. } | Self::BulkRefresh { items } => {
                items.iter().map(|(k, _)| k.as_str()).collect()
            }
            Self::BulkGet { keys } => keys.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// The tags a write attaches (empty for other operations and untagged writes).
    #[must_use]
    pub fn write_tags(&self) -> &[String] {
        match self {
            Self::Set { tags, .. } | Self::BulkSet { tags, .. } => tags,
            _ => &[],
        }
    }
}

impl Op {
    /// The operation's name (the API call), for counts per kind.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Set { tags, .. } if tags.is_empty() => "set_untagged",
            Self::Set { .. } => "set",
            Self::BulkSet { .. } => "bulk_set",
            Self::Get { .. } => "get",
            Self::GetEntry { .. } => "get_entry",
            Self::Invalidate { .. } => "invalidate",
            Self::InvalidateTags { .. } => "invalidate_by_tags",
            Self::BulkGet { .. } => "bulk_get",
            Self::Compute { .. } => "compute",
            Self::Load { .. } => "get_with_loader",
            Self::Refresh { .. } => "refresh",
            Self::BulkRefresh { .. } => "bulk_refresh",
            Self::Entries => "entries",
            Self::Keys => "keys",
            Self::Expire { .. } => "set_expires_after",
            Self::InvalidateAll => "invalidate_all",
            Self::EstimatedSize => "estimated_size",
            Self::Query { .. } => "query",
            Self::EnsureIndex => "ensure_search_index",
            Self::DropIndex => "drop_search_index",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Set { key, value, tags } => write!(f, "set({key} = {value}, tags {tags:?})"),
            Self::BulkSet { items, tags } => {
                write!(f, "bulk_set(")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    write!(f, "{}{k} = {v}", if i == 0 { "" } else { ", " })?;
                }
                write!(f, ", tags {tags:?})")
            }
            Self::Get { key } => write!(f, "get({key})"),
            Self::GetEntry { key } => write!(f, "get_entry({key})"),
            Self::Invalidate { key } => write!(f, "invalidate({key})"),
            Self::InvalidateTags { tags } => write!(f, "invalidate_by_tags({tags:?})"),
            Self::BulkGet { keys } => write!(f, "bulk_get({keys:?})"),
            Self::Compute { key, value } => write!(f, "compute({key} = {value})"),
            Self::Load { key, value } => write!(f, "get_or_load({key}, loader gives {value})"),
            Self::Refresh { key, value } => write!(f, "refresh({key}, loader gives {value})"),
            Self::BulkRefresh { items } => {
                write!(f, "bulk_refresh(")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    write!(f, "{}{k}, loader gives {v}", if i == 0 { "" } else { "; " })?;
                }
                write!(f, ")")
            }
            Self::Entries => write!(f, "entries()"),
            Self::Keys => write!(f, "keys()"),
            Self::Expire { key, ms } => write!(f, "set_expires_after({key}, {ms} ms)"),
            Self::InvalidateAll => write!(f, "invalidate_all()"),
            Self::EstimatedSize => write!(f, "estimated_size()"),
            Self::Query { filter } => write!(f, "query({filter})"),
            Self::EnsureIndex => write!(f, "ensure_search_index()"),
            Self::DropIndex => write!(f, "drop_search_index()"),
        }
    }
}

/// What a successful operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ret {
    /// A write's `Ok(())`.
    Done,
    /// A read's value (`None`: a miss).
    Read(Option<String>),
    /// `get_entry`'s value and, when the subject reports them, its tags.
    Entry(Option<(String, Option<Vec<String>>)>),
    /// `invalidate`: whether the key existed.
    Existed(bool),
    /// `invalidate_by_tags`: the count it returned.
    Count(u64),
    /// `bulk_get`: one value per key, in order (`None`: a miss).
    Values(Vec<Option<String>>),
    /// A reload's value (its loader's, or that of the load it joined) and the tags it kept
    /// (the entry's when it started).
    Refreshed {
        /// The value it returned.
        value: String,
        /// The tags its value kept.
        tags: Vec<String>,
    },
    /// A reload's value (its loader's, or that of the load it joined) when the tags it kept
    /// are not reported (`refresh` through the public API, which may share a load in flight):
    /// [`Record::tags_known`] is false.
    Reloaded(String),
    /// `compute` (of any outcome): the tags the value it wrote kept (the replaced entry's).
    Computed(Vec<String>),
    /// `bulk_refresh` with the tags each value kept (its entry's when read): the values
    /// stored, and per value given to store, that value and its tags.
    BulkRefreshed {
        /// What the API returns: the values stored.
        stored: u64,
        /// Each value and the tags it kept.
        tags: Vec<(String, Vec<String>)>,
    },
    /// A query's page, or what `entries()` yielded: each key and value, in order.
    Found(Vec<(String, String)>),
    /// What `keys()` yielded, in order.
    Keys(Vec<String>),
}

impl Ret {
    /// The value a read returned, if it was a hit.
    #[must_use]
    pub fn value_read(&self) -> Option<&str> {
        match self {
            Self::Read(Some(v)) | Self::Entry(Some((v, _))) => Some(v),
            _ => None,
        }
    }
}

impl Record {
    /// The values this operation read, with their keys and the tags it reported for them.
    #[must_use]
    pub fn reads(&self) -> Vec<(&str, &str, Option<&[String]>)> {
        let Ok(ret) = &self.result else { return Vec::new() };
        match (&self.op, ret) {
            (Op::Get { key } | Op::Load { key, .. }, Ret::Read(Some(v))) => {
                vec![(key.as_str(), v.as_str(), None)]
            }
            (Op::GetEntry { key }, Ret::Entry(Some((v, tags)))) => {
                vec![(key.as_str(), v.as_str(), tags.as_deref())]
            }
            (Op::BulkGet { keys }, Ret::Values(values)) => keys
                .iter()
                .zip(values)
                .filter_map(|(k, v)| v.as_deref().map(|v| (k.as_str(), v, None)))
                .collect(),
            (Op::Query { .. } | Op::Entries, Ret::Found(items)) => {
                items.iter().map(|(k, v)| (k.as_str(), v.as_str(), None)).collect()
            }
            (Op::Refresh { key, .. }, Ret::Refreshed { value, .. } | Ret::Reloaded(value)) => {
                vec![(key.as_str(), value.as_str(), None)]
            }
            _ => Vec::new(),
        }
    }

    /// The tags the value(s) this operation wrote carry: a write's own tags; a reload's and a
    /// `compute`'s, as they reported them; none for a load on a miss (stored untagged: only
    /// key invalidations cover it).
    #[must_use]
    pub fn written_tags(&self) -> &[String] {
        match (&self.op, &self.result) {
            (Op::Refresh { .. }, Ok(Ret::Refreshed { tags, .. }))
            | (Op::Compute { .. }, Ok(Ret::Computed(tags))) => tags,
            (op, _) => op.write_tags(),
        }
    }

    /// The tags value `v` of this write carries: [`Record::written_tags`], or for a
    /// `bulk_refresh` that reported them, that value's own.
    #[must_use]
    pub fn written_tags_of(&self, v: &str) -> &[String] {
        match (&self.op, &self.result) {
            (Op::BulkRefresh { .. }, Ok(Ret::BulkRefreshed { tags, .. })) => {
                tags.iter().find(|(value, _)| value == v).map_or(&[], |(_, t)| t.as_slice())
            }
            _ => self.written_tags(),
        }
    }

    /// Whether some value this write stored may carry `t`, when the tags are known.
    #[must_use]
    pub fn writes_tag(&self, t: &str) -> bool {
        match (&self.op, &self.result) {
            (Op::BulkRefresh { .. }, Ok(Ret::BulkRefreshed { tags, .. })) => {
                tags.iter().any(|(_, ts)| ts.iter().any(|x| x == t))
            }
            _ => self.written_tags().iter().any(|x| x == t),
        }
    }

    /// Whether the stored entry of this write must carry exactly [`Record::written_tags`]
    /// (guarantee 4): a `set` or `bulk_set` (whatever it returned), a reload or a `compute`
    /// that returned `Ok` (they report the tags they kept).
    #[must_use]
    pub fn tags_known(&self) -> bool {
        matches!(
            (&self.op, &self.result),
            (Op::Set { .. } | Op::BulkSet { .. }, _)
                | (Op::Refresh { .. }, Ok(Ret::Refreshed { .. }))
                | (Op::Compute { .. }, Ok(Ret::Computed(_)))
                | (Op::BulkRefresh { .. }, Ok(Ret::BulkRefreshed { .. }))
        )
    }
}

/// One recorded operation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// Its index in the [`History`] (by invocation time).
    pub id: usize,
    /// The worker that ran it (quiescent checks use [`quiescent::CHECKER`]).
    pub worker: usize,
    /// When it was invoked ([`Clock`] nanoseconds).
    pub invoked: u64,
    /// When it completed.
    pub completed: u64,
    /// For a load (`get` with a loader, `refresh`) whose loader it called: when. Its value is
    /// as old as that: the loader read the data then. `None` for every other operation.
    pub loaded: Option<u64>,
    /// What it was.
    pub op: Op,
    /// What it returned (an error's text for a failure).
    pub result: Result<Ret, String>,
}

impl Record {
    /// Whether it returned `Ok`.
    #[must_use]
    pub const fn ok(&self) -> bool {
        self.result.is_ok()
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| Duration::from_nanos(ns).as_secs_f64() * 1000.0;
        write!(
            f,
            "#{} w{} [{:.3} ms .. {:.3} ms] {} -> ",
            self.id,
            self.worker,
            ms(self.invoked),
            ms(self.completed),
            self.op
        )?;
        if let Some(at) = self.loaded {
            write!(f, "(loader called at {:.3} ms) ", ms(at))?;
        }
        match &self.result {
            Ok(r) => write!(f, "{r:?}"),
            Err(e) => write!(f, "ERR {e}"),
        }
    }
}

/// The value of a load's loader-call instant while its loader has not been called.
pub const NOT_CALLED: u64 = u64::MAX;

/// Records the operations of one worker.
#[derive(Debug)]
pub struct Recorder {
    clock: Clock,
    worker: usize,
    records: Vec<Record>,
}

impl Recorder {
    /// A recorder for `worker`, on `clock`.
    #[must_use]
    pub const fn new(clock: Clock, worker: usize) -> Self {
        Self { clock, worker, records: Vec::new() }
    }

    /// Runs `fut` (the operation `op`), recording its invocation, completion and result.
    pub async fn record<F>(&mut self, op: Op, fut: F) -> Result<Ret, String>
    where
        F: Future<Output = Result<Ret, String>>,
    {
        let invoked = self.clock.now();
        let result = fut.await;
        let completed = self.clock.now();
        self.records.push(Record {
            id: 0,
            worker: self.worker,
            invoked,
            completed,
            loaded: None,
            op,
            result: result.clone(),
        });
        result
    }

    /// Runs `fut`, a load, like [`Recorder::record`]; `called` is set to the instant its
    /// loader was called ([`Clock::now`]), if it was ([`NOT_CALLED`] otherwise).
    pub async fn record_load<F>(&mut self, op: Op, called: &AtomicU64, fut: F) -> Result<Ret, String>
    where
        F: Future<Output = Result<Ret, String>>,
    {
        let result = self.record(op, fut).await;
        let at = called.load(Ordering::Acquire);
        if let Some(r) = self.records.last_mut() {
            r.loaded = (at != NOT_CALLED).then_some(at);
        }
        result
    }

    /// The last record.
    #[must_use]
    pub fn last(&self) -> Option<&Record> {
        self.records.last()
    }

    /// How many records it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records so far, leaving it empty.
    pub fn take(&mut self) -> Vec<Record> {
        core::mem::take(&mut self.records)
    }

    /// The records so far.
    #[must_use]
    pub fn into_records(self) -> Vec<Record> {
        self.records
    }
}

/// A whole history: every worker's records, ordered by invocation.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The records; `records[i].id == i`.
    pub records: Vec<Record>,
}

impl History {
    /// Merges the records of several workers (and phases).
    #[must_use]
    pub fn merge(parts: impl IntoIterator<Item = Vec<Record>>) -> Self {
        let mut records: Vec<Record> = parts.into_iter().flatten().collect();
        records.sort_by_key(|r| (r.invoked, r.worker));
        for (i, r) in records.iter_mut().enumerate() {
            r.id = i;
        }
        Self { records }
    }

    /// Operations recorded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Reads (`get`, `get_entry`) that returned `Ok`.
    #[must_use]
    pub fn reads_ok(&self) -> usize {
        self.records
            .iter()
            .filter(|r| {
                matches!(r.op, Op::Get { .. } | Op::GetEntry { .. } | Op::BulkGet { .. } | Op::Load { .. })
                    && r.ok()
            })
            .count()
    }

    /// Operations per kind ([`Op::kind`]): how many, and how many of them failed.
    #[must_use]
    pub fn per_kind(&self) -> std::collections::BTreeMap<&'static str, (usize, usize)> {
        let mut out = std::collections::BTreeMap::new();
        for r in &self.records {
            let e: &mut (usize, usize) = out.entry(r.op.kind()).or_default();
            e.0 += 1;
            e.1 += usize::from(!r.ok());
        }
        out
    }

    /// Reads that returned a value.
    #[must_use]
    pub fn hits(&self) -> usize {
        self.records.iter().map(|r| r.reads().len()).sum()
    }

    /// Invalidations (by tags, by key) that returned `Ok`.
    #[must_use]
    pub fn invalidations_ok(&self) -> usize {
        self.records
            .iter()
            .filter(|r| matches!(r.op, Op::Invalidate { .. } | Op::InvalidateTags { .. }) && r.ok())
            .count()
    }

    /// Operations that failed.
    #[must_use]
    pub fn errors(&self) -> usize {
        self.records.iter().filter(|r| !r.ok()).count()
    }
}

/// A broken guarantee, with the operations that show it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// Which guarantee (`"P1"` .. `"P5"`).
    pub property: &'static str,
    /// What went wrong.
    pub what: String,
    /// The operations involved (printed in full).
    pub ops: Vec<Record>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.property, self.what)?;
        for op in &self.ops {
            write!(f, "\n    {op}")?;
        }
        Ok(())
    }
}

/// Counts violations per property, `P1` to `P5`.
#[must_use]
pub fn per_property(violations: &[Violation]) -> [usize; 5] {
    let mut out = [0; 5];
    for v in violations {
        if let Some(i) = v.property.strip_prefix('P').and_then(|d| d.parse::<usize>().ok())
            && (1..=5).contains(&i)
        {
            out[i - 1] += 1;
        }
    }
    out
}
