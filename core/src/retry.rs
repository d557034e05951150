//! Retry budgets, idempotency classes, backoff with jitter, and the pure retry decision.
//!
//! Everything here is a function of its arguments: time comes in as `now`, randomness from the
//! caller's [`Rng`], per-request state lives in a [`Budget`] the caller owns.
//!
//! # Defaults, and why they are milliseconds
//!
//! A cache request that cannot be served quickly is better answered by the loader than by a
//! long wait, and the cluster conditions worth retrying (a `MOVED` after resharding, `TRYAGAIN`
//! during a migration, a connection lost on failover) clear in milliseconds to a second and a
//! half. redis-rs waits at least 1.28 s before its first retry, longer than a typical request
//! budget, so its retries almost never help (anchors §2.2, §8). The defaults here are:
//!
//! - first wait 1–2 ms (`base_backoff` 2 ms, equal jitter: half fixed, half random, so retries
//!   spread out but never hammer a node back-to-back);
//! - doubling, capped at 128 ms per wait, which keeps at least one retry inside the 250 ms
//!   request budgets clients commonly use;
//! - 6 attempts in all (first send included) for lost connections and the like: the worst-case
//!   total wait is 2 + 4 + 8 + 16 + 32 = 62 ms, and a retry is never scheduled at or past the
//!   request deadline;
//! - cluster states that clear by themselves (`TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`,
//!   `LOADING`) are not bounded by attempts but only by the deadline, at the capped backoff: a
//!   legacy migration or a failover lasts longer than 62 ms, and the server did not run the
//!   command, so retrying is always safe;
//! - at most 5 redirects (`MOVED` + `ASK`) per request.
//!
//! # Idempotency
//!
//! A server error reply means the command did not run (`MOVED`, `TRYAGAIN`, ...), so it may be
//! resent whatever the command. A lost connection *before* the request was written, likewise.
//! A lost connection *after* it was written, or a response timeout, leaves the outcome unknown:
//! only [`Idempotency::Idempotent`] commands are resent then, the others fail with
//! [`FailReason::MaybeExecuted`].
//!
//! # `MOVED` loops
//!
//! During a failover or a botched migration two nodes can point a slot at each other. The
//! budget remembers, per slot, every node that redirected the request or was named by a
//! redirect. A redirect to a node already in that list is a *revisit*; more than
//! `max_moved_revisits` revisits (default 1, which tolerates one legitimate flip back), or more
//! than `max_redirects` redirects, stops the immediate following: the request then waits at the
//! capped backoff with a topology refresh for the nodes to agree (they do within milliseconds
//! when a `SETSLOT NODE` or a failover is still spreading), and fails with
//! [`FailReason::RedirectLoop`] / [`FailReason::TooManyRedirects`] only when its deadline would
//! pass. It never spins.

#[cfg(test)]
mod tests;

use core::time::Duration;
use std::time::Instant;

use thiserror::Error;

use crate::node_addr::NodeAddr;
use crate::rng::Rng;
use crate::server_error::{ErrorAction, ServerError};
use crate::slot::Slot;

/// Whether a command may be resent when it is unknown whether it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Idempotency {
    /// Running it twice leaves the same data as running it once (reads, `SET`, `DEL`,
    /// `EXPIRE`). The reply of the second run may differ (`DEL` counts 0).
    Idempotent,
    /// Running it twice may differ from running it once (`INCR`, `LPUSH`, scripts).
    NonIdempotent,
}

/// How a backoff wait is randomised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// Uniform in `0..=cap`: the widest spread, may retry at once.
    Full,
    /// Uniform in `cap/2..=cap`: spread out, yet never immediate.
    Equal,
}

/// `"full"` or `"equal"` (feature `serde`).
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Jitter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::config::de::from_str(d, |s| match s {
            "full" => Ok(Self::Full),
            "equal" => Ok(Self::Equal),
            other => Err(format!("{other:?} is not a jitter: use \"full\" or \"equal\"")),
        })
    }
}

/// Retry limits and backoff shape. Build from [`Default`] and adjust, then [`validate`](Self::validate).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct RetryConfig {
    /// Sends per request, the first included. Default 6; at least 1.
    pub max_attempts: u32,
    /// The cap of the first backoff wait. Default 2 ms; more than zero.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::config::de::duration"))]
    pub base_backoff: Duration,
    /// The cap of any backoff wait. Default 128 ms; at least `base_backoff`, at most
    /// [`MAX_BACKOFF_LIMIT`].
    #[cfg_attr(feature = "serde", serde(deserialize_with = "crate::config::de::duration"))]
    pub max_backoff: Duration,
    /// How waits are randomised (`"full"` or `"equal"`). Default [`Jitter::Equal`].
    pub jitter: Jitter,
    /// `MOVED` plus `ASK` redirects followed per request; one more fails it. Default 5.
    pub max_redirects: u32,
    /// Redirects back to a node already seen for the slot, tolerated per request. Default 1.
    pub max_moved_revisits: u32,
}

