//! When to refresh the topology: one pure policy object.
//!
//! The client reports triggers ([`RefreshPolicy::request`]), asks whether to start a refresh
//! ([`RefreshPolicy::poll_start`]), arms its timer from [`RefreshPolicy::next_deadline`], and
//! reports the end of each refresh ([`RefreshPolicy::finished`]). Time and randomness are
//! arguments; the policy never reads a clock.
//!
//! # How refresh storms are prevented
//!
//! Two public incidents set the bar. In valkey-go#140, a `CLUSTERDOWN` seen by 5,000 clients of
//! a 1,000-shard cluster made every client send `CLUSTER SHARDS` at the same moment, pinning the
//! servers' CPU. In rueidis#335, error-triggered refreshes reached 1.3 million `CLUSTER SLOTS`
//! a minute, because every failed command started (or queued) its own refresh. The policy
//! removes each ingredient:
//!
//! 1. **One refresh in flight, one follow-up.** A trigger while a refresh runs only marks a
//!    single follow-up (the running refresh may have been answered before the trigger's cause);
//!    10,000 `MOVED`s during a refresh cost one extra refresh, not 10,000.
//! 2. **A minimum interval between starts** ([`RefreshConfig::min_interval`], 100 ms): under a
//!    continuous stream of triggers one client starts at most `T / min_interval + 1` refreshes in
//!    `T` (plus one follow-up), whatever the trigger rate.
//! 3. **Jitter that grows with the cluster** ([`RefreshConfig::jitter_per_node`] per node, capped
//!    at [`RefreshConfig::max_jitter`]): an event every client sees at once (a `CLUSTERDOWN`) is
//!    spread over a window proportional to the reply's cost, so the servers' load per client
//!    stays bounded as the cluster grows. The jitter is drawn once per pending refresh, never per
//!    trigger.
//! 4. **Failures back off.** A failed refresh retries by itself, first after
//!    [`RefreshConfig::retry_initial`] (sooner than the minimum interval, since the usual cause is
//!    a dead node and the next attempt should go to another), then doubling up to
//!    [`RefreshConfig::retry_max`]; new triggers cannot shorten the backoff.
//!
//! The policy decides *when*. The caller decides *where*: ask a random known node rather than
//! always the first seed, and request a refresh for a `MOVED` only when
//! [`Topology::patch_slot`](super::Topology::patch_slot) changed the map (a redirect the map
//! already agrees with carries no news).

use core::time::Duration;
use std::time::Instant;

use thiserror::Error;

use crate::Rng;

/// Why a refresh was requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefreshReason {
    /// First topology load: starts at once, with no interval or jitter. Once a refresh has run
    /// (a first attempt that failed), it waits out the failure backoff like any trigger, still
    /// without jitter: a client with no topology retries on a schedule, not in a loop.
    Startup,
    /// A `MOVED` redirect changed the slot map.
    Moved,
    /// A node connection dropped or could not be made.
    ConnectionLost,
    /// A `CLUSTERDOWN` reply.
    ClusterDown,
    /// A `READONLY` reply: a write reached a node that is now a replica.
    ReadOnly,
    /// The periodic check (also started by the policy itself when configured).
    Periodic,
    /// The application asked: no jitter, but the minimum interval and backoff still apply.
    Manual,
}

/// Settings of a [`RefreshPolicy`]. The defaults suit a cache: react within about 100 ms, never
/// more than 10 refreshes a second per client.
///
/// Build it from [`Default`] and set fields; with the `serde` feature, durations are written
/// `"100ms"` and `periodic = "off"` turns the periodic refresh off.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct RefreshConfig {
    /// Least time between two refresh starts after a success. Default 100 ms: Valkey needs
    /// about a second (`cluster-node-timeout`) to fail a primary over, so asking more often
    /// learns nothing, while `MOVED` patches keep routing correct in between; and a client
    /// sees a promotion at most about 100 ms (plus jitter) after it happens.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::config::de::duration"))]
    pub min_interval: Duration,
    /// Jitter added per listed node before a triggered refresh. Default 2 ms: 12 ms for a
    /// 3 × 2 cluster, 2 s for 1,000 nodes.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::config::de::duration"))]
    pub jitter_per_node: Duration,
    /// Cap on the jitter. Default 5 s, reached at 2,500 nodes.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::config::de::duration"))]
    pub max_jitter: Duration,
    /// Delay before retrying after the first failed refresh. Default 50 ms.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::config::de::duration"))]
    pub retry_initial: Duration,
    /// Cap on the doubling retry delay. Default 2 s.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::config::de::duration"))]
    pub retry_max: Duration,
    /// Periodic refresh after the last success (plus up to an eighth of it as jitter), or
    /// `None` for none. Default 30 s: picks up changes no request stumbles on (a new replica, a
    /// new availability zone) at the cost of one small reply per client per half minute.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::config::de::optional_duration"))]
    pub periodic: Option<Duration>,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_millis(100),
            jitter_per_node: Duration::from_millis(2),
            max_jitter: Duration::from_secs(5),
            retry_initial: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
            periodic: Some(Duration::from_secs(30)),
        }
    }
}

