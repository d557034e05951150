//! What a drill run produced: per client and run, the metrics, the timeline bins and the
//! errors; and what the report needs besides (the clients' names, the bin width, the run's
//! metadata). The runner fills these in; the report and the plot read them.

use std::time::{Duration, SystemTime};

use super::fault::Events;
use super::kind::Drill;
use super::load::{Outcome as ReqOutcome, Rec};
use super::measure::Metrics;

/// The clients, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Who {
    Slotcache,
    RedisRs,
    Fred,
}

impl Who {
    pub(crate) const ALL: [Self; 3] = [Self::Slotcache, Self::RedisRs, Self::Fred];

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Slotcache => "slotcache",
            Self::RedisRs => "redis-rs 1.8.1",
            Self::Fred => "fred 10.1.0",
        }
    }

    pub(crate) const fn tag(self) -> &'static str {
        match self {
            Self::Slotcache => "sc",
            Self::RedisRs => "rr",
            Self::Fred => "fr",
        }
    }
}

/// Width of a timeline bin.
pub(crate) const BIN: Duration = Duration::from_millis(100);

/// Per bin: successes, errors, wrong values, stale reads (by the request's end).
pub(crate) type Bins = Vec<[u32; 4]>;

/// One client in one run.
#[derive(Clone, Debug)]
pub(crate) struct ClientRun {
    pub(crate) who: Who,
    pub(crate) metrics: Metrics,
    /// Per shard.
    pub(crate) bins: Vec<Bins>,
    pub(crate) errors: std::collections::BTreeMap<String, u64>,
    pub(crate) samples: Vec<(u64, u64, u8, String)>,
    /// Drill 7: the worker process's memory.
    pub(crate) memory: Option<Memory>,
}

/// One run of one drill.
#[derive(Clone, Debug)]
pub(crate) struct RunResult {
    pub(crate) drill: Drill,
    pub(crate) run: usize,
    pub(crate) faulty: usize,
    pub(crate) events: Events,
    pub(crate) end: Duration,
    pub(crate) clients: Vec<ClientRun>,
    /// The longest time after the fault with no success on any healthy shard for any client
    /// (the machine's or the servers' stall, not one client's), ms.
    pub(crate) common_stall_ms: f64,
}

/// Everything the report needs besides the runs.
#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub(crate) started: SystemTime,
    pub(crate) elapsed: Duration,
    pub(crate) load_start: [f64; 3],
    pub(crate) load_end: [f64; 3],
    pub(crate) server_version: String,
    pub(crate) commit: String,
    pub(crate) clusters_formed: usize,
}

/// The timeline bins of one client's records: per shard, per [`BIN`] by the request's end.
pub(crate) fn bins(recs: &[Rec], shards: usize, end: Duration) -> Vec<Bins> {
    let n = (end.as_micros() / BIN.as_micros()) as usize + 2;
    let mut out = vec![vec![[0u32; 4]; n]; shards];
    for r in recs {
        let b = ((r.end_us() as u128 / BIN.as_micros()) as usize).min(n - 1);
        let i = match r.outcome {
            ReqOutcome::Ok => 0,
            ReqOutcome::Error => 1,
            ReqOutcome::Wrong => 2,
            ReqOutcome::Stale => 3,
        };
        out[usize::from(r.shard)][b][i] += 1;
    }
    out
}

/// One client's memory in drill 7, KiB.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Memory {
    /// The last RSS sample before the fault (load running, client connected).
    pub(crate) before_kib: u64,
    /// The highest RSS sample from the fault to the end.
    pub(crate) peak_kib: u64,
    /// The last sample.
    pub(crate) end_kib: u64,
    /// The process's peak RSS (`VmHWM`), the whole run.
    pub(crate) hwm_kib: u64,
    /// The most requests in flight at once.
    pub(crate) inflight_peak: u64,
}