/// The longest `max_backoff` accepted: a cache never sleeps longer, and a larger value is most
/// likely seconds given where milliseconds were meant.
pub const MAX_BACKOFF_LIMIT: Duration = Duration::from_secs(10);

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(128),
            jitter: Jitter::Equal,
            max_redirects: 5,
            max_moved_revisits: 1,
        }
    }
}

/// Why a [`RetryConfig`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RetryConfigError {
    /// `max_attempts` is 0: not even the first send would be allowed.
    #[error("max_attempts must be at least 1")]
    ZeroAttempts,
    /// `base_backoff` is zero.
    #[error("base_backoff must be more than zero")]
    ZeroBaseBackoff,
    /// `max_backoff` is below `base_backoff`.
    #[error("max_backoff ({max:?}) is below base_backoff ({base:?})")]
    MaxBelowBase {
        /// The base.
        base: Duration,
        /// The cap.
        max: Duration,
    },
    /// `max_backoff` is above [`MAX_BACKOFF_LIMIT`].
    #[error("max_backoff ({0:?}) is above {MAX_BACKOFF_LIMIT:?}")]
    MaxTooLong(Duration),
}

impl RetryConfig {
    /// Checks the invariants documented on each field.
    pub fn validate(&self) -> Result<(), RetryConfigError> {
        if self.max_attempts == 0 {
            return Err(RetryConfigError::ZeroAttempts);
        }
        if self.base_backoff.is_zero() {
            return Err(RetryConfigError::ZeroBaseBackoff);
        }
        if self.max_backoff < self.base_backoff {
            return Err(RetryConfigError::MaxBelowBase { base: self.base_backoff, max: self.max_backoff });
        }
        if self.max_backoff > MAX_BACKOFF_LIMIT {
            return Err(RetryConfigError::MaxTooLong(self.max_backoff));
        }
        Ok(())
    }
}

/// The wait before retry number `retry` (1 for the first retry): the cap
/// `min(max_backoff, base_backoff * 2^(retry-1))`, randomised by `cfg.jitter`.
pub fn backoff(retry: u32, cfg: &RetryConfig, rng: &mut Rng) -> Duration {
    let doublings = retry.saturating_sub(1).min(31);
    let cap = cfg.base_backoff.saturating_mul(1 << doublings).min(cfg.max_backoff);
    match cfg.jitter {
        Jitter::Full => rng.duration_up_to(cap),
        Jitter::Equal => {
            let half = cap / 2;
            half + rng.duration_up_to(cap - half)
        }
    }
}

/// When to retry after `attempts_used` sends, or `None` when the attempts are used up or the
/// wait would reach `deadline`. A returned instant is always before `deadline`.
pub fn next_retry_at(
    now: Instant,
    attempts_used: u32,
    deadline: Instant,
    cfg: &RetryConfig,
    rng: &mut Rng,
) -> Option<Instant> {
    if attempts_used >= cfg.max_attempts {
        return None;
    }
    let at = now.checked_add(backoff(attempts_used, cfg, rng))?;
    (at < deadline).then_some(at)
}

/// One request's retry state: attempts, deadline, redirect history. Owned by the caller.
#[derive(Clone, Debug)]
pub struct Budget {
    attempts_used: u32,
    /// Retries that waited for a transient cluster state or for redirects to converge; bounded
    /// by the deadline, not counted against `max_attempts`.
    waits: u32,
    deadline: Instant,
    redirects: u32,
    revisits: u32,
    /// Nodes that redirected the request, or that a redirect named, per slot.
    seen: Vec<(Slot, NodeAddr)>,
}

impl Budget {
    /// The budget of a request whose first send is under way, to finish by `deadline`.
    #[must_use]
    pub const fn new(deadline: Instant) -> Self {
        Self { attempts_used: 1, waits: 0, deadline, redirects: 0, revisits: 0, seen: Vec::new() }
    }

    /// Sends made or granted so far, the first included.
    #[must_use]
    pub const fn attempts_used(&self) -> u32 {
        self.attempts_used
    }

