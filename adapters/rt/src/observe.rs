//! Observability: `tracing` spans for cache operations and cluster requests, and, with the
//! feature `metrics`, metrics through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! The core counts (per node: `Client::changed_nodes`; per client: `Stats`; when the slot map
//! was fetched: `Client::topology_fetched_at`; a namespace's hits and misses by read:
//! `Counters::reads`); this module only records what it counted into the facade. Handles are registered once (per node when the driver first hears of it, per
//! namespace, operation and outcome on first use), so recording allocates nothing. Install the
//! recorder (exporter) before connecting the provider: handles registered before that stay
//! no-ops.
//!
//! Spans are created only when a subscriber wants them (`span.is_disabled()` skips the rest):
//! `slotcache.cache` (level DEBUG) around every cache operation, `slotcache.request` (level
//! DEBUG) around every request to the cluster, with the OpenTelemetry database attributes.

use core::future::Future;
use std::time::{Duration, Instant};

#[cfg(feature = "metrics")]
use slotcache_core::cache::Read;
use slotcache_core::cache::{CacheError, Counters, ProviderConfig};
use tracing::Instrument as _;
use tracing::field::Empty;

/// A cache operation, as spans and metrics name it (`db.operation.name`, label `operation`),
/// with the provider's timeout that bounds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "search"), allow(dead_code, reason = "the search operations need `search`"))]
pub(crate) enum Op {
    Get,
    GetIfPresent,
    BulkGet,
    BulkGetWith,
    GetEntry,
    ProbeEntry,
    Set,
    SetWithTtl,
    BulkSet,
    Invalidate,
    InvalidateByTags,
    InvalidateAll,
    Compute,
    ComputeWithTtl,
    ComputeIfAbsent,
    ComputeIfPresent,
    Refresh,
    BulkRefresh,
    SetExpiresAfter,
    SetRefreshableAfter,
    EstimatedSize,
    WeightedSize,
    Search,
    Query,
    EnsureSearchIndex,
    DropSearchIndex,
    /// A page of `keys`.
    Keys,
    /// A page of `entries` (or `values`).
    Entries,
}

/// How many [`Op`]s there are.
#[cfg(feature = "metrics")]
const OPS: usize = Op::Entries as usize + 1;

impl Op {
    /// The operation's name: the method's.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::GetIfPresent => "get_if_present",
            Self::BulkGet => "bulk_get",
            Self::BulkGetWith => "bulk_get_with",
            Self::GetEntry => "get_entry",
            Self::ProbeEntry => "probe_entry",
            Self::Set => "set",
            Self::SetWithTtl => "set_with_ttl",
            Self::BulkSet => "bulk_set",
            Self::Invalidate => "invalidate",
            Self::InvalidateByTags => "invalidate_by_tags",
            Self::InvalidateAll => "invalidate_all",
            Self::Compute => "compute",
            Self::ComputeWithTtl => "compute_with_ttl",
            Self::ComputeIfAbsent => "compute_if_absent",
            Self::ComputeIfPresent => "compute_if_present",
            Self::Refresh => "refresh",
            Self::BulkRefresh => "bulk_refresh",
            Self::SetExpiresAfter => "set_expires_after",
            Self::SetRefreshableAfter => "set_refreshable_after",
            Self::EstimatedSize => "estimated_size",
            Self::WeightedSize => "weighted_size",
            Self::Search => "search",
            Self::Query => "query",
            Self::EnsureSearchIndex => "ensure_search_index",
            Self::DropSearchIndex => "drop_search_index",
            Self::Keys => "keys",
            Self::Entries => "entries",
        }
    }

    /// The provider's timeout that bounds the operation (its deadline's budget; for a load,
    /// each of its steps').
    pub(crate) const fn timeout<T>(self, config: &ProviderConfig<T>) -> Duration {
        match self {
            Self::BulkGet
            | Self::BulkGetWith
            | Self::BulkSet
            | Self::InvalidateByTags
            | Self::BulkRefresh
            | Self::EstimatedSize
            | Self::WeightedSize => config.bulk_operation_timeout,
            Self::Compute | Self::ComputeWithTtl | Self::ComputeIfAbsent | Self::ComputeIfPresent => {
                config.atomic_operation_timeout
            }
            Self::Search | Self::Query | Self::EnsureSearchIndex | Self::DropSearchIndex => {
                config.search_timeout
            }
            Self::InvalidateAll => config.flush_timeout,
            Self::Get
            | Self::GetIfPresent
            | Self::GetEntry
            | Self::ProbeEntry
            | Self::Set
            | Self::SetWithTtl
            | Self::Invalidate
            | Self::Refresh
            | Self::SetExpiresAfter
            | Self::SetRefreshableAfter
            | Self::Keys
            | Self::Entries => config.operation_timeout,
        }
    }

    /// Whether the operation invalidates entries of its namespace (loads in flight must not
    /// be joined by callers that start after it returned).
    pub(crate) const fn invalidates(self) -> bool {
        matches!(self, Self::Invalidate | Self::InvalidateByTags | Self::InvalidateAll)
    }

    /// The operation that makes reads of kind `read` (label `operation` of the hit and miss
    /// counters).
    #[cfg(feature = "metrics")]
    const fn reading(read: Read) -> Self {
        match read {
            Read::Get => Self::Get,
            Read::GetIfPresent => Self::GetIfPresent,
            Read::BulkGet => Self::BulkGet,
            Read::BulkGetWith => Self::BulkGetWith,
            Read::GetEntry => Self::GetEntry,
        }
    }
}

