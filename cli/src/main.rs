//! `slotcache`: a local Valkey Cluster for development (`dev up`/`dev down`), key slots and
//! their owners (`slot`), the demo of slotcache at work (`demo`), and the failure drills against
//! redis-rs and fred (`drill`).

#![forbid(unsafe_code)]

mod demo;
mod dev;
mod drill;
mod seeds;
mod slot;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use slotcache_core::NodeAddr;

/// slotcache: a cache client for Valkey Cluster, and its development tools.
#[derive(Parser, Debug)]
#[command(name = "slotcache", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A local cluster for development.
    #[command(subcommand)]
    Dev(DevCommand),
    /// Print each key's hash slot and, with --seeds, the node that owns it.
    Slot {
        /// Keys to look up.
        #[arg(required = true)]
        keys: Vec<String>,
        /// Cluster seeds, `host:port,host:port` (plain text).
        #[arg(long, value_delimiter = ',', value_parser = parse_addr)]
        seeds: Vec<NodeAddr>,
    },
    /// Show slotcache at work: with no seeds, on a local 3+3 cluster it starts (and stops).
    Demo {
        /// Use this running cluster instead of starting one (nothing is killed on it).
        #[arg(long, value_delimiter = ',', value_parser = parse_addr)]
        seeds: Vec<NodeAddr>,
        /// How many keys to spread over the slots.
        #[arg(long, default_value_t = 12)]
        keys: usize,
    },
    /// Failure drills on a cluster it starts: slotcache, redis-rs and fred under the same load
    /// while a primary is killed, paused or failed over twice; writes tables, CSVs and plots.
    Drill(drill::DrillArgs),
    /// One client of drill 7 in a process of its own (started by `slotcache drill`).
    #[command(hide = true)]
    DrillWorker(drill::WorkerArgs),
    /// One client process of the soak (started by `slotcache drill --soak`).
    #[command(hide = true)]
    HistoryClient(drill::HistoryClientArgs),
}

#[derive(Subcommand, Debug)]
enum DevCommand {
    /// Start a local cluster and stay in the foreground until Ctrl-C or SIGTERM.
    Up {
        /// Masters.
        #[arg(long, default_value_t = 3)]
        masters: usize,
        /// Replicas per master.
        #[arg(long, default_value_t = 1)]
        replicas: usize,
        /// cluster-node-timeout in milliseconds.
        #[arg(long = "node-timeout", default_value_t = 2000)]
        node_timeout_ms: u64,
    },
    /// Stop a cluster left behind (by a `dev up` still running, or by a killed run).
    Down,
    /// List servers started from this workspace; exit 1 if any is a leftover.
    Check,
}

fn parse_addr(s: &str) -> Result<NodeAddr, String> {
    NodeAddr::parse(s.trim()).ok_or_else(|| format!("{s:?} is not host:port"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(DevCommand::Up { masters, replicas, node_timeout_ms }) => {
            dev::up(masters, replicas, node_timeout_ms)
        }
        Command::Dev(DevCommand::Down) => dev::down(),
        Command::Dev(DevCommand::Check) => dev::check(),
        Command::Slot { keys, seeds } => slot::run(&keys, &seeds),
        Command::Demo { seeds, keys } => demo::run(&seeds, keys),
        Command::Drill(a) => drill::run(&a, &std::env::args().skip(1).collect::<Vec<_>>()),
        Command::DrillWorker(w) => drill::worker(&w),
        Command::HistoryClient(a) => drill::history_client(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
