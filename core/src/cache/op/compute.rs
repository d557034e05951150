//! The compute family: an optimistic read-modify-write.
//!
//! Each attempt reads the entry on the primary (with its tags' tokens), asks the caller's
//! function what to do ([`Step::Call`](super::Step::Call) with the fresh entry, or `None`),
//! and applies the decision with a compare-and-set ([`Cas`]). A conflict waits a jittered,
//! growing pause (drawn from the context's entropy) and tries again, up to the attempts
//! allowed, within the deadline. The value written keeps the tags of the entry it replaces,
//! stale or not, with their current tokens.

use core::time::Duration;
use std::sync::Arc;

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::keys::EncodedKey;

use super::cas::{Cas, CasMachine, Change};
use super::child::{self, Turn};
use super::deadline::Deadline;
use super::fresh::{Found, ReadFresh, ReadFreshMachine, ReadMode};
use super::machine::{Ctx, Entropy, Input, Machine, Step, unexpected_input};

/// What the caller's function decided; `P` is what the caller keeps of it (its typed value),
/// handed back in the outcome.
#[derive(Debug)]
pub enum Decision<P> {
    /// Leave the entry as it is.
    Keep(P),
    /// Delete the entry.
    Delete,
    /// Store this envelope (without tags: the entry's are kept).
    Set {
        /// The new envelope.
        entry: Entry,
        /// Its TTL in ms (`None`: no expiry).
        ttl_ms: Option<u64>,
        /// What the caller keeps.
        value: P,
    },
}

/// The call: run the function on the entry read (`None`: absent or stale).
#[derive(Debug)]
pub struct Apply {
    /// The fresh entry read.
    pub current: Option<Entry>,
}

/// What the operation did.
#[derive(Debug, PartialEq, Eq)]
pub enum Computed<P> {
    /// Nothing was written.
    Kept(P),
    /// The entry was deleted (or was already absent).
    Deleted,
    /// The new value was written.
    Written(P),
}

/// The outcome, with how many stale entries the reads met.
#[derive(Debug, PartialEq, Eq)]
pub struct ComputeOutcome<P> {
    /// What was done.
    pub computed: Computed<P>,
    /// Attempts made.
    pub attempts: u32,
    /// Reads that met an entry a tag invalidation had made stale.
    pub stale: u64,
}

/// The longest pause between attempts.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// The pause after attempt `attempt` (from 1) conflicted: uniform in `[0, cap]` where the cap
/// doubles from 2 ms up to [`MAX_PAUSE`], in microseconds.
pub fn conflict_pause(attempt: u32, entropy: &mut dyn Entropy) -> Duration {
    let cap_us = (1u64 << attempt.clamp(1, 6)).saturating_mul(1000).min(MAX_PAUSE.as_micros() as u64);
    Duration::from_micros(entropy.next_u64() % (cap_us + 1))
}

enum State<P> {
    Read(ReadFreshMachine),
    Calling(Found),
    Write(CasMachine, Computed<P>),
    Pause,
    Over,
}

/// The compute operation.
pub struct ComputeEntry<P> {
    scope: Arc<Scope>,
    key: EncodedKey,
    deadline: Deadline,
    max_attempts: u32,
    attempt: u32,
    stale: u64,
    state: State<P>,
}

use super::scope::Scope;