/// Longest delay a setting may hold (one hour; the periodic refresh may be up to a day).
const MAX_SETTING: Duration = Duration::from_secs(3600);
const MAX_PERIOD: Duration = Duration::from_secs(86_400);

/// A [`RefreshConfig`] that [`RefreshConfig::validate`] rejects.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RefreshConfigError {
    /// `min_interval` must be at least 1 ms: zero would allow back-to-back refreshes.
    #[error("min_interval must be at least 1 ms")]
    MinIntervalTooSmall,
    /// `retry_initial` must be at least 1 ms and at most `retry_max`.
    #[error("retry_initial must be at least 1 ms and at most retry_max")]
    BadRetry,
    /// `periodic` must be at least `min_interval`.
    #[error("periodic must be at least min_interval")]
    PeriodTooShort,
    /// A delay is longer than an hour (a day for `periodic`).
    #[error("{0} is too long")]
    TooLong(&'static str),
}

impl RefreshConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), RefreshConfigError> {
        let checks = [
            ("min_interval", self.min_interval),
            ("jitter_per_node", self.jitter_per_node),
            ("max_jitter", self.max_jitter),
            ("retry_initial", self.retry_initial),
            ("retry_max", self.retry_max),
        ];
        if let Some((name, _)) = checks.iter().find(|(_, d)| *d > MAX_SETTING) {
            return Err(RefreshConfigError::TooLong(name));
        }
        if self.min_interval < Duration::from_millis(1) {
            return Err(RefreshConfigError::MinIntervalTooSmall);
        }
        if self.retry_initial < Duration::from_millis(1) || self.retry_initial > self.retry_max {
            return Err(RefreshConfigError::BadRetry);
        }
        match self.periodic {
            Some(p) if p > MAX_PERIOD => Err(RefreshConfigError::TooLong("periodic")),
            Some(p) if p < self.min_interval => Err(RefreshConfigError::PeriodTooShort),
            _ => Ok(()),
        }
    }

    /// The largest jitter for a cluster of `node_count` nodes:
    /// `min(jitter_per_node × node_count, max_jitter)`.
    #[must_use]
    pub fn jitter_bound(&self, node_count: usize) -> Duration {
        let n = u32::try_from(node_count).unwrap_or(u32::MAX);
        self.jitter_per_node.saturating_mul(n).min(self.max_jitter)
    }

    /// The retry delay after `failures` consecutive failed refreshes (at least 1):
    /// `min(retry_initial × 2^(failures − 1), retry_max)`.
    #[must_use]
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX);
        self.retry_initial.saturating_mul(factor).min(self.retry_max)
    }
}

/// How soon a pending refresh may start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Urgency {
    /// Now when no refresh has run yet (startup), and after each failure until every seed has
    /// been tried once in a row (a sweep of the seeds, each asked at once, so that credentials
    /// every seed refuses are reported without waiting); afterwards as `NoJitter`: the failure
    /// backoff applies, so the sweep can never spin.
    Immediate,
    /// After the interval or backoff, without jitter (manual).
    NoJitter,
    /// After the interval or backoff, plus the jitter.
    Normal,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    reason: RefreshReason,
    since: Instant,
    jitter: Duration,
    urgency: Urgency,
    /// Nodes (seeds, before the first topology) when requested: a startup sweep tries each once.
    nodes: u32,
}

#[derive(Clone, Copy, Debug)]
struct Last {
    start: Instant,
    finish: Option<Instant>,
}

/// Decides when the client refreshes its topology. See the [module docs](crate::topology::refresh) for how it prevents refresh storms.
#[derive(Clone, Debug)]
pub struct RefreshPolicy {
    config: RefreshConfig,
    in_flight: Option<RefreshReason>,
    pending: Option<Pending>,
    last: Option<Last>,
    failures: u32,
    next_periodic: Option<Instant>,
    started: u64,
    coalesced: u64,
}