/// `ok` or `error` (label `outcome`, span attribute `slotcache.outcome`).
const fn outcome<T, E>(r: &Result<T, E>) -> &'static str {
    if r.is_ok() { "ok" } else { "error" }
}

/// A short, stable name of a cache error's kind (span attribute `error.type`).
pub(crate) const fn error_type(e: &CacheError) -> &'static str {
    match e {
        CacheError::Request(_) => "request",
        CacheError::Submit(_) => "submit",
        CacheError::Timeout { .. } => "timeout",
        CacheError::Closed => "closed",
        CacheError::Codec(_) | CacheError::Corrupt { .. } | CacheError::Transform { .. } => "codec",
        CacheError::Loader(_) | CacheError::LoaderAborted(_) | CacheError::NotFound => "loader",
        CacheError::NotDurable { .. } => "not_durable",
        CacheError::UnexpectedReply { .. } => "unexpected_reply",
        _ => "other",
    }
}

/// What one namespace records: its name for the spans, and its metric handles.
#[derive(Debug)]
pub(crate) struct NamespaceObs {
    /// The namespace's name without the trailing `:`.
    name: String,
    #[cfg(feature = "metrics")]
    metrics: metrics_impl::NamespaceMetrics,
}

impl NamespaceObs {
    /// For the namespace `name` (normalised, with its trailing `:`).
    pub(crate) fn new(name: &str) -> Self {
        let name = name.strip_suffix(':').unwrap_or(name).to_owned();
        Self {
            #[cfg(feature = "metrics")]
            metrics: metrics_impl::NamespaceMetrics::new(&name),
            name,
        }
    }

