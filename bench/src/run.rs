//! The parent process: start the cluster, preload, run every cell in a fresh worker process
//! (or `redis-benchmark`), rotate the order, and write the report.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use slotcache_rt::{Cmd, NodeAddr};
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::Rt;

use crate::RunArgs;
use crate::clients::ClientKind;
use crate::rbench;
use crate::report::{self, Meta, Samples};
use crate::settings::{Cell, Settings};
use crate::worker::CellResult;
use crate::workloads::{Keyspace, Workload};

/// The 1-, 5- and 15-minute load averages.
pub(crate) fn loadavg() -> [f64; 3] {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = s.split_whitespace().map(|v| v.parse().unwrap_or(f64::NAN));
    [it.next().unwrap_or(f64::NAN), it.next().unwrap_or(f64::NAN), it.next().unwrap_or(f64::NAN)]
}

/// The benchmark.
pub(crate) fn main(args: &RunArgs) -> anyhow::Result<()> {
    let s = Settings::from_args(args)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Ctrl-C / SIGTERM: finish the current step, then return so the cluster is dropped.
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed)).context("installing Ctrl-C")?;
    }
    if let Some(limit) = args.wait_load {
        let t0 = Instant::now();
        let max = Duration::from_secs(args.wait_load_max);
        while loadavg()[0] >= limit && t0.elapsed() < max && !stop.load(Ordering::Relaxed) {
            eprintln!("slotcache-bench: load {:.2} >= {limit}; waiting (at most {max:?})", loadavg()[0]);
            std::thread::sleep(Duration::from_secs(15));
        }
    }
    let clients = s.clients.clone();
    let have_rb = rbench::available();
    if !have_rb && clients.iter().any(|c| c.is_redis_benchmark()) {
        // Silently dropping the column would leave a table without the server's ceiling that
        // reads like a complete one.
        let others: Vec<&str> =
            clients.iter().filter(|c| !c.is_redis_benchmark()).map(|c| c.name()).collect();
        bail!(
            "redis-benchmark is not on the PATH (apt-get install redis-tools); to run without its \
             columns, leave them out: --clients {}",
            others.join(",")
        );
    }
    let load_start = loadavg();
    let started = std::time::SystemTime::now();
    eprintln!("slotcache-bench: starting a 3-master cluster (load average {:.2})", load_start[0]);
    // Dropped on every way out of this function (error, Ctrl-C, panic): the servers stop.
    let cluster = ClusterBuilder::new().masters(3).replicas(0).label("bench").start()?;
    let seeds = cluster.seeds();
    let pids = cluster.pids();
    let server_version = command_line(cluster.binary(), &["--version"]);
    preload(&seeds, s.keys)?;
    if have_rb && clients.iter().any(|c| c.is_redis_benchmark()) {
        // redis-benchmark's keys carry a hash tag per node: write them once so its GETs hit too.
        let n = (s.keys as u64 * 3).max(10_000);
        rbench::run(&seeds[0], Workload::Set, 64, 16, n, s.keys, &pids, &stop)?;
    }
    let mut cells = Vec::new();
    for &w in &s.workloads {
        for &t in &s.tasks {
            for &c in &clients {
                let level_ok = !c.is_redis_benchmark() || s.rb_tasks.contains(&t);
                if w.supported_by(c) && level_ok {
                    cells.push(Cell { workload: w, tasks: t, client: c });
                }
            }
        }
    }
    let total = (cells.len() * s.reps) as u64;
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} eta {eta} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    let mut samples: Samples = BTreeMap::new();
    let mut failures = Vec::new();
    // Cells whose requests failed or missed: every workload reads keys preloaded (or written
    // just before, for the tag invalidation), so either is a fault, and the cell's figures are
    // not a clean measurement.
    let mut faulty = Vec::new();
    let mut rb_rate: BTreeMap<(Workload, usize, usize), f64> = BTreeMap::new();
    'reps: for rep in 0..s.reps {
        // The same (workload, tasks) group keeps its clients together; their order rotates with
        // the repetition and the group, and runs backwards on odd repetitions.
        let groups: Vec<Vec<Cell>> = cells
            .chunk_by(|a, b| (a.workload, a.tasks) == (b.workload, b.tasks))
            .map(<[Cell]>::to_vec)
            .collect();
        for (gi, group) in groups.into_iter().enumerate() {
            let mut order = group;
            let len = order.len();
            order.rotate_left((rep + gi) % len);
            if rep % 2 == 1 {
                order.reverse();
            }
            for cell in order {
                if stop.load(Ordering::Relaxed) {
                    break 'reps;
                }
                pb.set_message(format!(
                    "rep {}/{} {} x{} {}",
                    rep + 1,
                    s.reps,
                    cell.workload.name(),
                    cell.tasks,
                    cell.client.name()
                ));
                let r = if cell.client.is_redis_benchmark() {
                    let p = if cell.client == ClientKind::RedisBenchmarkP16 { 16 } else { 1 };
                    let key = (cell.workload, cell.tasks, p);
                    let guess = if p == 16 { 800_000.0 } else { 80_000.0 };
                    let rate = rb_rate.get(&key).copied().unwrap_or(guess);
                    let n = ((rate * s.window.as_secs_f64()) as u64).max(1_000);
                    let r = rbench::run(&seeds[0], cell.workload, cell.tasks, p, n, s.keys, &pids, &stop);
                    if let Ok(r) = &r {
                        rb_rate.insert(key, r.throughput());
                    }
                    r
                } else {
                    run_worker(&s, cell, &seeds, &pids, &stop)
                };
                match r {
                    Ok(r) => {
                        if r.errors > 0 || r.misses > 0 {
                            let msg = format!(
                                "{} {} x{}: {} errors, {} misses",
                                cell.client.name(),
                                cell.workload.name(),
                                cell.tasks,
                                r.errors,
                                r.misses
                            );
                            pb.println(format!("FAULTY {msg}"));
                            faulty.push(msg);
                        }
                        samples.entry(cell).or_default().push(r);
                    }
                    Err(e) => {
                        let msg =
                            format!("{} {} x{}: {e:#}", cell.client.name(), cell.workload.name(), cell.tasks);
                        pb.println(format!("FAILED {msg}"));
                        failures.push(msg);
                    }
                }
                pb.inc(1);
            }
        }
    }
    pb.finish_and_clear();
    let interrupted = stop.load(Ordering::Relaxed);
    let load_end = loadavg();
    drop(cluster);
    let meta = Meta {
        started,
        elapsed: started.elapsed().unwrap_or_default(),
        load_start,
        load_end,
        settings: s.clone(),
        failures: failures.clone(),
        interrupted,
        server_version,
        commit: command_line(std::path::Path::new("git"), &["describe", "--always", "--dirty"]),
    };
    let paths = report::write(&s.out, &meta, &samples)?;
    for p in &paths {
        eprintln!("slotcache-bench: wrote {}", p.display());
    }
    if let Some(text) = paths.first().and_then(|md| std::fs::read_to_string(md).ok()) {
        println!("{text}");
    }
    if interrupted {
        bail!("interrupted");
    }
    if !failures.is_empty() {
        bail!("{} cells failed: {}", failures.len(), failures.join("; "));
    }
    if !faulty.is_empty() {
        bail!("{} cells had errors or misses: {}", faulty.len(), faulty.join("; "));
    }
    if s.quick {
        // The smoke must have measured something for every client it ran.
        for c in &clients {
            if !samples.iter().any(|(cell, v)| cell.client == *c && v.iter().any(|r| r.ops > 0)) {
                bail!("{} measured nothing", c.name());
            }
        }
    }
    Ok(())
}

