//! One checked run on a real cluster: the workload while a disruption acts on the cluster, then
//! the quiescent checks, the history check and the in-run count check, and the `[figure]`
//! lines. Shared by the `tags_history*` tests.

use core::future::Future;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotcache_core::key_slot;
use slotcache_rt::ProviderConfig;

use super::check::{CountFigures, Figures, check_counts, check_p1_with};
use super::quiescent::{self, Report};
use super::workload::{self, Spec, Stop};
use super::{Clock, History, SlotcacheSubject, Subject, Violation, per_property};
use crate::conformance::Rt;
use crate::{Cluster, ClusterBuilder, DRILL_TIMEOUT};

/// Starts a cluster, printing how long it took.
///
/// # Panics
/// If the cluster does not form.
#[must_use]
pub fn start(builder: ClusterBuilder) -> Cluster {
    let t0 = Instant::now();
    let c = builder.start().expect("cluster");
    eprintln!("[timing] tags_history: cluster ready (permit wait included) in {:.2?}", t0.elapsed());
    c
}

/// The runtime a run uses, kept for the whole run (tokio's is built once: the provider's driver
/// lives in it between `block_on` calls).
pub struct Runner {
    /// The runtime.
    pub rt: Rt,
    tokio: Option<tokio::runtime::Runtime>,
}

impl Runner {
    /// A runner on `rt`.
    ///
    /// # Panics
    /// If tokio's runtime cannot be built.
    #[must_use]
    pub fn new(rt: Rt) -> Self {
        let tokio = matches!(rt, Rt::Tokio).then(|| {
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio")
        });
        Self { rt, tokio }
    }

    /// Runs `fut` to completion on the runtime.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match &self.tokio {
            Some(t) => t.block_on(fut),
            None => self.rt.block_on(fut),
        }
    }
}

/// The provider settings of the history runs over `seeds`.
#[must_use]
pub fn provider_config(seeds: Vec<String>) -> ProviderConfig {
    let mut cfg = ProviderConfig::new(seeds);
    cfg.client_name = "slotcache-tags-history".into();
    cfg.bulk_operation_timeout = Duration::from_secs(3);
    cfg
}

/// slotcache on namespace `ns` of `cluster`.
///
/// # Panics
/// If the provider cannot connect.
#[must_use]
pub fn slotcache(rt: &Runner, cluster: &Cluster, ns: &str) -> Arc<SlotcacheSubject> {
    slotcache_with(rt, cluster, ns, |_| {})
}

/// slotcache on namespace `ns` of `cluster`, with the provider settings `adjust` makes.
///
/// # Panics
/// If the provider cannot connect.
#[must_use]
pub fn slotcache_with(
    rt: &Runner,
    cluster: &Cluster,
    ns: &str,
    adjust: impl FnOnce(&mut ProviderConfig),
) -> Arc<SlotcacheSubject> {
    let seeds: Vec<String> = cluster.seeds().iter().map(ToString::to_string).collect();
    let mut cfg = provider_config(seeds);
    adjust(&mut cfg);
    Arc::new(rt.block_on(SlotcacheSubject::connect(rt.rt.runtime(), cfg, ns)).expect("provider"))
}

/// A stretch of the run (on the run's [`Clock`]) in which the disruption acted, e.g. from a
/// kill to the promotion of the replica.
#[derive(Clone, Debug)]
pub struct Window {
    /// What happened in it.
    pub name: String,
    /// When it began.
    pub from: u64,
    /// When it ended.
    pub to: u64,
}

/// What a disruption did: a description for the `[figure]` line, and its windows.
#[derive(Clone, Debug, Default)]
pub struct Disruption {
    /// What was done, with its timings.
    pub what: String,
    /// The windows of trouble, to count the operations that failed in each.
    pub windows: Vec<Window>,
}

impl From<String> for Disruption {
    fn from(what: String) -> Self {
        Self { what, windows: Vec::new() }
    }
}

impl From<&str> for Disruption {
    fn from(what: &str) -> Self {
        what.to_owned().into()
    }
}

/// What one run found.
pub struct Outcome {
    /// The whole history (workload and quiescent checks).
    pub history: History,
    /// Guarantee 1 (and read/write consistency) violations.
    pub p1: Vec<Violation>,
    /// What the history check looked at.
    pub fig: Figures,
    /// In-run count bound violations (guarantee 3).
    pub counts: Vec<Violation>,
    /// What the in-run count check looked at.
    pub count_fig: CountFigures,
    /// The quiescent checks' report.
    pub quiescent: Report,
    /// What the disruption did.
    pub disruption: Disruption,
}

impl Outcome {
    /// Every violation found.
    #[must_use]
    pub fn violations(&self) -> Vec<&Violation> {
        self.p1.iter().chain(&self.counts).chain(&self.quiescent.violations).collect()
    }

