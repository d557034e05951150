//! Running one test body on every runtime: tokio, smol and async-std.
//!
//! The conformance suite is written once against [`slotcache_rt::Client`]; each runtime crate
//! contributes only its [`Runtime`], so a test that passes on all three shows the adapters
//! behave the same.
//!
//! Also what the suite's files share: [`Rt::wait_until`] (a bounded poll that sleeps on the
//! runtime), [`slot_owners`] / [`keys_on`] (keys on a given master's slots), [`seed_keys`],
//! [`traffic`] (a checking read/write task, recorded as [`Traffic`]) with [`traffic_plan`] and
//! [`TrafficRun`] (the usual set-up: seeded keys per master, tasks started and collected),
//! [`cmdstat_calls`], [`info_number`], [`errorstat_count`] and [`error_kind`].

use core::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use slotcache_rt::{Config, Runtime};

use crate::Cluster;

/// One of the supported runtimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rt {
    /// `slotcache-tokio` on a 2-worker multi-thread runtime.
    Tokio,
    /// `slotcache-smol` on smol's global executor.
    Smol,
    /// `slotcache-async-std`.
    AsyncStd,
}

/// Every runtime, in the order tests run them.
pub const ALL: [Rt; 3] = [Rt::Tokio, Rt::Smol, Rt::AsyncStd];

impl Rt {
    /// The runtime's name, for messages.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tokio => "tokio",
            Self::Smol => "smol",
            Self::AsyncStd => "async-std",
        }
    }

    /// The adapter's [`Runtime`].
    #[must_use]
    pub fn runtime(self) -> Arc<dyn Runtime> {
        match self {
            Self::Tokio => Arc::new(slotcache_tokio::TokioRuntime),
            Self::Smol => Arc::new(slotcache_smol::SmolRuntime),
            Self::AsyncStd => Arc::new(slotcache_async_std::AsyncStdRuntime),
        }
    }

    /// Runs `fut` to completion on this runtime.
    pub fn block_on<F: Future>(self, fut: F) -> F::Output {
        match self {
            Self::Tokio => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(fut),
            Self::Smol => smol::block_on(fut),
            Self::AsyncStd => async_std::task::block_on(fut),
        }
    }

    /// Sleeps on this runtime.
    pub async fn sleep(self, d: Duration) {
        match self {
            Self::Tokio => tokio::time::sleep(d).await,
            Self::Smol | Self::AsyncStd => {
                smol::Timer::after(d).await;
            }
        }
    }

    /// Polls `check` every `every` on this runtime (sleeping between checks without blocking
    /// the runtime's threads) until it returns `Ok(true)`, for at most `timeout`. Returns the
    /// time it took. An `Err` from `check` counts as "not yet"; the last one is reported if the
    /// deadline passes. `what` names the condition in the timeout error.
    pub async fn wait_until(
        self,
        timeout: Duration,
        every: Duration,
        what: &str,
        mut check: impl FnMut() -> crate::Result<bool>,
    ) -> crate::Result<Duration> {
        let start = Instant::now();
        loop {
            let last = match check() {
                Ok(true) => return Ok(start.elapsed()),
                Ok(false) => None,
                Err(e) => Some(e),
            };
            if start.elapsed() >= timeout {
                let mut msg = format!("timed out after {timeout:?} waiting for {what}");
                if let Some(e) = last {
                    msg.push_str(&format!(" (last error: {e})"));
                }
                return Err(crate::Error::new(msg));
            }
            self.sleep(every).await;
        }
    }

    /// Spawns a task on this runtime and returns its output through a channel.
    pub fn spawn<T: Send + 'static>(
        self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> BoxFuture<'static, T> {
        use futures_util::FutureExt;
        match self {
            Self::Tokio => tokio::spawn(fut).map(|r| r.expect("task panicked")).boxed(),
            Self::Smol => smol::spawn(fut).boxed(),
            Self::AsyncStd => async_std::task::spawn(fut).boxed(),
        }
    }
}

/// A client configuration for `cluster`: its seeds, a client name, and a seed for jitter.
#[must_use]
pub fn config(cluster: &Cluster) -> Config {
    let mut cfg = Config::new(cluster.seeds());
    cfg.client.client_name = Some("slotcache-conformance".into());
    cfg
}

/// A 3+3 cluster for the drills that kill a master under traffic: a node timeout of 1 s, and
/// the other shards keep serving while one has no master (`cluster-require-full-coverage no`).
///
/// # Panics
/// If the cluster does not start.
#[must_use]
pub fn failover_cluster(label: &str) -> Cluster {
    crate::ClusterBuilder::new()
        .masters(3)
        .replicas(1)
        .node_timeout(Duration::from_millis(1000))
        .args(["--cluster-require-full-coverage", "no"])
        .label(label)
        .start()
        .expect("cluster")
}

