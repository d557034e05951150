//! The load: one generator per client, each a set of paced tasks that write unique values to
//! keys of their own and check every value they read back. Every request's start, latency,
//! shard and outcome is recorded against the run's clock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::shards::Key;
use crate::clients::BenchClient;
use crate::workloads::Rng;

/// What became of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Served; a read returned a value the key may hold.
    Ok,
    /// The client returned an error (or the drill's outer guard timed it out).
    Error,
    /// A read returned a value never written to this key, or nothing although the key was
    /// written and replicated before the load began.
    Wrong,
    /// A read returned a value older than the last write acknowledged for the key (a write the
    /// failover lost, or an older write applied after a newer one).
    Stale,
}

/// One request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rec {
    /// Start, microseconds from the run's start.
    pub(crate) start_us: u64,
    /// Latency, microseconds.
    pub(crate) lat_us: u64,
    pub(crate) shard: u8,
    pub(crate) outcome: Outcome,
}

impl Rec {
    /// End, microseconds from the run's start.
    pub(crate) const fn end_us(&self) -> u64 {
        self.start_us + self.lat_us
    }
}

/// How the tasks run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    /// At most one request per task per this (a request that takes longer is followed at once).
    pub(crate) every: Duration,
    /// The drill's own bound on one request, over the client's timeout (a hung request ends
    /// as an error here).
    pub(crate) guard: Duration,
}

/// A key's state as its task knows it.
struct KeyState {
    key: Key,
    /// The last acknowledged write's sequence number (0: the preload).
    acked: u64,
    /// Writes that failed since: they may have been applied or not.
    pending: Vec<u64>,
    next: u64,
}

/// What one task (or a whole client) recorded.
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    pub(crate) recs: Vec<Rec>,
    /// Error messages (shortened) and how often each came.
    pub(crate) errors: BTreeMap<String, u64>,
    /// The first errors in full: start (µs), latency (µs), shard, message.
    pub(crate) samples: Vec<(u64, u64, u8, String)>,
}

/// Errors kept in full per task.
const SAMPLES: usize = 20;

impl Recorded {
    /// Merges another task's recording.
    pub(crate) fn merge(&mut self, o: Self) {
        self.recs.extend(o.recs);
        for (k, n) in o.errors {
            *self.errors.entry(k).or_default() += n;
        }
        self.samples.extend(o.samples);
    }
}

/// The value written as sequence number `seq` of `key`.
pub(crate) fn value(key: &Bytes, seq: u64) -> Bytes {
    let mut v = key.to_vec();
    v.extend_from_slice(format!("|{seq}").as_bytes());
    Bytes::from(v)
}

/// The sequence number in `v` if it is a value of `key`.
pub(crate) fn seq_of(key: &Bytes, v: &[u8]) -> Option<u64> {
    let rest = v.strip_prefix(key.as_ref())?.strip_prefix(b"|")?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}

pub(crate) fn short(e: &anyhow::Error) -> String {
    let s = format!("{e}");
    // Strip addresses and numbers so the same kind of error is counted once.
    let s: String = s.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
    s.chars().take(90).collect()
}

/// One task: until `stop`, a request every `pace.every`: half `SET key <next value>`, half
/// `GET key` checked against what was written.
pub(crate) async fn task<C: BenchClient>(
    mut client: C,
    keys: Vec<Key>,
    t0: Instant,
    stop: Arc<AtomicBool>,
    pace: Pace,
    seed: u64,
) -> Recorded {
    let mut rng = Rng::new(seed);
    let mut ks: Vec<KeyState> =
        keys.into_iter().map(|key| KeyState { key, acked: 0, pending: Vec::new(), next: 1 }).collect();
    let mut out = Recorded::default();
    // Spread the tasks' first requests over one period.
    tokio::time::sleep(pace.every.mul_f64(rng.below(1000) as f64 / 1000.0)).await;
    while !stop.load(Ordering::Relaxed) && !ks.is_empty() {
        let i = rng.below(ks.len());
        let k = &mut ks[i];
        let start = Instant::now();
        let start_us = start.duration_since(t0).as_micros() as u64;
        let write = rng.below(2) == 0;
        let (outcome, err) = if write {
            let seq = k.next;
            k.next += 1;
            match tokio::time::timeout(pace.guard, client.set(&k.key.name, &value(&k.key.name, seq))).await {
                Ok(Ok(())) => {
                    k.acked = seq;
                    k.pending.clear();
                    (Outcome::Ok, None)
                }
                Ok(Err(e)) => {
                    k.pending.push(seq);
                    (Outcome::Error, Some(e))
                }
                Err(_) => {
                    k.pending.push(seq);
                    (Outcome::Error, Some(anyhow::anyhow!("the drill's guard timed the request out")))
                }
            }
        } else {
            match tokio::time::timeout(pace.guard, client.get_value(&k.key.name)).await {
                Ok(Ok(Some(v))) => match seq_of(&k.key.name, &v) {
                    Some(s) if s == k.acked => (Outcome::Ok, None),
                    Some(s) if k.pending.contains(&s) => {
                        // A write that failed was applied after all: it is now the latest.
                        k.acked = s;
                        k.pending.retain(|&p| p > s);
                        (Outcome::Ok, None)
                    }
                    Some(s) if s < k.acked => (Outcome::Stale, None),
                    _ => (Outcome::Wrong, None),
                },
                Ok(Ok(None)) => (Outcome::Wrong, None),
                Ok(Err(e)) => (Outcome::Error, Some(e)),
                Err(_) => (Outcome::Error, Some(anyhow::anyhow!("the drill's guard timed the request out"))),
            }
        };
        let lat_us = start.elapsed().as_micros() as u64;
        if let Some(e) = err {
            *out.errors.entry(short(&e)).or_default() += 1;
            if out.samples.len() < SAMPLES {
                out.samples.push((start_us, lat_us, k.key.shard, format!("{e:#}")));
            }
        }
        out.recs.push(Rec { start_us, lat_us, shard: k.key.shard, outcome });
        // Pacing (not a wait for a condition): the next request starts one period after this one.
        tokio::time::sleep_until(tokio::time::Instant::from_std(start + pace.every)).await;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_key_and_sequence() {
        let k = Bytes::from_static(b"{1}:a");
        assert_eq!(seq_of(&k, &value(&k, 42)), Some(42));
        assert_eq!(seq_of(&Bytes::from_static(b"{1}:b"), &value(&k, 42)), None);
        assert_eq!(seq_of(&k, b"{1}:a|x"), None);
    }
}
