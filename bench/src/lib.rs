//! # slotcache-bench
//!
//! slotcache (on tokio, smol and async-std) against redis-rs, fred and `redis-benchmark` on one
//! local 3-master Valkey cluster, in one run: every client in every repetition, the order
//! rotated between repetitions and cells, each cell measured in a fresh process (so CPU time and
//! peak RSS are that client's alone). Writes a markdown report, a raw CSV and an SVG plot.
//!
//! ```text
//! slotcache-bench --quick            # CI smoke: tiny windows, < 1 min
//! scripts/bench                      # the full run (about 17 min on 2 cores)
//! ```
//!
//! The library also holds the failure drills ([`drill`]) that `slotcache drill` runs: the same
//! three clients (slotcache, redis-rs, fred) under the same load on one cluster, while a node is
//! killed, paused or failed over.

mod clients;
pub mod drill;
mod rbench;
mod report;
mod run;
mod settings;
mod worker;
mod workloads;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use slotcache_rt::NodeAddr;

use crate::clients::ClientKind;
use crate::workloads::Workload;

/// Benchmarks slotcache against redis-rs, fred and redis-benchmark on one local cluster.
#[derive(Debug, Parser)]
#[command(name = "slotcache-bench", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Runs one cell in this process (used by the benchmark itself, and for profiling one
    /// client under perf or valgrind against a `hold` cluster).
    Worker(WorkerArgs),
    /// Starts the cluster, preloads the keys, prints a `worker` command line to profile with, and
    /// holds the cluster for `--secs` seconds (or until Ctrl-C).
    Hold {
        /// How long to keep the cluster up.
        #[arg(long, default_value_t = 600)]
        secs: u64,
        /// Keys preloaded.
        #[arg(long, default_value_t = 100_000)]
        keys: usize,
    },
}

/// Settings of a benchmark run.
#[derive(Clone, Debug, Args)]
struct RunArgs {
    /// CI smoke: every client and workload, tiny windows, 1 repetition; results go to
    /// `target/bench-quick/` unless `--out` says otherwise.
    #[arg(long)]
    quick: bool,
    /// Where the report, raw CSV and plot go (default: `bench/results` for a full run).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Repetitions of every cell.
    #[arg(long)]
    reps: Option<usize>,
    /// Measurement window per cell, seconds.
    #[arg(long)]
    secs: Option<f64>,
    /// Warm-up before each window, milliseconds.
    #[arg(long)]
    warmup_ms: Option<u64>,
    /// Concurrency levels (tasks; connections for redis-benchmark), comma-separated.
    #[arg(long, value_delimiter = ',')]
    tasks: Option<Vec<usize>>,
    /// Clients to run (names as in the report), comma-separated; default all.
    #[arg(long, value_delimiter = ',')]
    clients: Option<Vec<String>>,
    /// Workloads to run (get, set, mix, mget), comma-separated; default all.
    #[arg(long, value_delimiter = ',')]
    workloads: Option<Vec<String>>,
    /// Keys preloaded (and drawn from).
    #[arg(long)]
    keys: Option<usize>,
    /// Before starting, wait (at most `--wait-load-max` seconds) until the 1-minute load average
    /// is below this.
    #[arg(long)]
    wait_load: Option<f64>,
    /// Bound on the wait for a low load, seconds.
    #[arg(long, default_value_t = 600)]
    wait_load_max: u64,
}

#[derive(Clone, Debug, Args)]
struct WorkerArgs {
    #[arg(long)]
    client: String,
    #[arg(long)]
    workload: String,
    #[arg(long)]
    tasks: usize,
    #[arg(long)]
    warmup_ms: u64,
    #[arg(long)]
    window_ms: u64,
    #[arg(long)]
    keys: usize,
    /// host:port,host:port...
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    server_pids: Vec<u32>,
}

fn parse_addr(s: &str) -> anyhow::Result<NodeAddr> {
    let (h, p) = s.rsplit_once(':').ok_or_else(|| anyhow::anyhow!("{s}: want host:port"))?;
    Ok(NodeAddr::new(h, p.parse()?))
}

fn worker_main(w: &WorkerArgs) -> anyhow::Result<()> {
    let spec = worker::CellSpec {
        client: ClientKind::parse(&w.client).ok_or_else(|| anyhow::anyhow!("unknown client {}", w.client))?,
        workload: Workload::parse(&w.workload)
            .ok_or_else(|| anyhow::anyhow!("unknown workload {}", w.workload))?,
        tasks: w.tasks,
        warmup: Duration::from_millis(w.warmup_ms),
        window: Duration::from_millis(w.window_ms),
        keys: w.keys,
        seeds: w.seeds.iter().map(|s| parse_addr(s)).collect::<anyhow::Result<_>>()?,
        server_pids: w.server_pids.clone(),
    };
    let r = worker::run(&spec)?;
    println!("{}", r.to_line());
    Ok(())
}

/// The `slotcache-bench` command line (the binary is this and nothing else).
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.cmd {
        Some(Sub::Worker(w)) => worker_main(w),
        Some(Sub::Hold { secs, keys }) => run::hold(Duration::from_secs(*secs), *keys),
        None => run::main(&cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("slotcache-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