/// One round of a drill on a [`failover_cluster`]: round `n` kills the original master `n`
/// (a different one each round), and its replica takes over.
#[derive(Clone, Debug)]
pub struct FailoverRound {
    /// The master to kill.
    pub victim: usize,
    /// Its replica, which takes over.
    pub replica: usize,
    /// The cluster's masters before the kill (three).
    pub masters: Vec<usize>,
    /// The slots' owners as the replica sees them before the kill (see [`slot_owners`]).
    pub owners: Vec<Option<usize>>,
}

impl FailoverRound {
    /// Round `round` of runtime `p`.
    ///
    /// # Panics
    /// If master `round` is not a master with a replica, or the cluster has other than three
    /// masters.
    #[must_use]
    pub fn new(cluster: &Cluster, round: usize, p: &str) -> Self {
        let victim = round;
        assert_eq!(cluster.role(victim).expect("role"), crate::Role::Master, "{p}");
        let replica = *cluster.replicas_of(victim).expect("replicas").first().expect("a replica");
        let masters = cluster.masters().expect("masters");
        assert_eq!(masters.len(), 3, "{p}: {masters:?}");
        let owners = slot_owners(cluster, replica).expect("owners");
        Self { victim, replica, masters, owners }
    }
}

/// The master (node index) serving each slot, by node `view`'s `CLUSTER SHARDS`; `None` for
/// a slot nobody serves. Index it with a slot number.
pub fn slot_owners(cluster: &Cluster, view: usize) -> crate::Result<Vec<Option<usize>>> {
    let mut owners = vec![None; usize::from(slotcache_core::SLOT_COUNT)];
    for shard in cluster.shards(view)? {
        let Some(m) = shard.master().and_then(|m| cluster.index_of_id(&m.id)) else { continue };
        for &(lo, hi) in &shard.slots {
            for s in lo..=hi {
                owners[usize::from(s)] = Some(m);
            }
        }
    }
    Ok(owners)
}

/// `count` keys named after `name` on the slots of master `m` (by `owners`, see
/// [`slot_owners`]), spread evenly over its slots, each in a different slot when it has
/// enough.
#[must_use]
pub fn keys_on(owners: &[Option<usize>], m: usize, count: usize, name: &str) -> Vec<String> {
    let slots: Vec<u16> =
        (0..slotcache_core::SLOT_COUNT).filter(|&s| owners.get(usize::from(s)) == Some(&Some(m))).collect();
    if slots.is_empty() {
        return Vec::new();
    }
    (0..count)
        .map(|i| {
            let slot = slots[i * slots.len() / count.max(1) % slots.len()];
            crate::key_for_slot(slot, &format!("{name}:{i}"))
        })
        .collect()
}

/// How many times node `i` ran `command` (lower case, e.g. `"get"`), from `INFO commandstats`
/// ([`Cluster::commandstats`]); 0 when it never ran it.
pub fn cmdstat_calls(cluster: &Cluster, i: usize, command: &str) -> crate::Result<u64> {
    Ok(cluster.commandstats(i)?.get(command).map_or(0, |s| s.calls))
}

/// A number from node `i`'s `INFO <section>` (e.g. `("stats", "total_reads_processed")`).
pub fn info_number(cluster: &Cluster, i: usize, section: &str, field: &str) -> crate::Result<u64> {
    let info = cluster.info(i, section)?;
    crate::topo::info_field(&info, field)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| crate::Error::new(format!("node {i}: no number {field} in INFO {section}")))
}

/// How many error replies with this code (`"LOADING"`, `"READONLY"`, ...) node `i` has sent since
/// it started, from `INFO errorstats` (`errorstat_<CODE>:count=<n>`); 0 when none.
pub fn errorstat_count(cluster: &Cluster, i: usize, code: &str) -> crate::Result<u64> {
    let info = cluster.info(i, "errorstats")?;
    let prefix = format!("errorstat_{code}:");
    for line in info.lines() {
        if let Some(rest) = line.strip_prefix(&prefix) {
            return rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("count="))
                .and_then(|n| n.trim().parse().ok())
                .ok_or_else(|| crate::Error::new(format!("node {i}: cannot read {line:?}")));
        }
    }
    Ok(0)
}