/// `slotcache-bench hold`: a preloaded cluster for profiling single workers.
pub(crate) fn hold(secs: Duration, keys: usize) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed)).context("installing Ctrl-C")?;
    }
    let cluster = ClusterBuilder::new().masters(3).replicas(0).label("bench-hold").start()?;
    preload(&cluster.seeds(), keys)?;
    let seeds: Vec<String> = cluster.seeds().iter().map(|a| format!("{}:{}", a.host(), a.port())).collect();
    let pids: Vec<String> = cluster.pids().iter().map(u32::to_string).collect();
    println!(
        "slotcache-bench worker --client slotcache-tokio --workload get --tasks 64 --warmup-ms 500 \
         --window-ms 5000 --keys {keys} --seeds {} --server-pids {}",
        seeds.join(","),
        pids.join(",")
    );
    let t0 = Instant::now();
    while t0.elapsed() < secs && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Writes every key of the key space once (pipelines of 1000 SETs).
fn preload(seeds: &[NodeAddr], keys: usize) -> anyhow::Result<()> {
    let ks = Keyspace::new(keys);
    Rt::Tokio.block_on(async {
        let client = crate::clients::slotcache(Rt::Tokio.runtime(), seeds, false).await?.client;
        let all: Vec<usize> = (0..ks.len()).collect();
        for chunk in all.chunks(1000) {
            let cmds = chunk
                .iter()
                .map(|&i| Cmd::new(Bytes::from_static(b"SET")).arg(ks.key(i)).arg(ks.value().clone()))
                .collect();
            for r in client.pipeline(cmds).await? {
                r.context("preloading")?;
            }
        }
        client.close().await;
        Ok::<_, anyhow::Error>(())
    })
}

/// Runs one cell in a fresh `slotcache-bench worker` process, bounded in time.
fn run_worker(
    s: &Settings,
    cell: Cell,
    seeds: &[NodeAddr],
    pids: &[u32],
    stop: &AtomicBool,
) -> anyhow::Result<CellResult> {
    let exe = std::env::current_exe().context("locating this program")?;
    let seeds: Vec<String> = seeds.iter().map(|a| format!("{}:{}", a.host(), a.port())).collect();
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let mut child = Command::new(exe)
        .arg("worker")
        .args(["--client", cell.client.name(), "--workload", cell.workload.name()])
        .args(["--tasks", &cell.tasks.to_string(), "--keys", &s.keys.to_string()])
        .args(["--warmup-ms", &s.warmup.as_millis().to_string()])
        .args(["--window-ms", &s.window.as_millis().to_string()])
        .args(["--seeds", &seeds.join(","), "--server-pids", &pids.join(",")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting a worker")?;
    // Read both pipes on threads so a chatty worker cannot block on a full pipe.
    let mut out_pipe = child.stdout.take().context("stdout")?;
    let mut err_pipe = child.stderr.take().context("stderr")?;
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let limit = s.warmup + s.window + Duration::from_secs(40);
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if t0.elapsed() > limit || stop.load(Ordering::Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = out_t.join().unwrap_or_default();
    let err = err_t.join().unwrap_or_default();
    let Some(status) = status else {
        bail!("worker killed after {limit:?} (or interrupted); stderr: {}", tail(&err));
    };
    if !status.success() {
        bail!("worker failed ({status}): {}", tail(&err));
    }
    let line = out.lines().find(|l| l.starts_with("RESULT ")).context("the worker printed no RESULT")?;
    CellResult::parse_line(line)
}

/// The first line a program prints, or `?`.
pub(crate) fn command_line(program: &std::path::Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