    /// Operations of the workload that failed within window `w`.
    #[must_use]
    pub fn errors_in(&self, w: &Window) -> usize {
        self.history
            .records
            .iter()
            .filter(|r| {
                !r.ok() && r.worker != quiescent::CHECKER && r.invoked <= w.to && r.completed >= w.from
            })
            .count()
    }

    /// Prints the `[figure]` lines, the kinds of errors, the first violations and what could
    /// not be checked.
    pub fn print(&self, run: &str, subject: &str, spec: &Spec) {
        let all = self.violations();
        let per: Vec<Violation> = all.iter().map(|v| (*v).clone()).collect();
        let [p1, p2, p3, p4, p5] = per_property(&per);
        let h = &self.history;
        eprintln!(
            "[figure] tags_history run={run} subject={subject} seed={} ops={} reads={} hits={} \
             hits_after_covering_invalidation={} invalidations={} errors={} counts_in_run_checked={} \
             (narrowed {}) counts_checked={} metadata_checked={} violations={} \
             (P1 {p1}, P2 {p2}, P3 {p3}, P4 {p4}, P5 {p5}) unchecked={}",
            spec.seed,
            h.len(),
            h.reads_ok(),
            self.fig.hits_checked,
            self.fig.hits_after_covering_invalidation,
            h.invalidations_ok(),
            h.errors(),
            self.count_fig.checked,
            self.count_fig.narrowed,
            self.quiescent.counts_checked,
            self.quiescent.metadata_checked,
            all.len(),
            self.quiescent.unchecked.len(),
        );
        let kinds: Vec<String> =
            h.per_kind().iter().map(|(k, (n, failed))| format!("{k} {n} ({failed} failed)")).collect();
        eprintln!("[figure] tags_history run={run} ops by kind: {}", kinds.join(", "));
        eprintln!("[figure] tags_history run={run} disruption: {}", self.disruption.what);
        for w in &self.disruption.windows {
            eprintln!(
                "[figure] tags_history run={run} window \"{}\" ({:.2?}): {} operations failed in it",
                w.name,
                Duration::from_nanos(w.to.saturating_sub(w.from)),
                self.errors_in(w)
            );
        }
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for r in &h.records {
            if let Err(e) = &r.result {
                let op = format!("{}", r.op);
                let op = op.split('(').next().unwrap_or_default();
                *kinds.entry(format!("{op}: {}", e.chars().take(90).collect::<String>())).or_default() += 1;
            }
        }
        for (kind, n) in kinds.iter().take(12) {
            eprintln!("  errors {n:>5} x {kind}");
        }
        for v in all.iter().take(8) {
            eprintln!("  violation {v}");
        }
        if all.len() > 8 {
            eprintln!("  ... {} more", all.len() - 8);
        }
        for u in &self.quiescent.unchecked {
            eprintln!("  unchecked: {u}");
        }
    }
}

/// Runs the workload on `subject` while `disrupt` acts on the cluster (in its own thread, with
/// the run's clock to stamp its windows), then [`judge`]s it.
///
/// # Panics
/// If the workload or the disruption fails, or the cluster is not healthy after it.
pub fn check_run(
    rt: &Runner,
    cluster: &mut Cluster,
    subject: Arc<dyn Subject>,
    spec: &Spec,
    disrupt: impl FnOnce(&mut Cluster, Clock) -> crate::Result<Disruption> + Send,
) -> Outcome {
    check_run_with(rt, cluster, subject.clone(), subject.as_ref(), spec, disrupt)
}

/// [`check_run`] with the workers on `workers` and the quiescent checks on `checker` (another
/// client of the same namespace, e.g. one reading primaries only).
///
/// # Panics
/// As [`check_run`].
pub fn check_run_with(
    rt: &Runner,
    cluster: &mut Cluster,
    workers: Arc<dyn Subject>,
    checker: &dyn Subject,
    spec: &Spec,
    disrupt: impl FnOnce(&mut Cluster, Clock) -> crate::Result<Disruption> + Send,
) -> Outcome {
    let clock = Clock::new();
    let t0 = Instant::now();
    let stop = Stop::pending();
    let (parts, disruption) = std::thread::scope(|s| {
        let done = stop.clone();
        let c = &mut *cluster;
        let d = s.spawn(move || {
            let r = disrupt(c, clock);
            done.disruption_done();
            r
        });
        let parts = rt.block_on(workload::run(rt.rt, workers.clone(), spec, clock, stop));
        (parts, d.join().expect("disruption thread"))
    });
    let parts = parts.expect("workload");
    let disruption = disruption.expect("disruption");
    eprintln!("[timing] tags_history {}: workload {:.2?}", workers.name(), t0.elapsed());
    judge(rt, cluster, checker, spec, clock, History::merge(parts), disruption)
}