/// A short name of an error's kind, for tallies in test output (`Unreachable`, `Timeout`,
/// `Server(CLUSTERDOWN)`, ...).
#[must_use]
pub fn error_kind(e: &slotcache_rt::Error) -> String {
    use slotcache_rt::{Error, RequestError};
    match e {
        Error::Request(r) => match r {
            RequestError::Server(s) => format!("Server({})", String::from_utf8_lossy(s.code())),
            RequestError::Auth { .. } => "Auth".into(),
            RequestError::Timeout { stage, .. } => format!("Timeout({stage:?})"),
            RequestError::ConnectionLost { .. } => "ConnectionLost".into(),
            RequestError::Unreachable { error, .. } => format!("Unreachable({:?})", error.kind),
            RequestError::Protocol { .. } => "Protocol".into(),
            RequestError::RedirectLoop { .. } => "RedirectLoop".into(),
            RequestError::QueueFull { .. } => "QueueFull".into(),
            RequestError::NoTopology { .. } => "NoTopology".into(),
            RequestError::NoRoute { .. } => "NoRoute".into(),
            RequestError::UnexpectedReply { .. } => "UnexpectedReply".into(),
            RequestError::Closed => "RequestClosed".into(),
            RequestError::Internal { .. } => "Internal".into(),
            other => format!("{other:?}").split(['{', '(', ' ']).next().unwrap_or_default().to_owned(),
        },
        Error::Submit(_) => "Submit".into(),
        Error::Config(_) => "Config".into(),
        Error::Tls(_) => "Tls".into(),
        Error::Closed => "Closed".into(),
        other => format!("{other:?}"),
    }
}

/// One finished request of a [`traffic`] task.
#[derive(Clone, Debug)]
pub struct Op {
    /// The caller's tag of the task (e.g. the shard it works on).
    pub tag: usize,
    /// When it was sent, from the traffic's start.
    pub start: Duration,
    /// When it finished, from the traffic's start.
    pub end: Duration,
    /// Its error's kind ([`error_kind`]), `None` for a success.
    pub error: Option<String>,
}

/// What [`traffic`] tasks saw.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    /// Every request, in the order each task sent them.
    pub ops: Vec<Op>,
    /// Wrong values: a reply for another key, a value never written, a missing key, a reply of
    /// the wrong type.
    pub wrong: Vec<String>,
    /// Reads older than the last acknowledged write of the same task (a write lost with a
    /// master that died before replicating it).
    pub stale: u64,
}

impl Traffic {
    /// Adds another task's record.
    pub fn merge(&mut self, other: Self) {
        self.ops.extend(other.ops);
        self.wrong.extend(other.wrong);
        self.stale += other.stale;
    }

    /// The failed requests.
    pub fn errors(&self) -> impl Iterator<Item = &Op> {
        self.ops.iter().filter(|o| o.error.is_some())
    }

    /// A tally of error kinds, for messages.
    #[must_use]
    pub fn error_kinds(&self) -> std::collections::BTreeMap<String, usize> {
        let mut kinds = std::collections::BTreeMap::new();
        for e in self.errors() {
            *kinds.entry(format!("{}@{}", e.error.as_deref().unwrap_or_default(), e.tag)).or_default() += 1;
        }
        kinds
    }
}

