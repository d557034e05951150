//! The tag guarantees checked on one history recorded by three independent client processes
//! (each with its own provider, on tokio, smol and async-std), against a real cluster (3
//! masters + 3 replicas), and the negative control: the naive protocol in the same three
//! processes must be caught.
//!
//! Each client is the crate's `history_client` binary (`slotcache_tests::history::process`): it
//! connects, waits for the test's `go`, runs its workers for a few seconds and writes its
//! records to a file. Instants are read from the machine's `CLOCK_MONOTONIC` counted from one
//! reference the test hands to every client, so they compare exactly across processes. The
//! test merges the files into one history, runs the quiescent checks through a provider of its
//! own, then the history check and the in-run count check over everything; it prints a
//! `[figure]` line, with how many hits read a value written by another process.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use slotcache_tests::Cluster;
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::{ALL, Rt};
use slotcache_tests::history::check::writes_by_value;
use slotcache_tests::history::naive::NaiveSubject;
use slotcache_tests::history::process::{ClientArgs, Clients, Kind, read_records};
use slotcache_tests::history::quiescent::CHECKER;
use slotcache_tests::history::run::{Disruption, Outcome, Runner, assert_clean, judge, slotcache, start};
use slotcache_tests::history::workload::Spec;
use slotcache_tests::history::{Clock, History, Subject, Violation, per_property};

/// Client processes per run.
const CLIENTS: usize = 3;
/// Workers per client (the single-process runs have 16 in one).
const WORKERS: usize = 6;
/// Worker ids of client `p` start at `p * ID_STRIDE`.
const ID_STRIDE: usize = 100;

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the client processes did.
struct Processes {
    pids: Vec<u32>,
    ops: Vec<usize>,
}

/// Runs the workload in [`CLIENTS`] processes of `kind` on namespace `ns`, then judges the
/// merged history through `subject` (the test's own client of the same namespace).
fn run_in_processes(
    rt: &Runner,
    cluster: &Cluster,
    subject: &dyn Subject,
    kind: Kind,
    ns: &str,
    spec: &Spec,
) -> (Outcome, Processes) {
    let clock = Clock::new();
    let seeds: Vec<String> = cluster.seeds().iter().map(ToString::to_string).collect();
    let args: Vec<ClientArgs> = (0..CLIENTS)
        .map(|p| ClientArgs {
            seeds: seeds.clone(),
            ns: ns.to_owned(),
            kind,
            rt: ALL[p % ALL.len()],
            clock: clock.reference(),
            first_worker: p * ID_STRIDE,
            workers: WORKERS,
            seed: spec.seed.wrapping_add(p as u64),
            run_for: spec.min,
            out: cluster.dir().join(format!("history-{ns}-client-{p}.jsonl")),
            pace_us: 0,
            report_ms: 0,
        })
        .collect();
    let exe = Path::new(env!("CARGO_BIN_EXE_history_client"));
    let mut clients = Clients::spawn(exe, &args).expect("start the client processes");
    let pids = clients.wait_ready(Duration::from_secs(30)).expect("clients ready");
    clients.go().expect("go");
    clients.wait_done(spec.min + Duration::from_secs(60)).expect("clients done");
    drop(clients);
    let parts: Vec<Vec<_>> = args.iter().map(|a| read_records(&a.out).expect("a client's history")).collect();
    let ops = parts.iter().map(Vec::len).collect();
    let runtimes: Vec<&str> = args.iter().map(|a| a.rt.name()).collect();
    let what =
        format!("{CLIENTS} client processes (pids {pids:?}, runtimes {runtimes:?}), {WORKERS} workers each");
    let o = judge(rt, cluster, subject, spec, clock, History::merge(parts), Disruption::from(what));
    (o, Processes { pids, ops })
}

/// Hits whose value was written by another client process than the reader's.
fn cross_process_hits(h: &History) -> usize {
    let writes = writes_by_value(h);
    let client = |w: usize| (w != CHECKER).then_some(w / ID_STRIDE);
    h.records
        .iter()
        .flat_map(|r| r.reads().into_iter().map(move |(_, v, _)| (r, v)))
        .filter(|(r, v)| {
            let writer = writes.get(v).map(|&i| h.records[i].worker);
            matches!((client(r.worker), writer.and_then(client)), (Some(a), Some(b)) if a != b)
        })
        .count()
}

fn print_processes(run: &str, o: &Outcome, p: &Processes) {
    eprintln!(
        "[figure] tags_history run={run} processes={} ops_per_process={:?} cross_process_hits={}",
        p.pids.len(),
        p.ops,
        cross_process_hits(&o.history)
    );
}

#[test]
fn history_across_client_processes() {
    let _t = turn();
    let rt = Runner::new(Rt::Tokio);
    let cluster = start(ClusterBuilder::new().label("hist-procs"));
    let ns = "hist-procs";
    let subject = slotcache(&rt, &cluster, ns);
    let spec = Spec { workers: CLIENTS * WORKERS, ..Spec::new(Duration::from_secs(3)) };
    let (o, p) = run_in_processes(&rt, &cluster, subject.as_ref(), Kind::Slotcache, ns, &spec);
    o.print("processes", "slotcache", &spec);
    print_processes("processes", &o, &p);
    rt.block_on(subject.close());
    let distinct: BTreeSet<u32> = p.pids.iter().copied().collect();
    assert!(
        distinct.len() == CLIENTS && !distinct.contains(&std::process::id()),
        "the clients must be {CLIENTS} processes of their own: {:?}",
        p.pids
    );
    assert!(p.ops.iter().all(|&n| n > 100), "every client process must have worked: {:?}", p.ops);
    assert!(cross_process_hits(&o.history) > 0, "no read ever saw another process's write");
    assert_clean("processes", &o);
}

/// The negative control across processes: the naive protocol run by the same three client
/// processes must be caught. Its stale reads after an invalidation (P1: a membership lost to a
/// racing invalidation, or a write whose tag step landed after it) show in every run by the
/// hundred, and its quiescent faults deterministically (tags accumulate: P4; tag sets never
/// pruned: P5). Orphans (P2) need every membership of a key lost and are left to the
/// single-process control in `tags_history.rs`, which retries until it sees one.
#[test]
fn naive_protocol_is_caught_across_processes() {
    let _t = turn();
    let rt = Runner::new(Rt::Tokio);
    let cluster = start(ClusterBuilder::new().label("hist-procs-naive"));
    let ns = "naive-procs";
    let naive = Arc::new(
        rt.block_on(NaiveSubject::connect(rt.rt.runtime(), cluster.seeds(), ns, Duration::from_millis(1)))
            .expect("naive client"),
    );
    let spec = Spec { workers: CLIENTS * WORKERS, ..Spec::new(Duration::from_secs(3)) };
    let (o, p) = run_in_processes(&rt, &cluster, naive.as_ref(), Kind::Naive, ns, &spec);
    o.print("processes-naive", "naive", &spec);
    print_processes("processes-naive", &o, &p);
    rt.block_on(naive.close());
    let per: Vec<Violation> = o.violations().into_iter().cloned().collect();
    let [p1, _, _, p4, p5] = per_property(&per);
    assert!(cross_process_hits(&o.history) > 0, "no read ever saw another process's write");
    assert!(p1 > 0, "the naive protocol's stale reads after an invalidation must be caught across processes");
    assert!(p4 > 0, "the naive protocol accumulates tags; the replace check must say so");
    assert!(p5 > 0, "the naive protocol never prunes its tag sets; the metadata check must say so");
}