impl<P> core::fmt::Debug for ComputeEntry<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ComputeEntry")
            .field("key", &self.key)
            .field("attempt", &self.attempt)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl<P> ComputeEntry<P> {
    /// Computes `key` of `scope`'s namespace, in at most `max_attempts` attempts (at least one).
    #[must_use]
    pub fn new(scope: Arc<Scope>, key: EncodedKey, max_attempts: u32, deadline: Deadline) -> Self {
        Self {
            scope,
            key,
            deadline,
            max_attempts: max_attempts.max(1),
            attempt: 0,
            stale: 0,
            state: State::Over,
        }
    }

    fn read(&mut self) -> State<P> {
        self.attempt += 1;
        let m =
            ReadFresh::machine(self.scope.clone(), vec![self.key.clone()], ReadMode::PRIMARY, self.deadline);
        State::Read(m)
    }

    fn done(&self, computed: Computed<P>) -> Step<ComputeOutcome<P>, Apply> {
        Step::Done(Ok(ComputeOutcome { computed, attempts: self.attempt, stale: self.stale }))
    }

    /// Starts the write of `decision`, or ends.
    fn decide(
        &self,
        found: &Found,
        decision: Decision<P>,
    ) -> Result<Result<State<P>, Computed<P>>, CacheError> {
        let (change, then) = match decision {
            Decision::Keep(p) => return Ok(Err(Computed::Kept(p))),
            Decision::Delete if found.stored.is_none() => return Ok(Err(Computed::Deleted)),
            Decision::Delete => (Change::Delete, Computed::Deleted),
            Decision::Set { entry, ttl_ms, value } => {
                // The tags of the entry replaced, stale or not (a stale entry's value is gone,
                // its tags are not: dropping them would let the new value escape them).
                let tags = found.entry.iter().flat_map(|e| e.tags.iter().map(|t| t.tag.clone())).collect();
                let expect = found.fresh_entry().map(|e| e.tags.clone());
                (Change::Set { entry, ttl_ms, tags, expect }, Computed::Written(value))
            }
        };
        let m =
            Cas::machine(self.scope.clone(), self.key.clone(), found.stored.as_ref(), change, self.deadline)?;
        Ok(Ok(State::Write(m, then)))
    }

    /// After a conflict: pause and try again, or give up.
    fn conflict(&mut self, cx: &mut Ctx<'_>) -> Step<ComputeOutcome<P>, Apply> {
        if self.attempt >= self.max_attempts {
            return Step::Done(Err(CacheError::ComputeConflict { attempts: self.max_attempts }));
        }
        let pause = conflict_pause(self.attempt, cx.entropy);
        match self.deadline.remaining(cx.now) {
            Ok(left) if left > pause => {
                self.state = State::Pause;
                Step::Sleep(cx.now + pause)
            }
            _ => Step::Done(Err(self.deadline.timeout_error())),
        }
    }
}

impl<P> Machine for ComputeEntry<P> {
    type Output = ComputeOutcome<P>;
    type Call = Apply;
    type Answer = Result<Decision<P>, CacheError>;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input<Self::Answer>) -> Step<ComputeOutcome<P>, Apply> {
        let mut input = input;
        loop {
            match (std::mem::replace(&mut self.state, State::Over), input) {
                (State::Over, Input::Start) | (State::Pause, Input::Woke) => {
                    self.state = self.read();
                    input = Input::Start;
                }
                (State::Read(mut m), i) => match child::resume(&mut m, cx, i) {
                    Turn::Pass(step) => {
                        self.state = State::Read(m);
                        return step;
                    }
                    Turn::Over(Err(e)) => return Step::Done(Err(e)),
                    Turn::Over(Ok(mut found)) => {
                        let found = found.pop().unwrap_or_default();
                        self.stale += u64::from(found.is_stale());
                        let current = found.fresh_entry().cloned();
                        self.state = State::Calling(found);
                        return Step::Call(Apply { current });
                    }
                },
                (State::Calling(found), Input::Answer(answer)) => {
                    match answer.and_then(|d| self.decide(&found, d)) {
                        Err(e) => return Step::Done(Err(e)),
                        Ok(Err(computed)) => return self.done(computed),
                        Ok(Ok(state)) => {
                            self.state = state;
                            input = Input::Start;
                        }
                    }
                }
                (State::Write(mut m, then), i) => match child::resume(&mut m, cx, i) {
                    Turn::Pass(step) => {
                        self.state = State::Write(m, then);
                        return step;
                    }
                    Turn::Over(Err(e)) => return Step::Done(Err(e)),
                    Turn::Over(Ok(true)) => return self.done(then),
                    Turn::Over(Ok(false)) => return self.conflict(cx),
                },
                (state, i) => {
                    self.state = state;
                    return unexpected_input("compute", &i);
                }
            }
        }
    }
}
