//! The shape every cache operation takes: a step machine that asks for requests, sleeps and
//! calls, and takes their results, the time and randomness back as inputs.
//!
//! A driver (the async layer, or the deterministic simulation) runs any [`Machine`] the same
//! way:
//!
//! 1. call [`Machine::resume`] with [`Input::Start`];
//! 2. do what the returned [`Step`] asks: send every request of [`Step::Send`] (concurrently)
//!    and resume with [`Input::Replies`] in the same order; sleep until the instant of
//!    [`Step::Sleep`] and resume with [`Input::Woke`]; perform the machine's [`Step::Call`]
//!    (user code such as a loader) and resume with [`Input::Answer`];
//! 3. stop at [`Step::Done`].
//!
//! The driver makes no decision of its own: every `if` on a reply's meaning, every retry and
//! every wait lives in the machine.

use core::convert::Infallible;
use std::time::Instant;

use crate::client::{Reply, Request, RequestError};
use crate::topology::Topology;

use super::super::error::CacheError;

/// Where a machine's randomness comes from. The async layer draws from the operating system
/// (tokens must never repeat across processes); the simulation from its seed.
pub trait Entropy {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);

    /// A random `u64`.
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }
}

/// A function that fills a buffer is a source of randomness (the async layer passes the
/// operating system's).
impl<F: FnMut(&mut [u8])> Entropy for F {
    fn fill(&mut self, buf: &mut [u8]) {
        self(buf);
    }
}

/// What a machine may read of the world when it is resumed.
pub struct Ctx<'a> {
    /// The driver's monotonic time (never goes backwards).
    pub now: Instant,
    /// Wall-clock milliseconds since the Unix epoch (stored in entries: refresh times).
    pub wall_ms: u64,
    /// Randomness.
    pub entropy: &'a mut dyn Entropy,
    /// The client's latest topology, if it has one (which shards have replicas, which nodes
    /// are primaries).
    pub topology: Option<&'a Topology>,
}

impl core::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ctx").field("now", &self.now).field("wall_ms", &self.wall_ms).finish_non_exhaustive()
    }
}

/// What a machine is resumed with.
#[derive(Debug)]
pub enum Input<A = Infallible> {
    /// The first resume.
    Start,
    /// The results of the last [`Step::Send`], one per request, in order.
    Replies(Vec<Result<Reply, RequestError>>),
    /// The instant of the last [`Step::Sleep`] has passed.
    Woke,
    /// The result of the last [`Step::Call`].
    Answer(A),
}

impl<A> Input<A> {
    /// The same input, its answer (if it is one) made by `f` (for a machine that wraps another
    /// and answers its calls in another type).
    pub fn map_answer<B>(self, f: impl FnOnce(A) -> B) -> Input<B> {
        match self {
            Self::Start => Input::Start,
            Self::Replies(r) => Input::Replies(r),
            Self::Woke => Input::Woke,
            Self::Answer(a) => Input::Answer(f(a)),
        }
    }
}

/// What a machine asks its driver to do next.
#[derive(Debug)]
#[must_use]
pub enum Step<T, C = Infallible> {
    /// Send these requests, all at once, and resume with their results.
    Send(Vec<Request>),
    /// Resume at this instant.
    Sleep(Instant),
    /// Perform this call (user code the core cannot run) and resume with its answer.
    Call(C),
    /// The operation's outcome.
    Done(Result<T, CacheError>),
}

impl<T, C> Step<T, C> {
    /// The same step, its call made by `call` and its outcome read by `done` (for a machine
    /// that wraps another).
    pub fn map<U, D>(
        self,
        call: impl FnOnce(C) -> D,
        done: impl FnOnce(T) -> Result<U, CacheError>,
    ) -> Step<U, D> {
        match self {
            Self::Send(r) => Step::Send(r),
            Self::Sleep(at) => Step::Sleep(at),
            Self::Call(c) => Step::Call(call(c)),
            Self::Done(r) => Step::Done(r.and_then(done)),
        }
    }
}

/// A cache operation as a step machine. See the [module docs](self) for how it is driven.
pub trait Machine {
    /// The operation's result.
    type Output;
    /// What [`Step::Call`] carries (`Infallible` for machines that call nothing).
    type Call;
    /// What [`Input::Answer`] carries.
    type Answer;

    /// Advances the machine with what the driver did last.
    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input<Self::Answer>) -> Step<Self::Output, Self::Call>;
}

/// A machine's input that the machine did not ask for: a driver bug, reported as an error
/// rather than a panic.
pub(crate) fn unexpected_input<T, C, A>(op: &'static str, input: &Input<A>) -> Step<T, C> {
    let got = match input {
        Input::Start => "start",
        Input::Replies(_) => "replies",
        Input::Woke => "wake-up",
        Input::Answer(_) => "answer",
    };
    Step::Done(Err(CacheError::UnexpectedReply {
        command: op,
        got: format!("driver input out of turn: {got}"),
    }))
}