impl RefreshPolicy {
    /// A policy with validated settings.
    pub fn new(config: RefreshConfig) -> Result<Self, RefreshConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            in_flight: None,
            pending: None,
            last: None,
            failures: 0,
            next_periodic: None,
            started: 0,
            coalesced: 0,
        })
    }

    /// The settings.
    #[must_use]
    pub const fn config(&self) -> &RefreshConfig {
        &self.config
    }

    /// Reports a trigger. `node_count` is the size of the current topology (the seed count
    /// before the first one) and scales the jitter. Triggers coalesce: at most one refresh is
    /// pending at any time, and its jitter is drawn once, when it is first requested.
    pub fn request(&mut self, now: Instant, reason: RefreshReason, node_count: usize, rng: &mut Rng) {
        let urgency = match reason {
            RefreshReason::Startup => Urgency::Immediate,
            RefreshReason::Manual => Urgency::NoJitter,
            _ => Urgency::Normal,
        };
        match &mut self.pending {
            Some(p) => {
                self.coalesced = self.coalesced.saturating_add(1);
                if urgency_rank(urgency) < urgency_rank(p.urgency) {
                    p.urgency = urgency;
                    p.reason = reason;
                    p.nodes = u32::try_from(node_count).unwrap_or(u32::MAX);
                }
            }
            None => {
                let jitter = match urgency {
                    Urgency::Normal => rng.duration_up_to(self.config.jitter_bound(node_count)),
                    _ => Duration::ZERO,
                };
                let nodes = u32::try_from(node_count).unwrap_or(u32::MAX);
                self.pending = Some(Pending { reason, since: now, jitter, urgency, nodes });
            }
        }
    }

    /// Whether to start a refresh now. When it returns `true` the refresh counts as in flight
    /// until [`finished`](Self::finished); the caller must then send exactly one topology query.
    #[must_use]
    pub fn poll_start(&mut self, now: Instant) -> bool {
        if self.in_flight.is_some() {
            return false;
        }
        let reason = match self.pending {
            Some(p) if self.due(&p) <= now => p.reason,
            Some(_) => return false,
            None => match self.next_periodic {
                Some(t) if t <= now => RefreshReason::Periodic,
                _ => return false,
            },
        };
        self.pending = None;
        self.next_periodic = None;
        self.in_flight = Some(reason);
        self.last = Some(Last { start: now, finish: None });
        self.started = self.started.saturating_add(1);
        true
    }

    /// When [`poll_start`](Self::poll_start) may next return `true`: `None` while a refresh is in
    /// flight or when nothing is pending and no periodic refresh is configured.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.in_flight.is_some() {
            return None;
        }
        match self.pending {
            Some(p) => Some(self.due(&p)),
            None => self.next_periodic,
        }
    }

    /// Reports the end of the refresh in flight: `ok` when a topology was obtained (applied or
    /// unchanged), `node_count` its size (ignored on failure). A failure schedules a retry after
    /// the backoff; a success arms the periodic refresh. Ignored when nothing is in flight.
    pub fn finished(&mut self, now: Instant, ok: bool, node_count: usize, rng: &mut Rng) {
        let Some(reason) = self.in_flight.take() else { return };
        if let Some(last) = &mut self.last {
            last.finish = Some(now);
        }
        if ok {
            self.failures = 0;
            self.next_periodic = self.config.periodic.map(|p| {
                let jitter = rng.duration_up_to(p / 8);
                add(add(now, p), jitter)
            });
        } else {
            self.failures = self.failures.saturating_add(1);
            if self.pending.is_none() {
                let jitter = rng.duration_up_to(self.config.jitter_bound(node_count));
                let nodes = u32::try_from(node_count).unwrap_or(u32::MAX);
                self.pending = Some(Pending { reason, since: now, jitter, urgency: Urgency::Normal, nodes });
            }
        }
    }

    /// Whether a refresh is in flight.
    #[must_use]
    pub const fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The reason of the refresh in flight.
    #[must_use]
    pub const fn in_flight_reason(&self) -> Option<RefreshReason> {
        self.in_flight
    }

    /// The reason of the pending refresh, if one is waiting.
    #[must_use]
    pub fn pending_reason(&self) -> Option<RefreshReason> {
        self.pending.map(|p| p.reason)
    }

    /// Consecutive failed refreshes (0 after a success).
    #[must_use]
    pub const fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// Refreshes started so far.
    #[must_use]
    pub const fn started(&self) -> u64 {
        self.started
    }

    /// Triggers absorbed by an already pending refresh.
    #[must_use]
    pub const fn coalesced(&self) -> u64 {
        self.coalesced
    }

    /// Earliest start allowed by the interval (after a success) or the backoff (after
    /// failures); `None` before the first refresh.
    fn earliest(&self) -> Option<Instant> {
        let last = self.last?;
        Some(match (self.failures, last.finish) {
            (0, _) | (_, None) => add(last.start, self.config.min_interval),
            (k, Some(finish)) => add(finish, self.config.backoff(k)),
        })
    }

    fn due(&self, p: &Pending) -> Instant {
        // Before the first refresh there is no interval or backoff to wait for: every urgency
        // but `Normal` (its jitter) starts at `since`. Afterwards `Immediate` is exempt only
        // during a sweep of the seeds after failures (fewer failures in a row than nodes).
        if p.urgency == Urgency::Immediate && self.failures > 0 && self.failures < p.nodes {
            return p.since;
        }
        let base = self.earliest().map_or(p.since, |e| e.max(p.since));
        if p.urgency == Urgency::Normal { add(base, p.jitter) } else { base }
    }
}

const fn urgency_rank(u: Urgency) -> u8 {
    match u {
        Urgency::Immediate => 0,
        Urgency::NoJitter => 1,
        Urgency::Normal => 2,
    }
}

/// `t + d`, or `t` in the (validated-away) case where that is not representable.
fn add(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}