/// The checks of a run whose workload recorded `workload` on `clock`: waits for the cluster to
/// be healthy, runs the quiescent checks through `subject`, then the history check and the
/// in-run count check over everything recorded.
///
/// # Panics
/// If the cluster is not healthy within [`DRILL_TIMEOUT`].
pub fn judge(
    rt: &Runner,
    cluster: &Cluster,
    subject: &dyn Subject,
    spec: &Spec,
    clock: Clock,
    workload: History,
    disruption: Disruption,
) -> Outcome {
    cluster.wait_healthy(DRILL_TIMEOUT).expect("cluster healthy after the run");
    let t1 = Instant::now();
    let quiescent = rt.block_on(quiescent::run(rt.rt, subject, cluster, clock, spec, &workload));
    let t2 = Instant::now();
    let history = History::merge([workload.records, quiescent.records.clone()]);
    // Only the workers read through `spec`'s subject; the quiescent checks read primaries.
    let (p1, fig) = check_p1_with(&history, |r| !spec.replica_reads || r.worker == quiescent::CHECKER);
    let (counts, count_fig) = check_counts(&history);
    eprintln!(
        "[timing] tags_history {}: quiescent checks {:.2?}, history checks {:.2?}",
        subject.name(),
        t2 - t1,
        t2.elapsed()
    );
    Outcome { history, p1, fig, counts, count_fig, quiescent, disruption }
}

/// Asserts a slotcache run is clean and checked something: no violation, every quiescent check
/// made, enough hits exposed to invalidations, invalidations and counts.
///
/// # Panics
/// If not.
pub fn assert_clean(run: &str, o: &Outcome) {
    assert!(o.violations().is_empty(), "{run}: slotcache broke a tag guarantee (see the violations above)");
    assert!(o.quiescent.unchecked.is_empty(), "{run}: some quiescent checks could not be made (see above)");
    assert!(o.fig.hits_checked > 100, "{run}: too few hits to check anything");
    assert!(o.fig.hits_after_covering_invalidation > 0, "{run}: no read was ever exposed to an invalidation");
    assert!(o.history.invalidations_ok() > 100, "{run}: too few invalidations");
    assert!(
        o.count_fig.checked > 50 && o.count_fig.narrowed > 0,
        "{run}: too few counts checked during the run"
    );
    assert!(
        o.quiescent.counts_checked >= 7 && o.quiescent.metadata_checked >= 9,
        "{run}: quiescent checks skipped"
    );
}

/// Asserts the workload saw the disruption: some operations failed in every window.
///
/// # Panics
/// If a window passed without a failed operation.
pub fn assert_windows_failed_operations(run: &str, o: &Outcome) {
    assert!(!o.disruption.windows.is_empty(), "{run}: the disruption reported no window");
    for w in &o.disruption.windows {
        assert!(
            o.errors_in(w) > 0,
            "{run}: no operation failed during \"{}\": did it really happen?",
            w.name
        );
    }
}

/// The slots of some of a namespace's tag keys and data keys (distinct).
#[must_use]
pub fn hot_slots(subject: &dyn Subject, spec: &Spec) -> Vec<u16> {
    let mut keys: Vec<Vec<u8>> = spec.tag_names().iter().take(2).map(|t| subject.tag_key(t)).collect();
    keys.extend(spec.key_names().iter().take(4).map(|k| subject.data_key(k)));
    let mut slots: Vec<u16> = keys.iter().map(|k| key_slot(k).get()).collect();
    slots.sort_unstable();
    slots.dedup();
    slots
}

/// A master other than `m`.
///
/// # Panics
/// If the masters cannot be listed.
#[must_use]
pub fn other_master(c: &Cluster, m: usize) -> usize {
    let masters = c.masters().expect("masters");
    let i = masters.iter().position(|&x| x == m).unwrap_or(0);
    masters[(i + 1) % masters.len()]
}

/// The `run_id` of node `i` (`INFO server`): a restarted server has a new one.
///
/// # Errors
/// The node's error.
pub fn run_id(c: &Cluster, i: usize) -> crate::Result<String> {
    let info = c.info(i, "server")?;
    crate::topo::info_field(&info, "run_id")
        .map(str::to_owned)
        .ok_or_else(|| crate::Error::new(format!("node {i}: no run_id in INFO server")))
}

/// Waits (at most [`DRILL_TIMEOUT`]) until master `m` has run at least `scripts` scripts
/// (`EVALSHA` and `EVAL`, `INFO commandstats`): the workload's tagged writes and invalidations
/// are under way on its shard.
///
/// # Errors
/// The wait's timeout or the node's error.
pub fn wait_for_traffic(c: &Cluster, m: usize, scripts: u64) -> crate::Result<Duration> {
    crate::wait_until(
        crate::wait::scaled(DRILL_TIMEOUT),
        &format!("node {m} to run {scripts} scripts"),
        || {
            let stats = c.commandstats(m)?;
            let calls = |name: &str| stats.get(name).map_or(0, |s| s.calls);
            Ok(calls("evalsha") + calls("eval") >= scripts)
        },
    )
}
