//! Failure drills (issue 18): slotcache, redis-rs and fred under the same paced load on one
//! local cluster, in the same run, while a primary is killed, paused or failed over twice, while
//! slots migrate, and while every node restarts in turn.
//!
//! - [`kind`]: which drill;
//! - `shards`: the shards' slots and keys pinned to them;
//! - `load`: one load generator per client, every request recorded;
//! - `fault`: the faults, through the test harness, and the repair after each run;
//! - `measure`: per client and run, errors per shard, stalls, recovery times, wrong values;
//! - `runs`: what a run produced (per client: metrics, timeline bins, errors);
//! - `report`: the markdown tables, raw CSVs and a timeline plot per drill.
//!
//! - `soak`: `--soak DURATION`, the history workload from client processes under random faults.
//!
//! `slotcache drill` (the `slotcache` command) runs [`run`] (and [`run_soak`]).

pub mod kind;

mod child;
mod down;
mod durability;
mod fault;
mod load;
mod measure;
mod net;
mod plot;
mod preload;
mod report;
mod runner;
mod runs;
mod shards;
mod soak;
mod ticker;

use std::path::PathBuf;
use std::time::Duration;

pub use child::{ChildArgs, child_main};
pub use kind::Drill;
pub use runner::run;
pub use soak::{SoakOptions, SoakOutcome, run_soak};

/// What a drill run does.
#[derive(Clone, Debug)]
pub struct Options {
    /// The drills, in order.
    pub drills: Vec<Drill>,
    /// Runs of each variant of drill 1.
    pub repeat: usize,
    /// Runs of each variant of the other drills.
    pub repeat_others: usize,
    /// Primaries (each with one replica).
    pub shards: usize,
    /// Where the README, CSVs and plots go.
    pub out: PathBuf,
    /// Load before the fault.
    pub warmup: Duration,
    /// Load after the last step of the fault.
    pub after: Duration,
    /// Tasks per client per shard (pinned drills; the same total for random keys).
    pub tasks_per_shard: usize,
    /// Keys per task.
    pub keys_per_task: usize,
    /// At most one request per task per this.
    pub pace: Duration,
    /// The request budget every client gets (its own request timeout).
    pub request_timeout: Duration,
    /// The connect budget every client gets.
    pub connect_timeout: Duration,
    /// The cluster's node timeout.
    pub node_timeout: Duration,
    /// The command line, for the README.
    pub command: String,
    /// Whether this is the short smoke run.
    pub quick: bool,
    /// How long a network fault lasts (drill 6).
    pub net_hold: Duration,
    /// How long the node stays down (drill 7).
    pub down_for: Duration,
    /// The executable whose `drill-worker` subcommand runs one client of drill 7 (the
    /// `slotcache` binary); drill 7 cannot run without it.
    pub worker_exe: Option<PathBuf>,
    /// Whether to measure the durability cost (slotcache's invalidations with and without the
    /// replica `WAIT`), after the drills.
    pub durability: bool,
    /// The window of each durability cell.
    pub durability_window: Duration,
}

impl Options {
    /// The defaults: every drill, drill 1 repeated 20 times, the others 3 times, 3 shards.
    #[must_use]
    pub fn new(out: PathBuf) -> Self {
        Self {
            drills: Drill::ALL.to_vec(),
            repeat: 20,
            repeat_others: 3,
            shards: 3,
            out,
            warmup: Duration::from_millis(1000),
            after: Duration::from_millis(3000),
            tasks_per_shard: 4,
            keys_per_task: 8,
            pace: Duration::from_millis(2),
            request_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            node_timeout: Duration::from_millis(1000),
            command: "slotcache drill".into(),
            quick: false,
            net_hold: Duration::from_secs(5),
            down_for: Duration::from_secs(60),
            worker_exe: None,
            durability: true,
            durability_window: Duration::from_secs(5),
        }
    }

    /// The smoke run: drill 1 (both variants) once each, short windows.
    #[must_use]
    pub fn quick(out: PathBuf) -> Self {
        Self {
            drills: vec![Drill::KillPinned, Drill::KillRandom],
            repeat: 1,
            repeat_others: 1,
            warmup: Duration::from_millis(500),
            after: Duration::from_millis(1000),
            quick: true,
            net_hold: Duration::from_secs(1),
            down_for: Duration::from_secs(3),
            durability: false,
            durability_window: Duration::from_millis(500),
            ..Self::new(out)
        }
    }

    /// Runs of `d`.
    #[must_use]
    pub fn runs_of(&self, d: Drill) -> usize {
        match d.number() {
            1 => self.repeat,
            // One minute down per run: once.
            7 => 1,
            _ => self.repeat_others,
        }
    }

    /// How long the fault of `d` is held (drills 6 and 7; zero for the others).
    #[must_use]
    pub fn hold(&self, d: Drill) -> Duration {
        match d.number() {
            6 => self.net_hold,
            7 => self.down_for,
            _ => Duration::ZERO,
        }
    }
}

/// What [`run`] produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The results table (markdown), as in the README it wrote.
    pub table: String,
    /// The files written.
    pub files: Vec<PathBuf>,
    /// Runs that could not be done (the cluster failed to fault or heal), with the reason.
    pub failures: Vec<String>,
}