    /// Runs a cache operation inside its span, recording its duration and outcome, and the
    /// hits and misses the namespace's `counters` counted since the last operation.
    pub(crate) async fn observe<T>(
        &self,
        op: Op,
        counters: &Counters,
        fut: impl Future<Output = Result<T, CacheError>>,
    ) -> Result<T, CacheError> {
        let span = tracing::debug_span!(
            "slotcache.cache",
            otel.name = op.name(),
            db.system = "valkey",
            db.system.name = "valkey",
            db.operation = op.name(),
            db.operation.name = op.name(),
            slotcache.namespace = %self.name,
            slotcache.outcome = Empty,
            error.type = Empty,
        );
        #[cfg(feature = "metrics")]
        let started = Instant::now();
        let result = if span.is_disabled() { fut.await } else { fut.instrument(span.clone()).await };
        if !span.is_disabled() {
            span.record("slotcache.outcome", outcome(&result));
            if let Err(e) = &result {
                span.record("error.type", error_type(e));
            }
        }
        #[cfg(feature = "metrics")]
        {
            self.metrics.operation(op, result.is_ok(), started.elapsed());
            self.metrics.reads(counters);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = counters;
        result
    }

    /// A loader call of `op` that started at `started` and succeeded (`ok`) or failed.
    #[cfg_attr(not(feature = "metrics"), allow(clippy::unused_self))]
    pub(crate) fn load(&self, op: Op, started: Instant, ok: bool) {
        #[cfg(feature = "metrics")]
        self.metrics.load(op, ok, started.elapsed());
        #[cfg(not(feature = "metrics"))]
        let _ = (op, started, ok);
    }

    /// The span of a background load of this namespace (`op`: what started it).
    pub(crate) fn load_span(&self, op: Op) -> tracing::Span {
        tracing::debug_span!(
            "slotcache.load",
            db.system = "valkey",
            db.system.name = "valkey",
            db.operation.name = op.name(),
            slotcache.namespace = %self.name,
        )
    }
}

/// The span of one request to the cluster (`slotcache.request`): the command, its slot; the
/// node that answered and the outcome are recorded when it completes.
pub(crate) fn request_span(prepared: &slotcache_core::client::Prepared, kind: &'static str) -> tracing::Span {
    tracing::debug_span!(
        "slotcache.request",
        otel.name = prepared.command_name(),
        db.system = "valkey",
        db.system.name = "valkey",
        db.operation = prepared.command_name(),
        db.operation.name = prepared.command_name(),
        db.operation.batch.size = prepared.parts(),
        slotcache.request.kind = kind,
        slotcache.slot = prepared.slot().map(slotcache_core::Slot::get),
        server.address = Empty,
        server.port = Empty,
        slotcache.outcome = Empty,
        error.type = Empty,
    )
}

/// Records a finished request's outcome on its span.
pub(crate) fn request_done<T>(span: &tracing::Span, result: &Result<T, crate::Error>) {
    span.record("slotcache.outcome", outcome(result));
    if let Err(e) = result {
        span.record("error.type", client_error_type(e));
    }
}

/// A short, stable name of a client error's kind (span attribute `error.type`).
const fn client_error_type(e: &crate::Error) -> &'static str {
    match e {
        crate::Error::Request(_) => "request",
        crate::Error::Submit(_) => "submit",
        crate::Error::Closed => "closed",
        _ => "other",
    }
}

/// Records the node that answered on a request's span (from the driver).
pub(crate) fn request_node(span: &tracing::Span, node: &slotcache_core::NodeAddr) {
    span.record("server.address", node.host());
    span.record("server.port", node.port());
}

/// What the driver records, per node and for the cluster; nothing without the feature.
#[cfg(not(feature = "metrics"))]
#[derive(Debug)]
pub(crate) struct DriverMetrics;

#[cfg(not(feature = "metrics"))]
impl DriverMetrics {
    /// Nothing to register.
    pub(crate) const fn new() -> Self {
        Self
    }

    /// Records what changed since the last call.
    #[allow(clippy::unused_self, clippy::needless_pass_by_ref_mut)]
    pub(crate) const fn sync(&mut self, _client: &mut slotcache_core::client::Client, _now: Instant) {}

    /// The client stopped.
    #[allow(clippy::unused_self, clippy::needless_pass_by_ref_mut)]
    pub(crate) const fn closed(&mut self) {}

    /// When the driver must wake next: the core's timer.
    #[allow(clippy::unused_self)]
    pub(crate) const fn wake_at(&self, core: Option<Instant>) -> Option<Instant> {
        core
    }
}

#[cfg(feature = "metrics")]
pub(crate) use metrics_impl::DriverMetrics;

#[cfg(feature = "metrics")]
mod metrics_impl {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
    use slotcache_core::NodeAddr;
    use slotcache_core::cache::{Counters, Read};
    use slotcache_core::client::{Client, NodeStats};

    use super::{OPS, Op};

    /// How often the slot-map age gauge is brought up to date while nothing else happens.
    const AGE_PERIOD: Duration = Duration::from_secs(1);

    type Lazy<T> = OnceLock<T>;

    /// One namespace's handles, registered on first use.
    #[derive(Debug)]
    pub(super) struct NamespaceMetrics {
        name: String,
        /// Duration by operation and outcome (0: ok, 1: error).
        ops: [[Lazy<Histogram>; 2]; OPS],
        hits: [Lazy<Counter>; OPS],
        misses: [Lazy<Counter>; OPS],
        /// The counters' hits (`[0]`) and misses (`[1]`) by read, as last recorded.
        recorded: [[AtomicU64; 2]; Read::ALL.len()],
        loads: [[Lazy<Counter>; 2]; OPS],
        load_time: [[Lazy<Histogram>; 2]; OPS],
    }

