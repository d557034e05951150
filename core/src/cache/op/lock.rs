//! The load lock: one process loads a key while the others wait for its value.
//!
//! Acquire: `SET lock token NX PX hold`, with a fresh token. Taken: the load goes on. Held by
//! another: read the key (the holder may have stored it); found, the load is over; otherwise
//! wait (5 ms, doubling up to 100 ms) and try again, within the deadline. Release: `UNLOCK`
//! deletes the lock only if it still holds this token (it may have expired and been taken).

use core::time::Duration;
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::cache::plan;
use crate::cache::scripts;
use crate::client::Cmd;
use crate::keys::EncodedKey;

use super::child::{self, Once, OnceMachine, Turn};
use super::deadline::Deadline;
use super::exchange::Command;
use super::machine::{Ctx, Input, Machine, Step, unexpected_input};
use super::read_fresh::{ReadFresh, ReadFreshMachine, ReadMode};
use super::scope::{Scope, token};

/// The first wait for a lock held by another.
pub const FIRST_POLL: Duration = Duration::from_millis(5);
/// The longest wait between two tries.
pub const MAX_POLL: Duration = Duration::from_millis(100);

/// The lock key for loading `key`: in `key`'s slot when its hashed part allows it.
#[must_use]
pub fn lock_key(key: &EncodedKey) -> EncodedKey {
    let tag = crate::slot::hash_tag(key.bytes());
    let k = if tag.contains(&b'}') {
        [b"lock:".as_slice(), key.bytes()].concat()
    } else {
        [b"lock:{".as_slice(), tag, b"}"].concat()
    };
    EncodedKey::new(Bytes::from(k))
}

/// How an acquisition ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Acquired {
    /// The lock is ours, with this token.
    Locked(Bytes),
    /// Another process stored the value meanwhile (a fresh entry).
    Found(Entry),
}

#[derive(Debug)]
enum State {
    Set(OnceMachine),
    Peek(ReadFreshMachine),
    Pause,
    Over,
}

/// Taking the load lock of a key.
#[derive(Debug)]
pub struct AcquireLock {
    scope: Arc<Scope>,
    key: EncodedKey,
    lock: EncodedKey,
    token: Bytes,
    hold_ms: u64,
    deadline: Deadline,
    /// The budget of each read of the key.
    read_budget: Duration,
    pause: Duration,
    /// Reads that met a stale entry.
    stale: u64,
    state: State,
}

impl AcquireLock {
    /// Takes the lock of `key` for `hold`, waiting at most `deadline`; each read of the key
    /// has `read_budget`.
    #[must_use]
    pub fn new(
        scope: Arc<Scope>,
        key: EncodedKey,
        hold: Duration,
        deadline: Deadline,
        read_budget: Duration,
    ) -> Self {
        let hold_ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX).max(1);
        Self {
            lock: lock_key(&key),
            scope,
            key,
            token: Bytes::new(),
            hold_ms,
            deadline,
            read_budget,
            pause: FIRST_POLL,
            stale: 0,
            state: State::Over,
        }
    }

    /// Reads that met an entry a tag invalidation had made stale.
    #[must_use]
    pub const fn stale(&self) -> u64 {
        self.stale
    }

    fn set(&self) -> State {
        let cmd = Cmd::new("SET")
            .arg(self.lock.bytes().clone())
            .arg(self.token.clone())
            .arg("NX")
            .arg("PX")
            .arg(self.hold_ms)
            .with_slot(self.lock.slot());
        State::Set(Once::machine(vec![Command::from(cmd)], self.deadline))
    }
}

impl Machine for AcquireLock {
    type Output = Acquired;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input<Self::Answer>) -> Step<Acquired> {
        let mut input = input;
        loop {
            match (std::mem::replace(&mut self.state, State::Over), input) {
                (State::Over, Input::Start) => {
                    self.token = token(cx.entropy);
                    self.state = self.set();
                    input = Input::Start;
                }
                (State::Pause, Input::Woke) => {
                    self.pause = (self.pause * 2).min(MAX_POLL);
                    self.state = self.set();
                    input = Input::Start;
                }
                (State::Set(mut m), i) => match child::resume(&mut m, cx, i) {
                    Turn::Pass(step) => {
                        self.state = State::Set(m);
                        return step;
                    }
                    Turn::Over(Err(e)) => return Step::Done(Err(e)),
                    Turn::Over(Ok(results)) => {
                        let r = results.into_iter().next().unwrap_or(Ok(crate::resp::Value::Nil));
                        match r.map_err(CacheError::Request) {
                            Err(e) => return Step::Done(Err(e)),
                            Ok(v) if !v.is_nil() => {
                                let locked =
                                    plan::read_ok("SET", &v).map(|()| Acquired::Locked(self.token.clone()));
                                return Step::Done(locked);
                            }
                            Ok(_) => {}
                        }
                        let budget = Deadline::new(cx.now, "get", self.read_budget);
                        let peek = ReadFresh::machine(
                            self.scope.clone(),
                            vec![self.key.clone()],
                            ReadMode::SERVED,
                            budget,
                        );
                        self.state = State::Peek(peek);
                        input = Input::Start;
                    }
                },
                (State::Peek(mut m), i) => match child::resume(&mut m, cx, i) {
                    Turn::Pass(step) => {
                        self.state = State::Peek(m);
                        return step;
                    }
                    Turn::Over(Err(e)) => return Step::Done(Err(e)),
                    Turn::Over(Ok(found)) => {
                        let found = found.into_iter().next().unwrap_or_default();
                        self.stale += u64::from(found.is_stale());
                        if let Some(entry) = found.into_fresh() {
                            return Step::Done(Ok(Acquired::Found(entry)));
                        }
                        return match self.deadline.remaining(cx.now) {
                            Ok(left) if left > self.pause => {
                                self.state = State::Pause;
                                Step::Sleep(cx.now + self.pause)
                            }
                            _ => Step::Done(Err(self.deadline.timeout_error())),
                        };
                    }
                },
                (state, i) => {
                    self.state = state;
                    return unexpected_input("load_lock", &i);
                }
            }
        }
    }
}

/// The release of a lock taken with `token`: its outcome is whether it was still held.
#[must_use]
pub fn unlock(key: &EncodedKey, token: Bytes, deadline: Deadline) -> OnceMachine {
    let lk = lock_key(key);
    let cmd = plan::script(&scripts::UNLOCK, &lk, vec![token], true, true);
    Once::machine(vec![Command::script(cmd, &scripts::UNLOCK)], deadline)
}

/// Reads the release's results.
///
/// # Errors
/// The `UNLOCK` failed (the lock expires by itself).
pub fn read_unlock(results: super::exchange::Results) -> Result<bool, CacheError> {
    let r = results
        .into_iter()
        .next()
        .ok_or(CacheError::UnexpectedReply { command: "unlock", got: "no reply".into() })?;
    Ok(plan::read_int("unlock", &r.map_err(CacheError::Request)?)? == 1)
}