    /// Sends still allowed under `cfg`.
    #[must_use]
    pub const fn attempts_left(&self, cfg: &RetryConfig) -> u32 {
        cfg.max_attempts.saturating_sub(self.attempts_used)
    }

    /// Retries that waited for a transient cluster state (`TRYAGAIN`, `CLUSTERDOWN`, ...) or for
    /// looping redirects to converge: bounded by the deadline, not by `max_attempts`.
    #[must_use]
    pub const fn waits(&self) -> u32 {
        self.waits
    }

    /// The request's deadline.
    #[must_use]
    pub const fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Redirects (`MOVED` and `ASK`) followed so far.
    #[must_use]
    pub const fn redirects(&self) -> u32 {
        self.redirects
    }

    /// Records a redirect of `slot` from `origin` to `target`; fails on too many redirects or
    /// too many revisits.
    fn redirect(
        &mut self,
        slot: Slot,
        origin: &NodeAddr,
        target: &NodeAddr,
        cfg: &RetryConfig,
    ) -> Result<(), FailReason> {
        self.redirects = self.redirects.saturating_add(1);
        if self.redirects > cfg.max_redirects {
            return Err(FailReason::TooManyRedirects { redirects: self.redirects });
        }
        if !self.has_seen(slot, origin) {
            self.seen.push((slot, origin.clone()));
        }
        if self.has_seen(slot, target) {
            self.revisits = self.revisits.saturating_add(1);
            if self.revisits > cfg.max_moved_revisits {
                return Err(FailReason::RedirectLoop { slot });
            }
        } else {
            self.seen.push((slot, target.clone()));
        }
        Ok(())
    }

    fn has_seen(&self, slot: Slot, node: &NodeAddr) -> bool {
        self.seen.iter().any(|(s, n)| *s == slot && n == node)
    }

    /// Grants one more send, if the attempts allow.
    fn take_attempt(&mut self, cfg: &RetryConfig) -> Result<(), FailReason> {
        if self.attempts_used >= cfg.max_attempts {
            return Err(FailReason::AttemptsExhausted { attempts: self.attempts_used });
        }
        self.attempts_used += 1;
        Ok(())
    }
}

/// How an attempt failed.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Failure<'a> {
    /// The node answered with an error.
    Server {
        /// The error.
        error: &'a ServerError,
        /// The node that answered (resolves empty redirect endpoints).
        origin: &'a NodeAddr,
    },
    /// The connection closed or failed.
    ConnectionLost {
        /// Whether the request had been (even partly) written to it.
        written: bool,
    },
    /// No reply within the attempt's response timeout (the request had been written).
    Timeout,
    /// The connection could not be set up for a reason retrying does not fix (a TLS handshake
    /// that refused the certificates or settings): nothing was written.
    Refused,
}

/// Why a request is not retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FailReason {
    /// The server's error is final (see [`ErrorAction::Fail`]).
    #[error("the server's error reply is final")]
    Server,
    /// The connection was refused for a reason retrying does not fix ([`Failure::Refused`]).
    #[error("the connection was refused for a reason retrying does not fix")]
    Refused,
    /// Every allowed send was used.
    #[error("gave up after {attempts} attempts")]
    AttemptsExhausted {
        /// Sends made.
        attempts: u32,
    },
    /// The request's deadline has passed.
    #[error("request deadline passed")]
    DeadlineExceeded,
    /// The next backoff wait would end at or after the deadline.
    #[error("the next retry would be past the request deadline")]
    WouldPassDeadline,
    /// A non-idempotent command was written and its outcome is unknown.
    #[error("a non-idempotent command may have run; not resending it")]
    MaybeExecuted,
    /// More redirects than `max_redirects`.
    #[error("too many redirects ({redirects})")]
    TooManyRedirects {
        /// Redirects seen, the refused one included.
        redirects: u32,
    },
    /// Nodes keep redirecting the slot back and forth.
    #[error("redirect loop for slot {slot}")]
    RedirectLoop {
        /// The slot.
        slot: Slot,
    },
}

/// What to do after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryDecision {
    /// Resend now: to `target` when given (`MOVED`: also patch the slot map), otherwise by the
    /// slot map. `refresh` asks for a topology refresh.
    RetryNow {
        /// Where to send.
        target: Option<NodeAddr>,
        /// Whether to refresh the topology.
        refresh: bool,
    },
    /// Resend at `at` (always before the deadline), routing by the slot map then.
    RetryAt {
        /// When.
        at: Instant,
        /// Whether to refresh the topology meanwhile.
        refresh: bool,
    },
    /// Send `ASKING` and the command, once, to this node.
    Ask(NodeAddr),
    /// Give up.
    Fail(FailReason),
}

