//! The concurrent workload: time-boxed workers over a small key space and a few tags.
//!
//! Each worker loops until the run stops, picking one operation at random (per mille):
//!
//! | share | operation |
//! |---|---|
//! | 18 % | `get` (`get_if_present`) |
//! | 7 % | `get_entry` |
//! | 5 % | `bulk_get` of 2–4 keys |
//! | 4.5 % | `get` with a loader (its value stored untagged on a miss; when it was called is recorded) |
//! | 18.5 % | `set` with 1–2 random tags |
//! | 6.5 % | `set` without tags |
//! | 8.5 % | `invalidate` of one key |
//! | 13 % | `invalidate_by_tags` of 1–2 tags |
//! | 10 % | `bulk_set` of 2–4 keys with one tag |
//! | 3.5 % | `compute` setting a new value (the tags it kept reported by a test-only hook) |
//! | 1.3 % | `refresh` (in the caller's task, reporting the tags it kept: test-only hook) |
//! | 1.2 % | `refresh` through the API (sharing loads in flight; the tags kept not reported) |
//! | 1 % | `bulk_refresh` of 2–3 keys (the tags kept not reported) |
//! | 1 % | `set_expires_after` of 20–400 ms |
//! | 0.4 % | `entries()`, the whole stream |
//! | 0.2 % | `keys()`, the whole stream |
//! | 0.2 % | `estimated_size` |
//! | 0.2 % | `invalidate_all` |
//!
//! A subject without the whole mix ([`Subject::full_mix`]: the naive protocol) draws from the
//! first nine only.
//!
//! Every value is `w<worker>.<seq>`, unique in the run (worker ids are unique across the client
//! processes of a run, [`Spec::first_worker`]). Between operations a worker yields, and
//! one time in four sleeps 1 ms (pacing, so two shared cores are not swamped).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use futures_util::future::{Either, select};

use super::{Clock, LoaderCalled, NOT_CALLED, Op, Record, Recorder, Ret, Subject};
use crate::conformance::Rt;

/// The size and length of a run.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Concurrent workers (tasks of the run's runtime).
    pub workers: usize,
    /// Keys `k00`, `k01`, ...
    pub keys: usize,
    /// Tags `t0`, `t1`, ...
    pub tags: usize,
    /// The run lasts at least this long ...
    pub min: Duration,
    /// ... and then until the disruption is over plus [`Spec::tail`], but never longer than this.
    pub max: Duration,
    /// How long the workers keep going after the disruption said it is done.
    pub tail: Duration,
    /// Seed of the workers' random choices (printed, so a run can be replayed in spirit).
    pub seed: u64,
    /// The id of the first worker (the others follow): workers of several client processes
    /// sharing one history take ranges of their own, so ids and values stay unique.
    pub first_worker: usize,
    /// The longest TTL of the workers' `set`s, each drawn from 1 ms to it (`None`: the default
    /// TTL, an hour); `bulk_set` keeps the default. The quiescent checks wait until the
    /// short-lived entries expired.
    pub ttl: Option<Duration>,
    /// The workers' subject reads values from replicas (`send_to_replicas`): the checker then
    /// does not hold their reads to the rule for `invalidate` of the key (replication lag).
    pub replica_reads: bool,
    /// Each worker starts at most one operation per this (`None`: the pacing above only), so a
    /// long run's history stays a known size.
    pub pace: Option<Duration>,
    /// Where the workers hand their records, [`HAND_OVER_EVERY`] at a time (`None`: each keeps
    /// its records to the end): a long run's records then leave the workers' process as it goes.
    pub sink: Option<Sender<Vec<Record>>>,
    /// Watched keys: when an operation on key `i` last succeeded ([`Clock`] nanoseconds, 0:
    /// never), so whoever runs the workload can tell a shard is served again.
    pub served: Option<Arc<Vec<AtomicU64>>>,
}

/// How many records a worker with a [`Spec::sink`] keeps before handing them over.
pub const HAND_OVER_EVERY: usize = 256;

