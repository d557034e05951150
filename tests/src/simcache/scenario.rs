//! One seeded history run of the whole cache in the simulation: workers run the operation mix
//! over a 3+3 simulated cluster while the fault schedule plays; then the faults heal, every key
//! is read once more, every tag is invalidated once more, and the tag history checker judges
//! the history while the orphan check ([`super::orphans`]) reads the quiescent nodes.
//!
//! Besides the schedule, an invalidation often has a primary fail its next few keyed commands
//! ([`super::faults::Fault::FailNext`]) as it starts: its clean-up then fails part-way; and a
//! `compute` often has a tag's primary fail its second keyed command from then
//! ([`super::faults::Fault::FailAfter`]): the compute's tag round, after its token read.
//!
//! Rerun one seed: `SLOTCACHE_SIM_SEED=<seed> cargo test -p slotcache-tests --test
//! sim_cache_history -- --nocapture` (the failure message prints the seed, the violations and
//! the simulation's trace).

use std::sync::Arc;
use std::time::Duration;

use slotcache_core::cache::op::Scope;
use slotcache_core::cache::op::invalidate_tags::Variant;
use slotcache_core::cache::op::search_query;
use slotcache_core::cache::op::{compute, flights, load};
use slotcache_core::cache::{Durability, Storage};
use slotcache_core::keys::Namespace;

use crate::history::check::{Figures, check_p1};
use crate::history::{History, Op, Violation};
use crate::sim::{EvictionPolicy, Sim, SimCluster};

use super::faults::{Schedule, apply};
use super::ops::{CacheOps, Search, SearchFilter};
use super::runner::Runner;
use super::workload::{Mix, Ops};

/// What a run varies besides the seed.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The size of the run.
    pub mix: Mix,
    /// The `invalidate_by_tags` bug variant (test-only).
    pub variant: Variant,
    /// The reload bug variant (test-only).
    pub load_variant: load::Variant,
    /// The `bulk_refresh` bug variant (test-only; the reload's variants).
    pub bulk_refresh_variant: load::Variant,
    /// The single-flight bug variant (test-only).
    pub flights_variant: flights::Variant,
    /// The compute bug variant (test-only).
    pub compute_variant: compute::Variant,
    /// The iteration bug variant (test-only).
    pub iterate_variant: slotcache_core::cache::op::iterate::Variant,
    /// The fault schedule's horizon (virtual time).
    pub horizon: Duration,
    /// A searchable namespace (JSON documents, queries mixed in) instead of envelopes.
    pub documents: bool,
    /// The search bug variant (test-only; with `documents`).
    pub search_variant: search_query::Variant,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            mix: Mix::default(),
            variant: Variant::Correct,
            load_variant: load::Variant::Correct,
            bulk_refresh_variant: load::Variant::Correct,
            flights_variant: flights::Variant::Correct,
            compute_variant: compute::Variant::Correct,
            iterate_variant: slotcache_core::cache::op::iterate::Variant::Correct,
            horizon: Duration::from_secs(2),
            documents: false,
            search_variant: search_query::Variant::Correct,
        }
    }
}

