//! Most cache operations are a few rounds of pipelined commands, each decided from the last:
//! [`Rounds`] states them that way, and [`RoundMachine`] turns them into a [`Machine`].

use std::time::Instant;

use crate::cache::error::CacheError;

use super::deadline::Deadline;
use super::exchange::{Exchange, Progress, Results};
use super::machine::{Ctx, Input, Machine, Step, unexpected_input};

/// What an operation does after a round.
#[derive(Debug)]
pub enum Next<T, C = core::convert::Infallible> {
    /// Run this round of commands.
    Round(Exchange),
    /// Wait until this instant, then [`Rounds::woke`].
    Sleep(Instant),
    /// Perform this call, then [`Rounds::answer`].
    Call(C),
    /// The operation is over.
    Done(T),
}

/// An operation as a sequence of rounds.
pub trait Rounds {
    /// The operation's result.
    type Output;
    /// A call to user code (see [`Step::Call`]).
    type Call;
    /// Its answer.
    type Answer;

    /// The operation's deadline: every request carries what is left of it.
    fn deadline(&self) -> &Deadline;

    /// The first move.
    ///
    /// # Errors
    /// The operation fails before sending anything.
    fn first(&mut self, cx: &mut Ctx<'_>) -> Result<Next<Self::Output, Self::Call>, CacheError>;

    /// The next move, after a round's results.
    ///
    /// # Errors
    /// The operation fails.
    fn after_round(
        &mut self,
        cx: &mut Ctx<'_>,
        results: Results,
    ) -> Result<Next<Self::Output, Self::Call>, CacheError>;

    /// The next move after a round failed as a whole: its request failed, one of its commands
    /// timed out, or the deadline passed before it could be sent. The default fails the
    /// operation with `error`; an operation whose clean-up must run whatever happened
    /// overrides it.
    ///
    /// # Errors
    /// The operation fails (by default, with `error`).
    fn round_failed(
        &mut self,
        _cx: &mut Ctx<'_>,
        error: CacheError,
    ) -> Result<Next<Self::Output, Self::Call>, CacheError> {
        Err(error)
    }

    /// The next move after a sleep (operations that never sleep keep the default).
    ///
    /// # Errors
    /// The operation fails.
    fn woke(&mut self, _cx: &mut Ctx<'_>) -> Result<Next<Self::Output, Self::Call>, CacheError> {
        Err(CacheError::UnexpectedReply { command: "rounds", got: "a wake-up it did not ask for".into() })
    }

    /// The next move after a call's answer (operations that never call keep the default).
    ///
    /// # Errors
    /// The operation fails.
    fn answer(
        &mut self,
        _cx: &mut Ctx<'_>,
        _answer: Self::Answer,
    ) -> Result<Next<Self::Output, Self::Call>, CacheError> {
        Err(CacheError::UnexpectedReply { command: "rounds", got: "an answer it did not ask for".into() })
    }
}

/// Runs a [`Rounds`] operation as a [`Machine`].
#[derive(Debug)]
pub struct RoundMachine<R> {
    rounds: R,
    round: Option<Exchange>,
}

impl<R: Rounds> RoundMachine<R> {
    /// The machine for `rounds`.
    pub const fn new(rounds: R) -> Self {
        Self { rounds, round: None }
    }

    /// The operation (to read what it recorded).
    pub const fn rounds(&self) -> &R {
        &self.rounds
    }

    fn next(
        &mut self,
        cx: &mut Ctx<'_>,
        next: Result<Next<R::Output, R::Call>, CacheError>,
    ) -> Step<R::Output, R::Call> {
        let mut next = next;
        loop {
            match next {
                Err(e) => return Step::Done(Err(e)),
                Ok(Next::Done(t)) => return Step::Done(Ok(t)),
                Ok(Next::Sleep(at)) => return Step::Sleep(at),
                Ok(Next::Call(c)) => return Step::Call(c),
                Ok(Next::Round(mut ex)) => match ex.start(cx.now, self.rounds.deadline()) {
                    Err(e) => next = self.rounds.round_failed(cx, e),
                    Ok(Progress::Send(req)) => {
                        self.round = Some(ex);
                        return Step::Send(vec![req]);
                    }
                    // An empty round: straight on.
                    Ok(Progress::Done(results)) => next = self.rounds.after_round(cx, results),
                },
            }
        }
    }
}

impl<R: Rounds> Machine for RoundMachine<R> {
    type Output = R::Output;
    type Call = R::Call;
    type Answer = R::Answer;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input<R::Answer>) -> Step<R::Output, R::Call> {
        match input {
            Input::Start => {
                let next = self.rounds.first(cx);
                self.next(cx, next)
            }
            Input::Woke => {
                let next = self.rounds.woke(cx);
                self.next(cx, next)
            }
            Input::Answer(a) => {
                let next = self.rounds.answer(cx, a);
                self.next(cx, next)
            }
            Input::Replies(mut replies) if replies.len() == 1 => {
                let Some(mut ex) = self.round.take() else {
                    return unexpected_input("rounds", &Input::<R::Answer>::Replies(replies));
                };
                let reply = replies.pop().expect("one reply");
                match ex.on_reply(cx.now, self.rounds.deadline(), reply) {
                    Err(e) => {
                        let next = self.rounds.round_failed(cx, e);
                        self.next(cx, next)
                    }
                    Ok(Progress::Send(req)) => {
                        self.round = Some(ex);
                        Step::Send(vec![req])
                    }
                    Ok(Progress::Done(results)) => {
                        let next = self.rounds.after_round(cx, results);
                        self.next(cx, next)
                    }
                }
            }
            other => unexpected_input("rounds", &other),
        }
    }
}