impl Spec {
    /// 16 workers, 32 keys, 4 tags, `min` long, seed from the clock (or
    /// `SLOTCACHE_HISTORY_SEED`).
    #[must_use]
    pub fn new(min: Duration) -> Self {
        let seed =
            std::env::var("SLOTCACHE_HISTORY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| u64::from(d.subsec_nanos()) ^ d.as_secs())
            });
        Self {
            workers: 16,
            keys: 32,
            tags: 4,
            min,
            max: min * 5,
            tail: Duration::from_secs(1),
            seed,
            first_worker: 0,
            ttl: None,
            replica_reads: false,
            pace: None,
            sink: None,
            served: None,
        }
    }

    /// The user keys.
    #[must_use]
    pub fn key_names(&self) -> Vec<String> {
        (0..self.keys).map(key_name).collect()
    }

    /// The tags.
    #[must_use]
    pub fn tag_names(&self) -> Vec<String> {
        (0..self.tags).map(|i| format!("t{i}")).collect()
    }
}

/// The name of key `i`.
#[must_use]
pub fn key_name(i: usize) -> String {
    format!("k{i:02}")
}

/// A small splitmix64 generator (deterministic per seed; quality is plenty for a workload).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub const fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    /// `count` distinct items of `from` (at most all of them).
    pub fn pick<T: Clone>(&mut self, from: &[T], count: usize) -> Vec<T> {
        let mut idx: Vec<usize> = (0..from.len()).collect();
        let n = count.min(from.len());
        for i in 0..n {
            let j = i + self.below(idx.len() - i);
            idx.swap(i, j);
        }
        idx[..n].iter().map(|&i| from[i].clone()).collect()
    }
}

/// Where the operations of the whole mix begin on the per-mille dice ([`Subject::full_mix`]).
const FULL_FROM: usize = 910;

/// The longest TTL `set_expires_after` sets (from 20 ms): the quiescent checks wait until
/// entries that short-lived expired.
pub const EXPIRE_MAX_MS: u64 = 400;

/// Tells the workers when to stop: the disruption (if any) reports it is done with
/// [`Stop::disruption_done`]; the run then lasts [`Spec::tail`] more, and at least
/// [`Spec::min`], at most [`Spec::max`].
#[derive(Clone, Debug, Default)]
pub struct Stop {
    done: Arc<AtomicBool>,
}

impl Stop {
    /// A run with a disruption that has not finished yet.
    #[must_use]
    pub fn pending() -> Self {
        Self::default()
    }

    /// A run without disruption.
    #[must_use]
    pub fn undisturbed() -> Self {
        let s = Self::default();
        s.disruption_done();
        s
    }