impl Options {
    /// The searchable-namespace run: documents, queries, index operations.
    #[must_use]
    pub fn documents() -> Self {
        Self { documents: true, ..Self::default() }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The whole history.
    pub history: History,
    /// What the checker found.
    pub violations: Vec<Violation>,
    /// What it looked at.
    pub figures: Figures,
    /// The faults applied, in order.
    pub faults: Vec<String>,
    /// The run's conditions (TTL, eviction, lock).
    pub conditions: String,
    /// Keys the primaries evicted under `maxmemory` (summed over the nodes).
    pub evicted: u64,
    /// The simulation's trace (its last events).
    pub trace: String,
    /// The test that reruns a seed.
    pub test: &'static str,
}

impl Outcome {
    /// A failure message: the seed, how to rerun it, the violations, the faults, the trace.
    #[must_use]
    pub fn report(&self) -> String {
        let mut s = format!(
            "seed {} (rerun: SLOTCACHE_SIM_SEED={} cargo test -p slotcache-tests --test {}): \
             {} violation(s) in {} operations\n",
            self.seed,
            self.seed,
            self.test,
            self.violations.len(),
            self.history.len()
        );
        for v in self.violations.iter().take(5) {
            s.push_str(&format!("  {v}\n"));
        }
        s.push_str(&format!("conditions: {}\nfaults: {:?}\n", self.conditions, self.faults));
        s.push_str(&self.trace);
        s
    }
}

/// The namespace a run uses: `sim` (envelopes) or `doc` (JSON documents, searchable).
fn scope(documents: bool) -> Arc<Scope> {
    let name = if documents { "doc" } else { "sim" };
    Arc::new(Scope {
        ns: Namespace::new(name).expect("a valid namespace"),
        name: format!("{name}:"),
        storage: if documents { Storage::Document } else { Storage::Envelope },
        max_value_size: 1 << 20,
        durability: Durability::default(),
        expire_after_read_ms: None,
    })
}

/// The `maxmemory` of an evicting run's primaries, in the simulated store's bytes (keys and
/// values): a few entries and tag keys, so that a run's dozen keys fill it.
pub const EVICTING_MAXMEMORY: usize = 600;

/// The policies an evicting run draws from, each as likely.
pub const EVICTION_POLICIES: [EvictionPolicy; 5] = [
    EvictionPolicy::AllKeysLru,
    EvictionPolicy::AllKeysRandom,
    EvictionPolicy::VolatileLru,
    EvictionPolicy::VolatileTtl,
    EvictionPolicy::NoEviction,
];

/// Runs one seed.
#[must_use]
pub fn run(seed: u64, options: Options) -> Outcome {
    let mut cfg = Sim::config();
    cfg.request_timeout = Duration::from_secs(2);
    let mut cluster = SimCluster::new(3, 1);
    cluster.randomize_replication_lag(Duration::from_millis(3));
    // Conditions drawn from the seed: short TTLs that expire during the run, a maxmemory small
    // enough to evict, loads under the cluster lock.
    let mut conditions = crate::history::workload::Rng::new(seed ^ 0xC0D1);
    let evicting = conditions.below(4) == 0;
    // The policy of an evicting run, drawn apart (so the conditions stay what they were for each
    // seed): any key evicted, keys with a TTL only (without one the node fills and refuses
    // writes), or none (`OOM` as soon as it is full).
    let policy =
        EVICTION_POLICIES[crate::history::workload::Rng::new(seed ^ 0xE71C).below(EVICTION_POLICIES.len())];
    if evicting {
        for p in cluster.primaries() {
            cluster.set_maxmemory(&p, EVICTING_MAXMEMORY, policy);
        }
    }
    let ttl_ms = (conditions.below(3) == 0).then(|| 50 + conditions.next() % 500);
    let lock_hold = (conditions.below(3) == 0).then(|| Duration::from_millis(200));
    // Loaders that take time (each up to 50 to 250 ms), so that loads overlap invalidations (drawn
    // apart, so the conditions above stay what they were for each seed).
    let loader_ms = 50 + crate::history::workload::Rng::new(seed ^ 0x10AD).next() % 201;
    let mut sim = Sim::new(cluster, cfg, seed);
    // SLOTCACHE_SIM_TRACE=<events> keeps a longer trace for a failing seed.
    let trace = std::env::var("SLOTCACHE_SIM_TRACE").ok().and_then(|t| t.parse().ok()).unwrap_or(400);
    sim.enable_trace(trace);
    let mut runner = Runner::new(sim, seed);
    let mut ops = CacheOps::new(scope(options.documents));
    if options.documents {
        ops.search = Some(Search::new(&ops.scope, options.search_variant));
    }
    ops.invalidate_tags_variant = options.variant;
    ops.load_variant = options.load_variant;
    ops.bulk_refresh_variant = options.bulk_refresh_variant;
    ops.compute_variant = options.compute_variant;
    ops.iterate_variant = options.iterate_variant;
    ops.flights = std::rc::Rc::new(std::cell::RefCell::new(
        flights::Flights::default().with_variant(options.flights_variant),
    ));
    ops.ttl_ms = ttl_ms;
    ops.lock_hold = lock_hold;
    ops.loader_ms = loader_ms;
    let mut draw = Ops::new(options.mix, seed);
    if options.documents {
        draw = draw.with_search();
    }
    let episode_slot =
        ops.scope.ns.tag_key(b"t0").map_or_else(|_| slotcache_core::key_slot(b"t0"), |k| k.slot());
    let mut schedule = Schedule::random(seed, options.horizon, episode_slot);
    let mut left = vec![options.mix.ops_per_worker; options.mix.workers];
    // Think time between a worker's operations, so that the run spans the fault schedule.
    let per_op = options.horizon / u32::try_from(options.mix.ops_per_worker.max(1)).unwrap_or(1);
    let mut pace = crate::history::workload::Rng::new(seed ^ 0x7A11);
    let mut partial = crate::history::workload::Rng::new(seed ^ 0xFA11);
    let mut compute_faults = crate::history::workload::Rng::new(seed ^ 0xC0FA);
    let mut next_start = vec![Duration::ZERO; options.mix.workers];
    let mut records = Vec::new();
    let mut faults = Vec::new();
    // The lossy failovers, for the orphan check.
    let mut lossy = Vec::new();
    let limit = options.horizon * 10;
    for _ in 0..1_000_000 {
        let elapsed = runner.sim.elapsed();
        for f in schedule.due(elapsed) {
            if let super::faults::Fault::LossyFailover(s) = f {
                let owner = runner.sim.cluster.owner.get(usize::from(s.get())).cloned().flatten();
                let slots = (0..16384u16)
                    .filter(|&i| owner.is_some() && runner.sim.cluster.owner[usize::from(i)] == owner)
                    .collect();
                lossy.push(super::orphans::Lossy { at: runner.clock(), slots });
            }
            faults.push(apply(&mut runner.sim, &f));
        }
        for w in 0..left.len() {
            if left[w] > 0 && !runner.is_busy(w) && next_start[w] <= elapsed {
                left[w] -= 1;
                let think = u64::try_from(per_op.as_micros()).unwrap_or(1).max(1) * 2;
                next_start[w] = elapsed + Duration::from_micros(pace.next() % think);
                let op = draw.next(w);
                if matches!(op, Op::InvalidateTags { .. }) && partial.below(3) == 0 {
                    let s = slotcache_core::key_slot(format!("fail-{}", partial.next()).as_bytes());
                    let n = 1 + u32::try_from(partial.below(3)).unwrap_or(0);
                    faults.push(apply(&mut runner.sim, &super::faults::Fault::FailNext(s, n)));
                }
                // Half the computes have the primary of one tag fail its second keyed command
                // from now: with a tagged entry, the tag round that follows the token read.
                if matches!(op, Op::Compute { .. }) && compute_faults.below(2) == 0 {
                    let t = compute_faults.below(options.mix.tags);
                    let key = ops.scope.ns.tag_key(format!("t{t}").as_bytes());
                    if let Ok(key) = key {
                        let fault = super::faults::Fault::FailAfter(key.slot(), 1, 1);
                        faults.push(apply(&mut runner.sim, &fault));
                    }
                }
                if let Some(m) = ops.machine(&op, runner.sim.now) {
                    runner.spawn(w, op, m);
                }
            }
        }
        let next_worker =
            (0..left.len()).filter(|&w| left[w] > 0 && !runner.is_busy(w)).map(|w| next_start[w]).min();
        let quantum =
            schedule.next_at().into_iter().chain(next_worker).min().map_or(Duration::from_millis(50), |at| {
                at.saturating_sub(elapsed).clamp(Duration::from_micros(1), Duration::from_millis(50))
            });
        if runner.running() == 0 {
            // Nothing to run until the next worker's start or fault: let time pass.
            runner.sim.run_for(quantum);
        } else {
            runner.step(quantum);
        }
        records.extend(runner.take_finished());
        let done = left.iter().all(|&l| l == 0) && runner.running() == 0;
        if done || runner.sim.elapsed() > limit {
            break;
        }
    }
    // Heal, settle, and read every key once more.
    for f in schedule.faults.drain(..).map(|(_, f)| f) {
        if matches!(f, super::faults::Fault::ThawAll | super::faults::Fault::ResumeAll) {
            faults.push(apply(&mut runner.sim, &f));
        }
    }
    faults.push(apply(&mut runner.sim, &super::faults::Fault::ThawAll));
    faults.push(apply(&mut runner.sim, &super::faults::Fault::ResumeAll));
    runner.sim.run_for(Duration::from_millis(500));
    let checker = options.mix.workers;
    let mut last: Vec<Op> =
        (0..options.mix.keys).map(|i| Op::Get { key: crate::history::workload::key_name(i) }).collect();
    if options.documents {
        last.push(Op::Query { filter: "limit=100".into() });
    }
    for op in last {
        if let Some(m) = ops.machine(&op, runner.sim.now) {
            runner.spawn(checker, op, m);
        }
        for _ in 0..10_000 {
            let more = runner.step(Duration::from_millis(50));
            records.extend(runner.take_finished());
            if !more && runner.running() == 0 {
                break;
            }
        }
    }
    // Quiescence: every tag invalidated once more (recorded), then no entry may be left with a
    // stale token that no tag lists.
    for _ in 0..3 {
        for n in runner.sim.cluster.nodes.values_mut() {
            n.fail_next = 0;
            n.fail_skip = 0;
        }
        let mut failed = false;
        for t in 0..options.mix.tags {
            let op = Op::InvalidateTags { tags: vec![format!("t{t}")] };
            if let Some(m) = ops.machine(&op, runner.sim.now) {
                runner.spawn(checker, op, m);
            }
            for _ in 0..10_000 {
                let more = runner.step(Duration::from_millis(50));
                let done = runner.take_finished();
                failed |= done.iter().any(|r| r.result.is_err());
                records.extend(done);
                if !more && runner.running() == 0 {
                    break;
                }
            }
        }
        runner.sim.run_for(Duration::from_millis(500));
        if !failed {
            break;
        }
    }
    let orphans = super::orphans::find(&runner.sim.cluster, &ops.scope.ns);
    let history = History::merge([records]);
    let (mut violations, figures) = check_p1(&history);
    violations.extend(query_violations(&history));
    if options.documents && ttl_ms.is_none() && !evicting {
        violations.extend(missing_from_last_query(&history, checker));
    }
    violations.extend(super::failed_writes::violations(&history));
    violations.extend(super::orphans::judge(&ops.scope.ns, &orphans, &history.records, &lossy, evicting));
    let evicting = if evicting { policy.name() } else { "no" };
    let conditions =
        format!("ttl {ttl_ms:?} ms, evicting {evicting}, lock {lock_hold:?}, loaders up to {loader_ms} ms");
    let test = if options.documents { "sim_search_history" } else { "sim_cache_history" };
    let evicted = runner.sim.cluster.nodes.values().map(|n| n.evicted).sum();
    Outcome {
        seed,
        history,
        violations,
        figures,
        faults,
        conditions,
        evicted,
        trace: runner.sim.trace_dump(),
        test,
    }
}

/// Queries whose page held some key twice (property `Q`, reported by [`query_violations`]).
/// The old fan-out ([`search_query::Variant::PerSlotFanOut`]) did this after a failover: a
/// topology patched by `MOVED` named two index slots on one primary, whose two indexes both
/// cover its documents.
#[must_use]
pub fn duplicate_pages(h: &History) -> Vec<&crate::history::Record> {
    h.records
        .iter()
        .filter(|r| match (&r.op, &r.result) {
            (Op::Query { .. }, Ok(crate::history::Ret::Found(items))) => {
                let keys: std::collections::BTreeSet<&String> = items.iter().map(|(k, _)| k).collect();
                keys.len() != items.len()
            }
            _ => false,
        })
        .collect()
}

/// The last query (`limit=100`, every document, after the faults healed) must list every key
/// that the quiescent reads just before it found (property `Q`: no document missed because of
/// the topology the client had, which can still be patched by `MOVED`). Judged only in runs
/// without TTLs or eviction (an entry could go between the read and the query); keys whose
/// last read failed, and a failed query, are not judged.
///
/// Nor is a key that another worker's operation may have removed between its read and the
/// query (`may_remove`: an invalidation of the key or of any tag, `invalidate_all`, a TTL
/// set, an index dropped) whenever that operation was still running after the read started:
/// the workers' loop stops at its time limit, so an operation stuck behind a half-open
/// connection can still run during the quiescent reads (seed 45: an `invalidate_by_tags(t2,
/// t1)` invoked at 12 s, queued on a stalled connection, deleted `k00` (tag `t2`) at 21.088 s,
/// after the read of `k00` at 20.5 s and before the query at 21.091 s, then failed with the
/// connection loss). Such an operation takes effect during its interval, failed or not: a
/// failed `invalidate_by_tags` still runs its remaining delete rounds after the token swap
/// (docs/consistency.md, "A failed clean-up stays retryable"), and a query searches the
/// documents each primary holds when its `FT.SEARCH` runs (docs/search.md, steps 3 and 5). So
/// the read before the delete and the query after it are both correct; listing `k00` would
/// have been the stale hit.
#[must_use]
pub fn missing_from_last_query(h: &History, checker: usize) -> Vec<Violation> {
    let last: Vec<&crate::history::Record> = h.records.iter().filter(|r| r.worker == checker).collect();
    let Some(q) = last.iter().rev().find(|r| matches!(r.op, Op::Query { .. })) else { return Vec::new() };
    let Ok(crate::history::Ret::Found(items)) = &q.result else { return Vec::new() };
    let listed: std::collections::BTreeSet<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
    let mut out = Vec::new();
    for r in last.iter().filter(|r| r.completed <= q.invoked) {
        let (Op::Get { key }, Ok(crate::history::Ret::Read(Some(_)))) = (&r.op, &r.result) else { continue };
        // Only the quiescent read just before the query counts.
        let later = last.iter().any(|o| {
            matches!(&o.op, Op::Get { key: k } if k == key)
                && o.invoked > r.invoked
                && o.completed <= q.invoked
        });
        // Another worker's operation that may remove the document, still running after the
        // read started and started before the query ended.
        let raced = h.records.iter().any(|o| {
            o.worker != checker
                && may_remove(&o.op, key)
                && o.completed > r.invoked
                && o.invoked < q.completed
        });
        if !later && !raced && !listed.contains(key.as_str()) {
            out.push(Violation {
                property: "Q",
                what: format!("{key} was read just before the last query, which did not list it"),
                ops: vec![(*r).clone(), (*q).clone()],
            });
        }
    }
    out
}

/// Whether `op` may remove `key`'s document (or hide it from a query): an invalidation of the
/// key, of any tag (the key's tags are not known to the checker: a concurrent write may have
/// given it any), of everything, a TTL set on it, or the index dropped.
fn may_remove(op: &Op, key: &str) -> bool {
    match op {
        Op::Invalidate { key: k } | Op::Expire { key: k, .. } => k == key,
        Op::InvalidateTags { .. } | Op::InvalidateAll | Op::DropIndex => true,
        _ => false,
    }
}

/// Queries whose page holds more items than the limit, a key twice ([`duplicate_pages`]), or
/// a document that does not match the filter although nothing else could have been read
/// (property `Q`; P1 on their documents is checked with the other reads).
///
/// A page's documents are read after the search (`NOCONTENT`, then `JSON.MGET`), so a document
/// replaced in between is returned with its new value, matching or not: a non-matching value is
/// a violation only when its write completed before the query was invoked and no other write
/// of that key was invoked before the query completed.
#[must_use]
pub fn query_violations(h: &History) -> Vec<Violation> {
    let mut writes: std::collections::BTreeMap<&str, Vec<&crate::history::Record>> = Default::default();
    let mut by_value: std::collections::BTreeMap<&str, &crate::history::Record> = Default::default();
    for r in &h.records {
        for (k, v) in r.op.writes() {
            writes.entry(k).or_default().push(r);
            by_value.insert(v, r);
        }
    }
    let mut out = Vec::new();
    for r in &h.records {
        let (Op::Query { filter }, Ok(crate::history::Ret::Found(items))) = (&r.op, &r.result) else {
            continue;
        };
        let Some(f) = SearchFilter::parse(filter) else { continue };
        for (k, v) in items {
            let settled = by_value.get(v.as_str()).is_some_and(|w| {
                w.ok()
                    && w.completed < r.invoked
                    && writes
                        .get(k.as_str())
                        .into_iter()
                        .flatten()
                        .all(|o| o.id == w.id || o.invoked > r.completed)
            });
            if !f.matches(v) && settled {
                out.push(Violation {
                    property: "Q",
                    what: format!("{k} = {v} does not match {filter}"),
                    ops: vec![by_value[v.as_str()].clone(), r.clone()],
                });
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some((k, _)) = items.iter().find(|(k, _)| !seen.insert(k)) {
            out.push(Violation {
                property: "Q",
                what: format!("{k} listed twice in one page"),
                ops: vec![r.clone()],
            });
        }
        if f.limit > 0 && items.len() > f.limit {
            out.push(Violation {
                property: "Q",
                what: format!("{} items for limit {}", items.len(), f.limit),
                ops: vec![r.clone()],
            });
        }
    }
    out
}
