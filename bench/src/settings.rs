//! What a run measures: its resolved settings, and its cells (one workload at one task count on
//! one client). Shared by the runner ([`crate::run`]) and the report ([`crate::report`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::RunArgs;
use crate::clients::ClientKind;
use crate::workloads::Workload;

/// Resolved settings of a run.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) quick: bool,
    pub(crate) out: PathBuf,
    pub(crate) reps: usize,
    pub(crate) window: Duration,
    pub(crate) warmup: Duration,
    pub(crate) tasks: Vec<usize>,
    /// Concurrency levels for `redis-benchmark` (the slow anchor: fewer levels).
    pub(crate) rb_tasks: Vec<usize>,
    pub(crate) clients: Vec<ClientKind>,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) keys: usize,
}

impl Settings {
    /// The settings the command line asks for, defaults filled in (`--quick` or a full run).
    pub(crate) fn from_args(a: &RunArgs) -> anyhow::Result<Self> {
        let quick = a.quick;
        let clients = match &a.clients {
            Some(names) => names
                .iter()
                .map(|n| ClientKind::parse(n).ok_or_else(|| anyhow::anyhow!("unknown client {n}")))
                .collect::<anyhow::Result<_>>()?,
            None => ClientKind::ALL.to_vec(),
        };
        let workloads = match &a.workloads {
            Some(names) => names
                .iter()
                .map(|n| Workload::parse(n).ok_or_else(|| anyhow::anyhow!("unknown workload {n}")))
                .collect::<anyhow::Result<_>>()?,
            None => Workload::ALL.to_vec(),
        };
        let tasks = a.tasks.clone().unwrap_or_else(|| if quick { vec![1, 16] } else { vec![1, 16, 64, 256] });
        let rb_tasks =
            if tasks.contains(&64) { vec![64] } else { tasks.iter().copied().max().into_iter().collect() };
        let out = a.out.clone().unwrap_or_else(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            if quick { root.join("../target/bench-quick") } else { root.join("results") }
        });
        Ok(Self {
            quick,
            out,
            reps: a.reps.unwrap_or(if quick { 1 } else { 3 }).max(1),
            window: Duration::from_secs_f64(a.secs.unwrap_or(if quick { 0.25 } else { 2.5 })),
            warmup: Duration::from_millis(a.warmup_ms.unwrap_or(if quick { 100 } else { 500 })),
            tasks,
            rb_tasks,
            clients,
            workloads,
            keys: a.keys.unwrap_or(if quick { 2_000 } else { 100_000 }),
        })
    }
}

/// One thing to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cell {
    pub(crate) workload: Workload,
    pub(crate) tasks: usize,
    pub(crate) client: ClientKind,
}