    /// The disruption is over (or failed: the run ends either way).
    pub fn disruption_done(&self) {
        self.done.store(true, Ordering::Release);
    }

    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// Runs the workload on runtime `rt` (from inside its `block_on`) and returns every worker's
/// records. The
/// run is time-boxed ([`Spec`]); each operation is bounded by the subject's own timeouts, and
/// the whole run by `max` plus 30 s (an error after that).
///
/// # Errors
/// A worker that panicked or did not finish in time.
pub async fn run(
    rt: Rt,
    subject: Arc<dyn Subject>,
    spec: &Spec,
    clock: Clock,
    stop: Stop,
) -> Result<Vec<Vec<Record>>, String> {
    let halt = Arc::new(AtomicBool::new(false));
    let keys = Arc::new(spec.key_names());
    let tags = Arc::new(spec.tag_names());
    let mut tasks = Vec::with_capacity(spec.workers);
    for w in 0..spec.workers {
        let (subject, keys, tags, halt) = (subject.clone(), keys.clone(), tags.clone(), halt.clone());
        let rng = Rng::new(spec.seed ^ (w as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        let id = spec.first_worker + w;
        tasks.push(rt.spawn(worker(rt, id, subject, keys, tags, rng, clock, halt, spec.clone())));
    }
    // The controller: ends the run once min has passed and the disruption is over (plus its
    // tail), or when max has passed.
    let start = Instant::now();
    let mut done_at: Option<Instant> = None;
    loop {
        rt.sleep(Duration::from_millis(20)).await;
        let now = Instant::now();
        if done_at.is_none() && stop.is_done() {
            done_at = Some(now);
        }
        let over = done_at.is_some_and(|d| now >= d + spec.tail) && now >= start + spec.min;
        if over || now >= start + spec.max {
            break;
        }
    }
    halt.store(true, Ordering::Release);
    let joined = core::pin::pin!(futures_util::future::join_all(tasks));
    let limit = core::pin::pin!(rt.sleep(Duration::from_secs(30)));
    match select(joined, limit).await {
        Either::Left((records, _)) => Ok(records),
        Either::Right(_) => Err("workers did not stop within 30 s of the end of the run".to_owned()),
    }
}

/// Lets the other tasks of the runtime run once.
async fn yield_now() {
    let mut yielded = false;
    core::future::poll_fn(|cx| {
        if yielded {
            core::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            core::task::Poll::Pending
        }
    })
    .await;
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    rt: Rt,
    w: usize,
    subject: Arc<dyn Subject>,
    keys: Arc<Vec<String>>,
    tags: Arc<Vec<String>>,
    mut rng: Rng,
    clock: Clock,
    halt: Arc<AtomicBool>,
    spec: Spec,
) -> Vec<Record> {
    let ttl = spec.ttl;
    let mut next = Instant::now();
    let mut rec = Recorder::new(clock, w);
    let mut seq = 0u64;
    let mut value = || {
        seq += 1;
        format!("w{w}.{seq}")
    };
    let s = subject.as_ref();
    let full = subject.full_mix();
    while !halt.load(Ordering::Acquire) {
        // Per mille; a subject without the whole mix draws from the first part only.
        let dice = if full { rng.below(1000) } else { rng.below(FULL_FROM) };
        let max_ms = ttl.map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
        let ttl = ttl.map(|_| Duration::from_millis(1 + rng.next() % max_ms));
        let key = keys[rng.below(keys.len())].clone();
        let at = Arc::new(AtomicU64::new(NOT_CALLED));
        let mark = at.clone();
        let called: LoaderCalled = Arc::new(move || mark.store(clock.now(), Ordering::Release));
        match dice {
            0..180 => {
                let op = Op::Get { key: key.clone() };
                let _ = rec.record(op, async { s.get(&key).await.map(Ret::Read) }).await;
            }
            180..250 => {
                let op = Op::GetEntry { key: key.clone() };
                let _ = rec.record(op, async { s.get_entry(&key).await.map(Ret::Entry) }).await;
            }
            250..300 => {
                let n = 2 + rng.below(3);
                let ks = rng.pick(&keys, n);
                let op = Op::BulkGet { keys: ks.clone() };
                let _ = rec.record(op, async { s.bulk_get(&ks).await.map(Ret::Values) }).await;
            }
            300..345 => {
                let v = value();
                let op = Op::Load { key: key.clone(), value: v.clone() };
                let load = async { s.get_or_load(&key, &v, called).await.map(|v| Ret::Read(Some(v))) };
                let _ = rec.record_load(op, &at, load).await;
            }
            345..530 => {
                let n = 1 + rng.below(2);
                let t = rng.pick(&tags, n);
                let v = value();
                let op = Op::Set { key: key.clone(), value: v.clone(), tags: t.clone() };
                let _ = rec.record(op, async { s.set(&key, &v, &t, ttl).await.map(|()| Ret::Done) }).await;
            }
            530..595 => {
                let v = value();
                let op = Op::Set { key: key.clone(), value: v.clone(), tags: Vec::new() };
                let _ = rec.record(op, async { s.set(&key, &v, &[], ttl).await.map(|()| Ret::Done) }).await;
            }
            595..680 => {
                let op = Op::Invalidate { key: key.clone() };
                let _ = rec.record(op, async { s.invalidate(&key).await.map(Ret::Existed) }).await;
            }
            680..810 => {
                let n = 1 + rng.below(2);
                let t = rng.pick(&tags, n);
                let op = Op::InvalidateTags { tags: t.clone() };
                let _ = rec.record(op, async { s.invalidate_by_tags(&t).await.map(Ret::Count) }).await;
            }
            810..FULL_FROM => {
                let n = 2 + rng.below(3);
                let ks = rng.pick(&keys, n);
                let items: Vec<(String, String)> = ks.into_iter().map(|k| (k, value())).collect();
                let t = rng.pick(&tags, 1);
                let op = Op::BulkSet { items: items.clone(), tags: t.clone() };
                let _ = rec.record(op, async { s.bulk_set(&items, &t).await.map(|()| Ret::Done) }).await;
            }
            // The whole mix from here.
            FULL_FROM..945 => {
                let v = value();
                let op = Op::Compute { key: key.clone(), value: v.clone() };
                let _ = rec.record(op, async { s.compute(&key, &v).await.map(Ret::Computed) }).await;
            }
            945..958 => {
                let v = value();
                let op = Op::Refresh { key: key.clone(), value: v.clone() };
                let reload = async {
                    s.refresh(&key, &v, called).await.map(|(value, tags)| Ret::Refreshed { value, tags })
                };
                let _ = rec.record_load(op, &at, reload).await;
            }
            958..970 => {
                let v = value();
                let op = Op::Refresh { key: key.clone(), value: v.clone() };
                let reload = async { s.refresh_shared(&key, &v, called).await.map(Ret::Reloaded) };
                let _ = rec.record_load(op, &at, reload).await;
            }
            970..980 => {
                let n = 2 + rng.below(2);
                let ks = rng.pick(&keys, n);
                let items: Vec<(String, String)> = ks.into_iter().map(|k| (k, value())).collect();
                let op = Op::BulkRefresh { items: items.clone() };
                let reload = async { s.bulk_refresh(&items, called).await.map(Ret::Count) };
                let _ = rec.record_load(op, &at, reload).await;
            }
            980..990 => {
                let ms = 20 + rng.next() % (EXPIRE_MAX_MS - 19);
                let op = Op::Expire { key: key.clone(), ms };
                let expire =
                    async { s.set_expires_after(&key, Duration::from_millis(ms)).await.map(Ret::Existed) };
                let _ = rec.record(op, expire).await;
            }
            990..994 => {
                let _ = rec.record(Op::Entries, async { s.entries().await.map(Ret::Found) }).await;
            }
            994..996 => {
                let _ = rec.record(Op::Keys, async { s.keys().await.map(Ret::Keys) }).await;
            }
            996..998 => {
                let _ =
                    rec.record(Op::EstimatedSize, async { s.estimated_size().await.map(Ret::Count) }).await;
            }
            _ => {
                let _ =
                    rec.record(Op::InvalidateAll, async { s.invalidate_all().await.map(Ret::Count) }).await;
            }
        }
        note_served(&spec, &rec);
        if let Some(sink) = &spec.sink
            && rec.len() >= HAND_OVER_EVERY
        {
            // The receiver gone means the run is over: the records are dropped with it.
            let _ = sink.send(rec.take());
        }
        if let Some(pace) = spec.pace {
            next += pace;
            let now = Instant::now();
            next = next.max(now);
            rt.sleep(next - now).await;
        } else if rng.below(4) == 0 {
            rt.sleep(Duration::from_millis(1)).await;
        } else {
            yield_now().await;
        }
    }
    rec.into_records()
}

/// Marks the keys of the worker's last operation served, if it succeeded and keys are watched.
fn note_served(spec: &Spec, rec: &Recorder) {
    let (Some(served), Some(r)) = (&spec.served, rec.last()) else { return };
    if !r.ok() {
        return;
    }
    for key in r.op.keys() {
        let i = key.strip_prefix('k').and_then(|n| n.parse::<usize>().ok());
        if let Some(slot) = i.and_then(|i| served.get(i)) {
            slot.fetch_max(r.completed, Ordering::Relaxed);
        }
    }
}
