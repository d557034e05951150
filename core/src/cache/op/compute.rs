//! The compute family: an optimistic read-modify-write.
//!
//! Each attempt reads the entry on the primary (with its tags' tokens), asks the caller's
//! function what to do ([`Step::Call`] with the fresh entry, or `None`),
//! and applies the decision with a compare-and-set ([`Cas`]). A conflict waits a jittered,
//! growing pause (drawn from the context's entropy) and tries again, up to the attempts
//! allowed, within the deadline. The value written keeps the tags of the entry it replaces,
//! stale or not, with their current tokens ([`ComputeOutcome::kept_tags`]): a stale entry's
//! value is gone (the function sees `None`), its tags are not, and the new value stays
//! within reach of their invalidations. An entry already deleted (by an invalidation's
//! clean-up, or expired) has no tags left to keep: the value is then untagged.
//!
//! The tags are registered (`TAG_WRITE`) **before** the compare-and-set, so nothing can fail
//! once the write applied: an error means the write did not happen, except when the
//! compare-and-set's own reply is lost (a timeout, a dropped connection), which nobody can
//! tell apart from a write that did not run.

use core::time::Duration;
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::keys::EncodedKey;

use super::cas::{Cas, CasMachine, Change};
use super::child::{self, Turn};
use super::deadline::Deadline;
use super::machine::{Ctx, Entropy, Input, Machine, Step, unexpected_input};
use super::read_fresh::{Found, ReadFresh, ReadFreshMachine, ReadMode};

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

/// Test-only variants of real bugs, to show that the simulation catches them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Variant {
    /// As documented.
    #[default]
    Correct,
    /// The old bug: a value replacing a stale entry is written untagged (the tags it keeps,
    /// reported in the outcome, are not stored), so it escapes their invalidations.
    StaleUntagged,
    /// The old bug: the compare-and-set goes first and the tags are registered after it, so a
    /// registration that fails fails the call although the write happened (a caller that
    /// retries applies its function twice).
    RegisterAfterCas,
}

/// The outcome, with how many stale entries the reads met.
#[derive(Debug, PartialEq, Eq)]
pub struct ComputeOutcome<P> {
    /// What was done.
    pub computed: Computed<P>,
    /// The tags the written value keeps (the replaced entry's, fresh or stale); empty when
    /// nothing was written.
    pub kept_tags: Vec<Bytes>,
    /// Attempts made.
    pub attempts: u32,
    /// Reads that met an entry a tag invalidation had made stale.
    pub stale: u64,
}

/// The longest pause between attempts.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// The pause after attempt `attempt` (from 1) conflicted: uniform in `[0, cap]` where the cap
/// doubles from 2 ms up to 50 ms, in microseconds.
pub fn conflict_pause(attempt: u32, entropy: &mut dyn Entropy) -> Duration {
    let cap_us = (1u64 << attempt.clamp(1, 6)).saturating_mul(1000).min(MAX_PAUSE.as_micros() as u64);
    Duration::from_micros(entropy.next_u64() % (cap_us + 1))
}