/// Decides what to do after `failure`, recording the retry in `budget` when it grants one.
///
/// `READONLY` ([`ErrorAction::RefreshAndRetry`]) is retried after a backoff with a refresh,
/// not at once: resending before the refresh lands would reach the same replica.
pub fn decide(
    budget: &mut Budget,
    failure: Failure<'_>,
    idempotency: Idempotency,
    now: Instant,
    cfg: &RetryConfig,
    rng: &mut Rng,
) -> RetryDecision {
    match decide_inner(budget, failure, idempotency, now, cfg, rng) {
        Ok(decision) => decision,
        Err(reason) => RetryDecision::Fail(reason),
    }
}

/// Redirects that go round in a loop mean the nodes disagree about a slot for a moment (a
/// `SETSLOT NODE` still spreading, a failover being announced): following them again at once
/// would spin. Wait at the capped backoff with a topology refresh instead, while the deadline
/// allows, and fail with `looping` when it does not.
fn converge(
    budget: &mut Budget,
    looping: FailReason,
    now: Instant,
    cfg: &RetryConfig,
    rng: &mut Rng,
) -> Result<RetryDecision, FailReason> {
    let wait = backoff(budget.waits.saturating_add(1).min(cfg.max_attempts), cfg, rng);
    let at = now.checked_add(wait).filter(|at| *at < budget.deadline).ok_or(looping)?;
    budget.waits = budget.waits.saturating_add(1);
    Ok(RetryDecision::RetryAt { at, refresh: true })
}

fn decide_inner(
    budget: &mut Budget,
    failure: Failure<'_>,
    idempotency: Idempotency,
    now: Instant,
    cfg: &RetryConfig,
    rng: &mut Rng,
) -> Result<RetryDecision, FailReason> {
    if now >= budget.deadline {
        return Err(FailReason::DeadlineExceeded);
    }
    let refresh = match failure {
        Failure::Server { error, origin } => match error.action() {
            ErrorAction::Redirect { slot, endpoint } => {
                let target = endpoint.resolve(origin);
                if let Err(looping) = budget.redirect(slot, origin, &target, cfg) {
                    return converge(budget, looping, now, cfg, rng);
                }
                budget.take_attempt(cfg)?;
                return Ok(RetryDecision::RetryNow { target: Some(target), refresh: true });
            }
            ErrorAction::Ask { slot, endpoint } => {
                let target = endpoint.resolve(origin);
                if let Err(looping) = budget.redirect(slot, origin, &target, cfg) {
                    return converge(budget, looping, now, cfg, rng);
                }
                budget.take_attempt(cfg)?;
                return Ok(RetryDecision::Ask(target));
            }
            ErrorAction::RetryAfterBackoff { refresh } => {
                // A cluster state that clears by itself (TRYAGAIN during a migration,
                // CLUSTERDOWN/MASTERDOWN during a failover, LOADING): the server did not run the
                // command, so retrying is always safe; retry at the capped backoff until the
                // deadline instead of spending the attempt budget in milliseconds.
                let wait = backoff(budget.waits.saturating_add(1).min(cfg.max_attempts), cfg, rng);
                let at = now
                    .checked_add(wait)
                    .filter(|at| *at < budget.deadline)
                    .ok_or(FailReason::WouldPassDeadline)?;
                budget.waits = budget.waits.saturating_add(1);
                return Ok(RetryDecision::RetryAt { at, refresh });
            }
            ErrorAction::RefreshAndRetry => true,
            _ => return Err(FailReason::Server),
        },
        Failure::ConnectionLost { written: false } => true,
        Failure::ConnectionLost { written: true } | Failure::Timeout
            if idempotency == Idempotency::NonIdempotent =>
        {
            return Err(FailReason::MaybeExecuted);
        }
        Failure::ConnectionLost { written: true } => true,
        Failure::Timeout => false,
        Failure::Refused => return Err(FailReason::Refused),
    };
    if budget.attempts_used >= cfg.max_attempts {
        return Err(FailReason::AttemptsExhausted { attempts: budget.attempts_used });
    }
    let at = next_retry_at(now, budget.attempts_used, budget.deadline, cfg, rng)
        .ok_or(FailReason::WouldPassDeadline)?;
    budget.take_attempt(cfg)?;
    Ok(RetryDecision::RetryAt { at, refresh })
}
