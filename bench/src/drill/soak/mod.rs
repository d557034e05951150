//! `slotcache drill --soak DURATION` (issue 18, "Soak"): the tag history workload from several
//! client processes (the `history-client` subcommand, each paced to a fixed rate), faults drawn
//! at random from the drills' list one at a time (each healed and waited out until the
//! cluster is healthy and every process served every shard again), the RSS of every client
//! process sampled, and at the end the history checks and the quiescent checks.
//!
//! - `faults`: the faults and their repair;
//! - `proxies`: a fault proxy in front of every node, for the network faults;
//! - `served`: which shards each process served since when;
//! - `rss`: the RSS samples and their slope;
//! - `report`: the pass criteria, the README and CSVs.

mod faults;
mod proxies;
mod report;
mod rss;
mod served;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use slotcache_core::key_slot;
use slotcache_tests::conformance::Rt;
use slotcache_tests::history::naive::NaiveSubject;
use slotcache_tests::history::process::{ClientArgs, Clients, Kind, read_records};
use slotcache_tests::history::run::{Disruption, Outcome, Runner, judge, slotcache};
use slotcache_tests::history::workload::Spec;
use slotcache_tests::history::{Clock, History, Subject};
use slotcache_tests::{ClusterBuilder, DRILL_TIMEOUT};

use super::shards::Layout;
use crate::workloads::Rng;
use faults::SoakFault;
use served::Served;

/// What a soak does.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// How long the workload runs.
    pub duration: Duration,
    /// Seed of the faults, their gaps and the workload.
    pub seed: u64,
    /// Client processes.
    pub processes: usize,
    /// Workers per process.
    pub workers: usize,
    /// Each worker starts at most one operation per this.
    pub pace: Duration,
    /// How often the RSS of every process is sampled.
    pub rss_every: Duration,
    /// The clients run the naive tag protocol (test-only negative control: must fail).
    pub naive: bool,
    /// Where the README and CSVs go.
    pub out: PathBuf,
    /// The executable whose `history-client` subcommand is a client (the `slotcache` binary).
    pub exe: PathBuf,
    /// The command line, for the README.
    pub command: String,
}

/// The cluster's node timeout during the soak.
const NODE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long after a fault every process must have served every shard again.
pub(crate) const RECOVERY_BOUND: Duration = Duration::from_secs(60);
/// Primaries (each with one replica).
const SHARDS: usize = 3;

/// One injected fault and how it ended.
#[derive(Clone, Debug)]
pub(crate) struct FaultRun {
    pub(crate) kind: SoakFault,
    pub(crate) shard: usize,
    /// From the start of the workload.
    pub(crate) at: Duration,
    /// From the fault's start until the cluster was healthy again (repair included).
    pub(crate) healthy_after: Option<Duration>,
    /// From the fault's start until every process served every shard again.
    pub(crate) served_after: Option<Duration>,
    /// What went wrong, if it did.
    pub(crate) error: Option<String>,
}

impl FaultRun {
    pub(crate) const fn recovered(&self) -> bool {
        self.served_after.is_some() && self.error.is_none()
    }
}

/// What the soak measured.
pub(crate) struct Measured {
    pub(crate) started: SystemTime,
    pub(crate) load_start: [f64; 3],
    pub(crate) commit: String,
    pub(crate) pids: Vec<u32>,
    pub(crate) ops: Vec<usize>,
    pub(crate) faults: Vec<FaultRun>,
    pub(crate) rss: Vec<rss::Sample>,
    pub(crate) run_secs: f64,
    pub(crate) outcome: Outcome,
}

/// What [`run_soak`] found: whether every criterion passed, and the summary it printed.
#[derive(Clone, Debug)]
pub struct SoakOutcome {
    /// Every criterion passed.
    pub passed: bool,
    /// The criteria and figures (as in the README).
    pub summary: String,
}

fn slot_shard(layout: &Layout, slot: u16) -> usize {
    (0..layout.len())
        .find(|&s| layout.range(s).is_some_and(|(lo, hi)| (lo..=hi).contains(&slot)))
        .unwrap_or(0)
}

