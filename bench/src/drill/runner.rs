//! Runs the drills: one cluster (formed again if a run leaves it broken), three fresh clients
//! per run under the same load, the fault, the repair, and the figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use futures_util::future::join_all;
use indicatif::{ProgressBar, ProgressStyle};
use slotcache_tests::{Cluster, ClusterBuilder};

use super::fault::{self, Events, Target};
use super::kind::Drill;
use super::load::{self, Pace, Recorded};
use super::measure;
use super::net;
use super::preload::preload;
use super::report;
use super::runs::{ClientRun, Meta, RunResult, Who, bins};
use super::shards::{Key, Layout};
use super::ticker::Ticker;
use super::{Options, Outcome};
use crate::clients::{self, Budgets};
use crate::workloads::Rng;

fn form(o: &Options) -> anyhow::Result<(Cluster, Layout)> {
    let cluster = ClusterBuilder::new()
        .masters(o.shards)
        .replicas(1)
        .node_timeout(o.node_timeout)
        .args(["--cluster-require-full-coverage", "no"])
        .label("drill")
        .start()
        .context("forming the drill cluster")?;
    let layout = Layout::read(&cluster)?;
    Ok((cluster, layout))
}

/// Sets the flag when dropped: the load stops on every way out.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn run_once(
    cluster: &mut Cluster,
    layout: &Layout,
    drill: Drill,
    run: usize,
    o: &Options,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<RunResult> {
    let shards = layout.len();
    let faulty = run % shards;
    let (victim, replica) = layout.primary_and_replica(cluster, faulty)?;
    let mut rng = Rng::new((run as u64) << 8 | u64::from(drill.number()));
    let tasks = o.tasks_per_shard * shards;
    let plans: Vec<(Who, Vec<Vec<Key>>)> = Who::ALL
        .into_iter()
        .map(|who| {
            let per_task = (0..tasks)
                .map(|t| {
                    let pin = (!drill.random_keys()).then_some(t % shards);
                    let prefix = format!("drill:{}:{run}:{}:{t}", drill.name(), who.tag());
                    layout.keys(&prefix, pin, o.keys_per_task, &mut rng)
                })
                .collect();
            (who, per_task)
        })
        .collect();
    let all: Vec<&Key> = plans.iter().flat_map(|(_, ts)| ts.iter().flatten()).collect();
    preload(cluster, layout, &all)?;
    let mut hot_slots: Vec<u16> = Vec::new();
    for k in all.iter().filter(|k| usize::from(k.shard) == faulty) {
        let slot = slotcache_core::key_slot(&k.name).get();
        if !hot_slots.contains(&slot) {
            hot_slots.push(slot);
        }
    }
    let mut ev = Events::default();
    let proxy = if drill.proxied() {
        ev.announced = Some(victim);
        Some(net::put_in_front(cluster, victim)?)
    } else {
        None
    };
    let target = Target {
        proxy,
        hold: o.hold(drill),
        victim,
        replica,
        other: layout.primary_and_replica(cluster, (faulty + 1) % shards)?.0,
        range: layout.range(faulty).with_context(|| format!("shard {faulty}'s slots are not one range"))?,
        hot_slots,
        all: (0..shards).map(|s| layout.primary_and_replica(cluster, s)).collect::<anyhow::Result<_>>()?,
    };

    // The proxied node is reached through the topology only, never as a seed.
    let victim_addr = cluster.node(victim).addr();
    let seeds: Vec<_> =
        cluster.seeds().into_iter().filter(|a| !(drill.proxied() && *a == victim_addr)).collect();
    let b = Budgets { request: o.request_timeout, connect: o.connect_timeout };
    let (sc, rr, fr) = rt.block_on(async {
        let bound = Duration::from_secs(15);
        let sc = tokio::time::timeout(
            bound,
            clients::slotcache_budgets(Arc::new(slotcache_tokio::TokioRuntime), &seeds, "slotcache-drill", b),
        );
        let rr = tokio::time::timeout(bound, clients::redis_rs_budgets(&seeds, b));
        let fr = tokio::time::timeout(bound, clients::fred_budgets(&seeds, b));
        let (sc, rr, fr) = tokio::join!(sc, rr, fr);
        anyhow::Ok((
            sc.context("slotcache connect timed out")??,
            rr.context("redis-rs connect timed out")??,
            fr.context("fred connect timed out")??,
        ))
    })?;

    let pace = Pace { every: o.pace, guard: o.request_timeout * 2 };
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = StopOnDrop(stop.clone());
    let t0 = Instant::now();
    // When this process did not run: a stall then is the machine's, and the report says so.
    let ticker = Ticker::start(t0);
    let mut handles = Vec::new();
    for (who, per_task) in plans {
        for (t, keys) in per_task.into_iter().enumerate() {
            let seed = (run as u64) << 20 | (who as u64) << 16 | t as u64;
            let (stop, h) = (stop.clone(), rt.handle());
            let jh = match who {
                Who::Slotcache => h.spawn(load::task(sc.clone(), keys, t0, stop, pace, seed)),
                Who::RedisRs => h.spawn(load::task(rr.clone(), keys, t0, stop, pace, seed)),
                Who::Fred => h.spawn(load::task(fr.clone(), keys, t0, stop, pace, seed)),
            };
            handles.push((who, jh));
        }
    }
    // The load runs on its own before the fault (a timed phase of the experiment).
    std::thread::sleep(o.warmup);
    let injected = fault::inject(cluster, drill, &target, t0, &mut ev);
    if injected.is_ok() {
        std::thread::sleep(o.after);
    }
    drop(stopper);
    let end = t0.elapsed();
    let joined = rt.block_on(async {
        let (whos, hs): (Vec<Who>, Vec<_>) = handles.into_iter().unzip();
        let bound = pace.guard + Duration::from_secs(5);
        let rs = tokio::time::timeout(bound, join_all(hs)).await.context("the load did not stop")?;
        // Closing is bounded too: a client stuck on a dead node must not hold the drill.
        let _ = tokio::time::timeout(Duration::from_secs(5), sc.close()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), fr.quit()).await;
        drop(rr);
        anyhow::Ok(whos.into_iter().zip(rs).collect::<Vec<_>>())
    });
    let unscheduled = ticker.stop();
    let healed = fault::heal(cluster, &ev, o.node_timeout);
    drop(target);
    injected.with_context(|| format!("{} run {}: the fault", drill.name(), run + 1))?;
    healed.with_context(|| format!("{} run {}: the repair", drill.name(), run + 1))?;
    let mut per: Vec<(Who, Recorded)> = Who::ALL.into_iter().map(|w| (w, Recorded::default())).collect();
    for (who, r) in joined? {
        let r = r.context("a load task panicked")?;
        per[who as usize].1.merge(r);
    }
    let all: Vec<&[load::Rec]> = per.iter().map(|(_, r)| r.recs.as_slice()).collect();
    let common_stall_ms = measure::common_gap(&all, faulty, &ev, end);
    let clients = per
        .into_iter()
        .map(|(who, rec)| ClientRun {
            who,
            metrics: measure::measure(&rec.recs, shards, faulty, &ev, end, &unscheduled),
            bins: bins(&rec.recs, shards, end),
            errors: rec.errors,
            samples: rec.samples,
            memory: None,
        })
        .collect();
    Ok(RunResult { drill, run, faulty, events: ev, end, clients, common_stall_ms })
}