    const fn outcome(ok: bool) -> (usize, &'static str) {
        if ok { (0, "ok") } else { (1, "error") }
    }

    impl NamespaceMetrics {
        pub(super) fn new(name: &str) -> Self {
            Self {
                name: name.to_owned(),
                ops: [const { [const { OnceLock::new() }; 2] }; OPS],
                hits: [const { OnceLock::new() }; OPS],
                misses: [const { OnceLock::new() }; OPS],
                recorded: Default::default(),
                loads: [const { [const { OnceLock::new() }; 2] }; OPS],
                load_time: [const { [const { OnceLock::new() }; 2] }; OPS],
            }
        }

        pub(super) fn operation(&self, op: Op, ok: bool, took: Duration) {
            let (i, label) = outcome(ok);
            if let Some(h) = self.ops.get(op as usize).and_then(|o| o.get(i)) {
                h.get_or_init(|| {
                    histogram!("slotcache_cache_operation_duration_seconds",
                        "namespace" => self.name.clone(), "operation" => op.name(), "outcome" => label)
                })
                .record(took.as_secs_f64());
            }
        }

        /// Adds the hits and misses `counters` counted since the last call (by any operation
        /// of the namespace, each under the operation that read).
        pub(super) fn reads(&self, counters: &Counters) {
            for (read, recorded) in Read::ALL.into_iter().zip(&self.recorded) {
                let (op, (hits, misses)) = (Op::reading(read), counters.reads(read));
                // `fetch_max`: of two operations ending together, the later tally wins and
                // nothing is added twice.
                let [h, m] = recorded;
                let new_hits = hits.saturating_sub(h.fetch_max(hits, Ordering::Relaxed));
                let new_misses = misses.saturating_sub(m.fetch_max(misses, Ordering::Relaxed));
                if new_hits > 0 {
                    if let Some(c) = self.hits.get(op as usize) {
                        c.get_or_init(|| {
                            counter!("slotcache_cache_hits_total", "namespace" => self.name.clone(), "operation" => op.name())
                        })
                        .increment(new_hits);
                    }
                }
                if new_misses > 0 {
                    if let Some(c) = self.misses.get(op as usize) {
                        c.get_or_init(|| {
                            counter!("slotcache_cache_misses_total", "namespace" => self.name.clone(), "operation" => op.name())
                        })
                        .increment(new_misses);
                    }
                }
            }
        }

        pub(super) fn load(&self, op: Op, ok: bool, took: Duration) {
            let (i, label) = outcome(ok);
            if let Some(c) = self.loads.get(op as usize).and_then(|o| o.get(i)) {
                c.get_or_init(|| {
                    counter!("slotcache_cache_loads_total",
                        "namespace" => self.name.clone(), "operation" => op.name(), "outcome" => label)
                })
                .increment(1);
            }
            if let Some(h) = self.load_time.get(op as usize).and_then(|o| o.get(i)) {
                h.get_or_init(|| {
                    histogram!("slotcache_cache_load_duration_seconds",
                        "namespace" => self.name.clone(), "operation" => op.name(), "outcome" => label)
                })
                .record(took.as_secs_f64());
            }
        }
    }

    /// One node's handles, and its counters as last recorded.
    struct NodeMetrics {
        requests: Counter,
        error_replies: Counter,
        connection_errors: Counter,
        timeouts: Counter,
        moved: Counter,
        ask: Counter,
        reconnects: Counter,
        pending: Gauge,
        last: NodeStats,
    }

    impl NodeMetrics {
        fn new(addr: &NodeAddr) -> Self {
            let node = addr.to_string();
            let errors = |kind: &'static str| counter!("slotcache_node_errors_total", "node" => node.clone(), "kind" => kind);
            Self {
                requests: counter!("slotcache_node_requests_total", "node" => node.clone()),
                error_replies: errors("reply"),
                connection_errors: errors("connection"),
                timeouts: errors("timeout"),
                moved: counter!("slotcache_node_moved_total", "node" => node.clone()),
                ask: counter!("slotcache_node_ask_total", "node" => node.clone()),
                reconnects: counter!("slotcache_node_reconnects_total", "node" => node.clone()),
                pending: gauge!("slotcache_node_pending_requests", "node" => node),
                last: NodeStats::default(),
            }
        }