/// Runs the soak and writes its report to `o.out`.
///
/// # Errors
/// The cluster or the clients could not be started, or the report could not be written.
pub fn run_soak(o: &SoakOptions) -> anyhow::Result<SoakOutcome> {
    let started = SystemTime::now();
    let load_start = crate::run::loadavg();
    let commit = crate::run::command_line(std::path::Path::new("git"), &["describe", "--always", "--dirty"]);
    eprintln!("soak: seed {} (replay with --seed {})", o.seed, o.seed);
    let mut cluster = ClusterBuilder::new()
        .masters(SHARDS)
        .replicas(1)
        .node_timeout(NODE_TIMEOUT)
        .args(["--cluster-require-full-coverage", "no"])
        .label("soak")
        .start()
        .context("forming the soak cluster")?;
    let layout = Layout::read(&cluster)?;
    // Before any client connects: every node reached through its proxy.
    let proxies = proxies::Proxies::start(&cluster)?;
    let runner = Runner::new(Rt::Tokio);
    let ns = "soak";
    let subject: Arc<dyn Subject> = if o.naive {
        Arc::new(
            runner
                .block_on(NaiveSubject::connect(
                    runner.rt.runtime(),
                    cluster.seeds(),
                    ns,
                    Duration::from_millis(1),
                ))
                .map_err(anyhow::Error::msg)?,
        )
    } else {
        slotcache(&runner, &cluster, ns)
    };
    let spec = Spec { workers: o.processes * o.workers, seed: o.seed, ..Spec::new(o.duration) };
    let key_shard: Vec<usize> =
        spec.key_names().iter().map(|k| slot_shard(&layout, key_slot(&subject.data_key(k)).get())).collect();
    let clock = Clock::new();
    let seeds: Vec<String> = cluster.seeds().iter().map(ToString::to_string).collect();
    let args: Vec<ClientArgs> = (0..o.processes)
        .map(|p| ClientArgs {
            seeds: seeds.clone(),
            ns: ns.to_owned(),
            kind: if o.naive { Kind::Naive } else { Kind::Slotcache },
            rt: Rt::Tokio,
            clock: clock.reference(),
            first_worker: p * 100,
            workers: o.workers,
            seed: o.seed.wrapping_add(p as u64),
            run_for: o.duration,
            out: cluster.dir().join(format!("soak-client-{p}.jsonl")),
            pace_us: u64::try_from(o.pace.as_micros()).unwrap_or(u64::MAX),
            report_ms: 500,
        })
        .collect();
    let mut clients = Clients::spawn_with(&o.exe, &["history-client"], &args)?;
    let pids = clients.wait_ready(Duration::from_secs(60))?;
    clients.go()?;
    let t0 = Instant::now();
    let sampler = rss::Sampler::start(pids.clone(), o.rss_every, t0);
    let mut served = Served::new(key_shard, layout.len(), o.processes);
    let mut rng = Rng::new(o.seed);
    let gap_max = (o.duration / 8).clamp(Duration::from_secs(5), Duration::from_secs(60));
    let gap = |rng: &mut Rng| gap_max / 4 + gap_max.mul_f64(rng.below(1000) as f64 / 1000.0 * 0.75);
    // No fault starts this close to the end: the last one recovers while the clients still run.
    let margin = Duration::from_secs(40).min(o.duration / 3);
    let mut next_fault = t0 + gap(&mut rng);
    let mut fault_runs = Vec::new();
    let hot_of = |shard: usize| -> Vec<u16> {
        let mut keys: Vec<Vec<u8>> = spec.key_names().iter().map(|k| subject.data_key(k)).collect();
        keys.extend(spec.tag_names().iter().map(|t| subject.tag_key(t)));
        let mut slots: Vec<u16> =
            keys.iter().map(|k| key_slot(k).get()).filter(|&s| slot_shard(&layout, s) == shard).collect();
        slots.sort_unstable();
        slots.dedup();
        slots
    };
    let end = t0 + o.duration;
    while Instant::now() < end && !clients.all_exited()? {
        for (p, line) in clients.lines() {
            served.take_line(p, &line);
        }
        if Instant::now() >= next_fault && Instant::now() + margin < end {
            let (kind, shard) = faults::draw(&mut rng, layout.len());
            let at = t0.elapsed();
            let started_at = clock.now();
            let f0 = Instant::now();
            eprintln!("soak: {:>6.1}s {} on shard {shard}", at.as_secs_f64(), kind.name());
            let mut fr = FaultRun { kind, shard, at, healthy_after: None, served_after: None, error: None };
            match faults::inject_and_heal(
                &mut cluster,
                &layout,
                &proxies,
                kind,
                shard,
                hot_of(shard),
                NODE_TIMEOUT,
            )
            .and_then(|_| cluster.wait_healthy(DRILL_TIMEOUT).map_err(anyhow::Error::from).map(|_| ()))
            {
                Ok(()) => {
                    fr.healthy_after = Some(f0.elapsed());
                    let healthy = clock.now().max(started_at);
                    let deadline = f0 + RECOVERY_BOUND;
                    while Instant::now() < deadline {
                        for (p, line) in clients.lines() {
                            served.take_line(p, &line);
                        }
                        if served.all_served_after(healthy) {
                            fr.served_after = Some(f0.elapsed());
                            break;
                        }
                        // Polls the clients' reports (printed every 500 ms).
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    if fr.served_after.is_none() {
                        fr.error =
                            Some(format!("not every process served every shard within {RECOVERY_BOUND:?}"));
                    }
                }
                Err(e) => fr.error = Some(format!("{e:#}")),
            }
            eprintln!(
                "soak:        healthy after {:?}, served after {:?}{}",
                fr.healthy_after,
                fr.served_after,
                fr.error.as_deref().map(|e| format!(", {e}")).unwrap_or_default()
            );
            fault_runs.push(fr);
            next_fault = Instant::now() + gap(&mut rng);
        }
        // Polls the clock, the clients and the fault schedule.
        std::thread::sleep(Duration::from_millis(200));
    }
    clients.wait_done(Duration::from_secs(120))?;
    let rss = sampler.finish();
    let run_secs = t0.elapsed().as_secs_f64();
    drop(clients);
    let parts: Vec<Vec<_>> = args.iter().map(|a| read_records(&a.out)).collect::<Result<_, _>>()?;
    let ops = parts.iter().map(Vec::len).collect();
    eprintln!("soak: workload done, checking the history");
    let what = format!("{} faults", fault_runs.len());
    let outcome = judge(
        &runner,
        &cluster,
        subject.as_ref(),
        &spec,
        clock,
        History::merge(parts),
        Disruption::from(what),
    );
    outcome.print("soak", subject.name(), &spec);
    drop(cluster);
    let m = Measured { started, load_start, commit, pids, ops, faults: fault_runs, rss, run_secs, outcome };
    report::write(o, &m)
}