/// Runs the drills `o` asks for and writes the report to `o.out`.
///
/// # Errors
/// The cluster could not be formed, a run failed twice in a row, or the report could not be
/// written.
pub fn run(o: &Options) -> anyhow::Result<Outcome> {
    let started = SystemTime::now();
    let t_start = Instant::now();
    let load_start = crate::run::loadavg();
    // The commit the run starts from (the worktree may change while it runs).
    let commit = crate::run::command_line(std::path::Path::new("git"), &["describe", "--always", "--dirty"]);
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let i = interrupted.clone();
        // Ctrl-C: finish the current run, write what was measured, stop the cluster.
        let _ = ctrlc::set_handler(move || i.store(true, Ordering::Relaxed));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let total: usize = o.drills.iter().map(|&d| o.runs_of(d)).sum();
    let pb = ProgressBar::new(total as u64);
    pb.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} eta {eta} {msg}")
            .context("progress template")?
            .progress_chars("=> "),
    );
    pb.set_message("forming the cluster");
    let mut current = Some(form(o)?);
    let mut clusters_formed = 1;
    let server_version = current
        .as_ref()
        .map(|(c, _)| crate::run::command_line(c.binary(), &["--version"]))
        .unwrap_or_default();
    let mut results = Vec::new();
    let mut failures = Vec::new();
    'drills: for &d in &o.drills {
        for r in 0..o.runs_of(d) {
            if interrupted.load(Ordering::Relaxed) {
                failures.push("interrupted (Ctrl-C): the remaining runs were not done".to_owned());
                break 'drills;
            }
            pb.set_message(format!("{} run {}/{}", d.name(), r + 1, o.runs_of(d)));
            let mut attempt = 0;
            loop {
                attempt += 1;
                if current.is_none() {
                    pb.set_message(format!("{} run {}: forming a new cluster", d.name(), r + 1));
                    current = Some(form(o)?);
                    clusters_formed += 1;
                }
                let (cluster, layout) = current.as_mut().context("no cluster")?;
                let res = if d == Drill::NodeDown {
                    super::down::run_once(cluster, layout, r, o)
                } else {
                    run_once(cluster, layout, d, r, o, &rt)
                };
                match res {
                    Ok(res) => {
                        results.push(res);
                        break;
                    }
                    Err(e) => {
                        let msg = format!("{} run {} (attempt {attempt}): {e:#}", d.name(), r + 1);
                        pb.println(format!("drill: {}", first_lines(&msg, 6)));
                        failures.push(msg);
                        // Whatever state it is in, a fresh cluster for the next attempt.
                        current = None;
                        if attempt >= 2 {
                            // Reported as not done; the other runs go on.
                            break;
                        }
                    }
                }
            }
            pb.inc(1);
        }
    }
    let mut durability = Vec::new();
    if o.durability && !interrupted.load(Ordering::Relaxed) {
        pb.set_message("durability cost");
        if current.is_none() {
            current = Some(form(o)?);
            clusters_formed += 1;
        }
        let (cluster, _) = current.as_ref().context("no cluster")?;
        match super::durability::measure(cluster, o.durability_window, &rt) {
            Ok(c) => durability = c,
            Err(e) => failures.push(format!("durability cost: {e:#}")),
        }
    }
    pb.finish_and_clear();
    drop(current);
    let meta = Meta {
        started,
        elapsed: t_start.elapsed(),
        load_start,
        load_end: crate::run::loadavg(),
        server_version,
        commit,
        clusters_formed,
    };
    let (table, files) = report::write(o, &meta, &results, &durability, &failures)?;
    Ok(Outcome { table, files, failures })
}

fn first_lines(s: &str, n: usize) -> String {
    s.lines().take(n).collect::<Vec<_>>().join("\n")
}