enum State<P> {
    Read(ReadFreshMachine),
    Calling(Found),
    Write(CasMachine, Computed<P>, Vec<Bytes>),
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
    variant: Variant,
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
            variant: Variant::Correct,
        }
    }

    /// The same operation with a test-only bug variant.
    #[doc(hidden)]
    #[must_use]
    pub fn with_variant(mut self, variant: Variant) -> Self {
        self.variant = variant;
        self
    }

    fn read(&mut self) -> State<P> {
        self.attempt += 1;
        let m =
            ReadFresh::machine(self.scope.clone(), vec![self.key.clone()], ReadMode::PRIMARY, self.deadline);
        State::Read(m)
    }

    fn done(&self, computed: Computed<P>, kept_tags: Vec<Bytes>) -> Step<ComputeOutcome<P>, Apply> {
        Step::Done(Ok(ComputeOutcome { computed, kept_tags, attempts: self.attempt, stale: self.stale }))
    }

    /// Starts the write of `decision`, or ends.
    fn decide(
        &self,
        found: &Found,
        decision: Decision<P>,
    ) -> Result<Result<State<P>, Computed<P>>, CacheError> {
        let (change, then, kept) = match decision {
            Decision::Keep(p) => return Ok(Err(Computed::Kept(p))),
            Decision::Delete if found.stored.is_none() => return Ok(Err(Computed::Deleted)),
            Decision::Delete => (Change::Delete, Computed::Deleted, Vec::new()),
            Decision::Set { entry, ttl_ms, value } => {
                // The tags of the entry replaced, stale or not (a stale entry's value is gone,
                // its tags are not: dropping them would let the new value escape them).
                let kept: Vec<Bytes> =
                    found.entry.iter().flat_map(|e| e.tags.iter().map(|t| t.tag.clone())).collect();
                let tags = match self.variant {
                    Variant::StaleUntagged if !found.fresh => Vec::new(),
                    _ => kept.clone(),
                };
                let expect = found.fresh_entry().map(|e| e.tags.clone());
                (Change::Set { entry, ttl_ms, tags, expect }, Computed::Written(value), kept)
            }
        };
        let (scope, key, read) = (self.scope.clone(), self.key.clone(), found.stored.as_ref());
        let m = if self.variant == Variant::RegisterAfterCas {
            Cas::registering_after(scope, key, read, change, self.deadline)?
        } else {
            Cas::machine(scope, key, read, change, self.deadline)?
        };
        Ok(Ok(State::Write(m, then, kept)))
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
                        Ok(Err(computed)) => return self.done(computed, Vec::new()),
                        Ok(Ok(state)) => {
                            self.state = state;
                            input = Input::Start;
                        }
                    }
                }
                (State::Write(mut m, then, kept), i) => match child::resume(&mut m, cx, i) {
                    Turn::Pass(step) => {
                        self.state = State::Write(m, then, kept);
                        return step;
                    }
                    Turn::Over(Err(e)) => return Step::Done(Err(e)),
                    Turn::Over(Ok(true)) => return self.done(then, kept),
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;

    use super::*;
    use crate::cache::op::testing::{
        Counting, Hand, bulk, key, pipeline, scope, sleep, stored, token_reply, words,
    };
    use crate::resp::Value;

    fn machine(max: u32) -> Hand<ComputeEntry<u32>> {
        #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
        let d = Deadline::new(Instant::now(), "compute", Duration::from_secs(1));
        Hand::new(ComputeEntry::new(scope(), key(), max, d))
    }

    fn set(v: u32) -> Input<Result<Decision<u32>, CacheError>> {
        let entry = Entry::plain(Bytes::from(v.to_string()));
        Input::Answer(Ok(Decision::Set { entry, ttl_ms: Some(1000), value: v }))
    }

    /// Reads the key on the primary, and answers that it is absent: the machine calls.
    fn read_absent(m: &mut Hand<ComputeEntry<u32>>, step: &Step<ComputeOutcome<u32>, Apply>) {
        let read = pipeline(step);
        assert_eq!(words(&read[0]), ["GET", "ns:k"]);
        let call = m.reply(vec![Ok(Value::Nil)]);
        assert!(matches!(call, Step::Call(Apply { current: None })), "{call:?}");
    }

    /// What the test entropy draws after `skip` draws of 8 bytes.
    fn draw(skip: u8) -> u64 {
        let mut e = Counting(skip * 8);
        e.next_u64()
    }

    #[test]
    fn absent_then_written() {
        let mut m = machine(3);
        let step = m.start();
        read_absent(&mut m, &step);
        let cas = pipeline(&m.resume(set(7)));
        assert_eq!(words(&cas[0])[0], "EVALSHA");
        assert_eq!(words(&cas[0])[3..6], ["ns:k", "", "set"], "expects the key absent");
        let done = m.reply(vec![Ok(Value::Int(1))]);
        let Step::Done(Ok(out)) = done else { panic!("{done:?}") };
        let want =
            ComputeOutcome { computed: Computed::Written(7), kept_tags: vec![], attempts: 1, stale: 0 };
        assert_eq!(out, want);
    }

    #[test]
    fn keep_and_delete_of_absent_send_nothing() {
        let mut m = machine(3);
        let step = m.start();
        read_absent(&mut m, &step);
        let done = m.resume(Input::Answer(Ok(Decision::Keep(5))));
        assert!(
            matches!(done, Step::Done(Ok(ComputeOutcome { computed: Computed::Kept(5), .. }))),
            "{done:?}"
        );
        let mut m = machine(3);
        let step = m.start();
        read_absent(&mut m, &step);
        let done = m.resume(Input::Answer(Ok(Decision::Delete)));
        assert!(
            matches!(done, Step::Done(Ok(ComputeOutcome { computed: Computed::Deleted, .. }))),
            "{done:?}"
        );
    }

    /// A conflict sleeps a jittered pause drawn from the entropy, within the attempt's cap
    /// (2 ms, then 4 ms), and reads again.
    #[test]
    fn conflicts_retry_after_jittered_pauses() {
        let mut m = machine(3);
        let step = m.start();
        read_absent(&mut m, &step);
        let _cas = pipeline(&m.resume(set(1)));
        let at = sleep(&m.reply(vec![Ok(Value::Int(0))]));
        let pause = at - m.now;
        assert_eq!(pause, Duration::from_micros(draw(0) % 2001));
        assert!(pause <= Duration::from_millis(2));
        m.now = at;
        let step = m.resume(Input::Woke);
        read_absent(&mut m, &step);
        let _cas = pipeline(&m.resume(set(2)));
        let at = sleep(&m.reply(vec![Ok(Value::Int(0))]));
        assert_eq!(at - m.now, Duration::from_micros(draw(1) % 4001));
        m.now = at;
        let step = m.resume(Input::Woke);
        read_absent(&mut m, &step);
        let _cas = pipeline(&m.resume(set(3)));
        let done = m.reply(vec![Ok(Value::Int(1))]);
        let Step::Done(Ok(out)) = done else { panic!("{done:?}") };
        assert_eq!((out.computed, out.attempts), (Computed::Written(3), 3));
    }

    #[test]
    fn retries_exhausted() {
        let mut m = machine(2);
        let step = m.start();
        read_absent(&mut m, &step);
        let _cas = pipeline(&m.resume(set(1)));
        m.now = sleep(&m.reply(vec![Ok(Value::Int(0))]));
        let step = m.resume(Input::Woke);
        read_absent(&mut m, &step);
        let _cas = pipeline(&m.resume(set(2)));
        let done = m.reply(vec![Ok(Value::Int(0))]);
        assert!(matches!(done, Step::Done(Err(CacheError::ComputeConflict { attempts: 2 }))), "{done:?}");
    }

    /// No time left for the pause: the operation's timeout, not a sleep past the deadline.
    #[test]
    fn timeout_instead_of_a_pause_past_the_deadline() {
        let mut m = machine(5);
        let step = m.start();
        read_absent(&mut m, &step);
        let _cas = pipeline(&m.resume(set(1)));
        m.now += Duration::from_secs(1);
        let done = m.reply(vec![Ok(Value::Int(0))]);
        assert!(matches!(done, Step::Done(Err(CacheError::Timeout { op: "compute", .. }))), "{done:?}");
    }

    /// Bug fix: a stale entry's tags are kept (registered first, with their current token),
    /// not dropped.
    #[test]
    fn a_stale_entry_keeps_its_tags() {
        let mut m = machine(3);
        let _read = pipeline(&m.start());
        let old = stored(b"old", &[(b"t", b"a")]);
        let tokens = pipeline(&m.reply(vec![Ok(Value::Bulk(old.clone()))]));
        assert_eq!(words(&tokens[0])[0], "ZRANGEBYSCORE");
        let call = m.reply(vec![Ok(token_reply(b"b"))]);
        assert!(matches!(call, Step::Call(Apply { current: None })), "stale is absent: {call:?}");
        let tag_write = pipeline(&m.resume(set(1)));
        assert_eq!(words(&tag_write[0])[0], "EVALSHA", "the tag first");
        let cas = pipeline(&m.reply(vec![Ok(bulk(b"b"))]));
        let args = words(&cas[0]);
        assert_eq!(args[4], crate::cache::scripts::sha1_hex(&old), "expects the stale bytes");
        let written = Entry::decode(&cas[0].args()[6]).expect("an envelope");
        assert_eq!(written.tags[0].tag.as_ref(), b"t");
        assert_eq!(written.tags[0].token.as_ref(), b"b", "the current token");
        let done = m.reply(vec![Ok(Value::Int(1))]);
        let Step::Done(Ok(out)) = done else { panic!("{done:?}") };
        assert_eq!((out.stale, out.kept_tags), (1, vec![Bytes::from_static(b"t")]));
    }

    /// The old bug, as a test-only variant: a stale entry's tags are reported kept but not
    /// written (no tag round, an untagged envelope).
    #[test]
    fn the_stale_untagged_variant_drops_the_tags() {
        let mut m = machine(3);
        m.machine =
            ComputeEntry::new(scope(), key(), 3, m.machine.deadline).with_variant(Variant::StaleUntagged);
        let _read = pipeline(&m.start());
        let _tokens = pipeline(&m.reply(vec![Ok(Value::Bulk(stored(b"old", &[(b"t", b"a")])))]));
        let _call = m.reply(vec![Ok(token_reply(b"b"))]);
        let cas = pipeline(&m.resume(set(1)));
        assert_eq!(words(&cas[0])[5], "set", "straight to the compare-and-set");
        let written = Entry::decode(&cas[0].args()[6]).expect("an envelope");
        assert!(written.tags.is_empty());
        let Step::Done(Ok(out)) = m.reply(vec![Ok(Value::Int(1))]) else { panic!() };
        assert_eq!(out.kept_tags, vec![Bytes::from_static(b"t")], "reported, not written");
    }

    /// The old bug, as a test-only variant: the compare-and-set goes first (with the tokens the
    /// entry carried), and a tag registration failing after it fails the call although the
    /// write happened. The documented order registers first (see the test above).
    #[test]
    fn the_register_after_variant_errs_after_a_write() {
        let mut m = machine(3);
        m.machine =
            ComputeEntry::new(scope(), key(), 3, m.machine.deadline).with_variant(Variant::RegisterAfterCas);
        let _read = pipeline(&m.start());
        let _tokens = pipeline(&m.reply(vec![Ok(Value::Bulk(stored(b"old", &[(b"t", b"a")])))]));
        let _call = m.reply(vec![Ok(token_reply(b"a"))]);
        let cas = pipeline(&m.resume(set(1)));
        assert_eq!(words(&cas[0])[5], "set", "the write first");
        let written = Entry::decode(&cas[0].args()[6]).expect("an envelope");
        assert_eq!(written.tags[0].token.as_ref(), b"a", "the token the entry carried");
        let tag_write = pipeline(&m.reply(vec![Ok(Value::Int(1))]));
        assert_eq!(words(&tag_write[0])[0], "EVALSHA");
        let done = m.reply(vec![Err(crate::cache::op::testing::server_error("ERR oom"))]);
        assert!(
            matches!(done, Step::Done(Err(CacheError::Request(_)))),
            "an error after the write: {done:?}"
        );
    }

    /// Bug fix: a tag registration that fails comes before the compare-and-set, so an error
    /// never follows an applied change.
    #[test]
    fn a_failed_tag_registration_applies_nothing() {
        let mut m = machine(3);
        let _read = pipeline(&m.start());
        let tokens = pipeline(&m.reply(vec![Ok(Value::Bulk(stored(b"old", &[(b"t", b"a")])))]));
        assert_eq!(tokens.len(), 1);
        let call = m.reply(vec![Ok(token_reply(b"a"))]);
        assert!(matches!(call, Step::Call(Apply { current: Some(_) })), "fresh: {call:?}");
        let _tag_write = pipeline(&m.resume(set(1)));
        let done = m.reply(vec![Err(crate::cache::op::testing::server_error("ERR oom"))]);
        assert!(matches!(done, Step::Done(Err(CacheError::Request(_)))), "{done:?}");
    }

    /// The entry read was fresh, but its tag's token changed before the write: a conflict
    /// (writing the old token would store a value that is already a miss).
    #[test]
    fn a_changed_token_is_a_conflict() {
        let mut m = machine(3);
        let _read = pipeline(&m.start());
        let _tokens = pipeline(&m.reply(vec![Ok(Value::Bulk(stored(b"old", &[(b"t", b"a")])))]));
        let _call = m.reply(vec![Ok(token_reply(b"a"))]);
        let _tag_write = pipeline(&m.resume(set(1)));
        let step = m.reply(vec![Ok(bulk(b"c"))]);
        let _ = sleep(&step);
    }

    #[test]
    fn the_function_s_error_ends_it() {
        let mut m = machine(3);
        let step = m.start();
        read_absent(&mut m, &step);
        let done = m.resume(Input::Answer(Err(CacheError::Codec("no".into()))));
        assert!(matches!(done, Step::Done(Err(CacheError::Codec(_)))), "{done:?}");
    }
}