        /// Adds what changed since the last time (so several clients in one process add up).
        fn record(&mut self, now: &NodeStats) {
            let d = |c: &Counter, new: u64, old: u64| {
                if new > old {
                    c.increment(new - old);
                }
            };
            d(&self.requests, now.requests, self.last.requests);
            d(&self.error_replies, now.error_replies, self.last.error_replies);
            d(&self.connection_errors, now.connection_errors, self.last.connection_errors);
            d(&self.timeouts, now.timeouts, self.last.timeouts);
            d(&self.moved, now.moved, self.last.moved);
            d(&self.ask, now.ask, self.last.ask);
            d(&self.reconnects, now.reconnects, self.last.reconnects);
            #[allow(clippy::cast_precision_loss)]
            self.pending.increment(now.pending as f64 - self.last.pending as f64);
            self.last = now.clone();
        }
    }

    /// What the driver records: every node's counters, the refreshes, the slot map's age.
    pub(crate) struct DriverMetrics {
        nodes: Vec<Option<NodeMetrics>>,
        refreshes_ok: Counter,
        refreshes_failed: Counter,
        topology_changes: Counter,
        age: Gauge,
        /// Refreshes applied, failed, and topology changes, as last recorded.
        last: (u64, u64, u64),
        next_age: Option<Instant>,
    }

    impl core::fmt::Debug for DriverMetrics {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("DriverMetrics").field("nodes", &self.nodes.len()).finish_non_exhaustive()
        }
    }

    impl DriverMetrics {
        /// Registers the client-wide handles.
        pub(crate) fn new() -> Self {
            Self {
                nodes: Vec::new(),
                refreshes_ok: counter!("slotcache_topology_refreshes_total", "outcome" => "ok"),
                refreshes_failed: counter!("slotcache_topology_refreshes_total", "outcome" => "error"),
                topology_changes: counter!("slotcache_topology_changes_total"),
                age: gauge!("slotcache_slot_map_age_seconds"),
                last: (0, 0, 0),
                next_age: None,
            }
        }
    }

    impl DriverMetrics {
        /// Records what changed since the last call: called by the driver before it hands out
        /// completions, so a caller sees its own request counted.
        pub(crate) fn sync(&mut self, client: &mut Client, now: Instant) {
            let nodes = &mut self.nodes;
            client.changed_nodes(|id, addr, stats| {
                let i = id.index();
                if nodes.len() <= i {
                    nodes.resize_with(i + 1, || None);
                }
                if let Some(slot) = nodes.get_mut(i) {
                    slot.get_or_insert_with(|| NodeMetrics::new(addr)).record(stats);
                }
            });
            let s = client.stats();
            let (applied, failed, changes) = (s.refresh_successes, s.refresh_failures, s.topology_changes);
            let add = |c: &Counter, new: u64, old: u64| {
                if new > old {
                    c.increment(new - old);
                }
            };
            add(&self.refreshes_ok, applied, self.last.0);
            add(&self.refreshes_failed, failed, self.last.1);
            add(&self.topology_changes, changes, self.last.2);
            let fetched_again = applied != self.last.0;
            self.last = (applied, failed, changes);
            if fetched_again || self.next_age.is_none_or(|at| at <= now) {
                if let Some(at) = client.topology_fetched_at() {
                    self.age.set(now.saturating_duration_since(at).as_secs_f64());
                    self.next_age = Some(now + AGE_PERIOD);
                }
            }
        }

        /// The client stopped: its commands are no longer pending anywhere (the gauges are
        /// shared with other clients of the process, so its part is taken back).
        pub(crate) fn closed(&mut self) {
            for node in self.nodes.iter_mut().flatten() {
                #[allow(clippy::cast_precision_loss)]
                node.pending.decrement(node.last.pending as f64);
                node.last.pending = 0;
            }
            self.next_age = None;
        }

        /// When the driver must wake next: the core's timer, or the next age update.
        pub(crate) fn wake_at(&self, core: Option<Instant>) -> Option<Instant> {
            match (core, self.next_age) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
    }
}