/// A traffic task: writes then reads each of `keys` in turn (`SET key "<key>|<n>"`, `GET key`),
/// pacing itself with a 2 ms sleep, until `stop` is set (or 60 s pass). Every key must hold
/// `"<key>|<n>"` already (`n` = 0 is fine): a nil read is a wrong value. A read is checked to
/// be for its key and no newer than the last write sent.
pub async fn traffic(
    rt: Rt,
    client: slotcache_rt::Client,
    keys: Vec<String>,
    tag: usize,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> Traffic {
    use slotcache_rt::{Cmd, Value};
    let hard_stop = t0 + Duration::from_secs(60);
    let mut seen = Traffic::default();
    // Sequence numbers: the last one sent (maybe executed) and the last one acknowledged.
    let mut sent = vec![0u64; keys.len()];
    let mut acked = vec![0u64; keys.len()];
    let mut n = 0usize;
    while !keys.is_empty() && !stop.load(Ordering::Relaxed) && Instant::now() < hard_stop {
        let k = n % keys.len();
        let write = (n / keys.len()).is_multiple_of(2);
        n += 1;
        let key = &keys[k];
        let start = t0.elapsed();
        let error = if write {
            sent[k] += 1;
            match client.send(Cmd::new("SET").arg(key.as_str()).arg(format!("{key}|{}", sent[k]))).await {
                Ok(v) if v.as_str() == Some("OK") => {
                    acked[k] = sent[k];
                    None
                }
                Ok(v) => {
                    seen.wrong.push(format!("SET {key}: {v:?}"));
                    None
                }
                Err(e) => Some(error_kind(&e)),
            }
        } else {
            match client.send(Cmd::new("GET").arg(key.as_str())).await {
                Ok(Value::Bulk(b)) => {
                    let text = String::from_utf8_lossy(&b);
                    let parsed = text.rsplit_once('|').and_then(|(k, s)| Some((k, s.parse::<u64>().ok()?)));
                    match parsed {
                        Some((k2, s)) if k2 == key && s <= sent[k] => {
                            if s < acked[k] {
                                seen.stale += 1;
                            }
                        }
                        _ => seen.wrong.push(format!("GET {key} (sent up to {}): {text:?}", sent[k])),
                    }
                    None
                }
                Ok(v) => {
                    seen.wrong.push(format!("GET {key}: {v:?}"));
                    None
                }
                Err(e) => Some(error_kind(&e)),
            }
        };
        seen.ops.push(Op { tag, start, end: t0.elapsed(), error });
        rt.sleep(Duration::from_millis(2)).await;
    }
    seen
}

/// Writes `"<key>|0"` to every key through a raw connection to master `m` (the keys must be
/// its own), then waits until its replicas have them (`WAIT`).
pub fn seed_keys(cluster: &Cluster, m: usize, keys: &[String]) -> crate::Result<()> {
    let mut conn = cluster.conn(m)?;
    for k in keys {
        conn.cmd_ok(["SET", k.as_str(), &format!("{k}|0")])?;
    }
    let replicas = cluster.replicas_of(m)?.len();
    if replicas > 0 {
        let acked = conn.cmd(["WAIT", &replicas.to_string(), "5000"])?.as_int();
        if acked != i64::try_from(replicas).ok() {
            return Err(crate::Error::new(format!("node {m}: WAIT {replicas} answered {acked:?}")));
        }
    }
    Ok(())
}

/// The usual traffic plan: `tasks_per_master` tasks of `keys_per_task` keys on each of
/// `masters`, the keys named after `name`, spread over each master's slots (by `owners`, see
/// [`keys_on`]) and seeded ([`seed_keys`]) first. Each task is tagged with its master; start them
/// with [`TrafficRun::start`].
pub fn traffic_plan(
    cluster: &Cluster,
    owners: &[Option<usize>],
    masters: impl IntoIterator<Item = usize>,
    tasks_per_master: usize,
    keys_per_task: usize,
    name: &str,
) -> crate::Result<Vec<(usize, Vec<String>)>> {
    let mut plan = Vec::new();
    for m in masters {
        let keys = keys_on(owners, m, tasks_per_master * keys_per_task, name);
        seed_keys(cluster, m, &keys)?;
        plan.extend(keys.chunks(keys_per_task.max(1)).map(|chunk| (m, chunk.to_vec())));
    }
    Ok(plan)
}

/// [`traffic`] tasks running on one client: started together by [`TrafficRun::start`], stopped
/// and collected by [`TrafficRun::finish`] (or [`TrafficRun::finish_each`]).
pub struct TrafficRun {
    /// When the traffic started: every [`Op`]'s times count from here.
    pub t0: Instant,
    stop: Arc<AtomicBool>,
    tasks: Vec<(usize, BoxFuture<'static, Traffic>)>,
}

impl TrafficRun {
    /// Starts one [`traffic`] task on `rt` for each `(tag, keys)` of `plan`, all on `client`.
    pub fn start(rt: Rt, client: &slotcache_rt::Client, plan: Vec<(usize, Vec<String>)>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let t0 = Instant::now();
        let tasks = plan
            .into_iter()
            .map(|(tag, keys)| (tag, rt.spawn(traffic(rt, client.clone(), keys, tag, t0, stop.clone()))))
            .collect();
        Self { t0, stop, tasks }
    }

    /// Stops every task and returns what each saw, with its tag, in the plan's order.
    pub async fn finish_each(self) -> Vec<(usize, Traffic)> {
        self.stop.store(true, Ordering::Relaxed);
        let mut out = Vec::with_capacity(self.tasks.len());
        for (tag, task) in self.tasks {
            out.push((tag, task.await));
        }
        out
    }

    /// Stops every task and returns what they saw, merged.
    pub async fn finish(self) -> Traffic {
        let mut all = Traffic::default();
        for (_, seen) in self.finish_each().await {
            all.merge(seen);
        }
        all
    }
}
