//! Running machines inside a machine: an operation made of smaller ones (a load is a lock, a
//! read, a call and a write) runs each in turn as a child, whose requests and sleeps pass
//! through to the driver and whose outcome comes back to the parent.

use core::convert::Infallible;

use crate::cache::error::CacheError;

use super::deadline::Deadline;
use super::exchange::{Command, Exchange, Results};
use super::machine::{Ctx, Input, Machine, Step};
use super::rounds::{Next, RoundMachine, Rounds};

/// What a child did with a resume.
#[derive(Debug)]
pub enum Turn<T, C, O> {
    /// The child goes on: the parent returns this step to its driver.
    Pass(Step<T, C>),
    /// The child is over, with this outcome.
    Over(Result<O, CacheError>),
}

/// Resumes `child` with the parent's `input` (an answer to a call is never the child's: the
/// children call nothing).
pub fn resume<M, T, C, A>(child: &mut M, cx: &mut Ctx<'_>, input: Input<A>) -> Turn<T, C, M::Output>
where
    M: Machine<Call = Infallible, Answer = Infallible>,
{
    let input = match input {
        Input::Start => Input::Start,
        Input::Replies(r) => Input::Replies(r),
        Input::Woke => Input::Woke,
        Input::Answer(_) => {
            let got = "driver input out of turn: answer".into();
            return Turn::Over(Err(CacheError::UnexpectedReply { command: "child", got }));
        }
    };
    match child.resume(cx, input) {
        Step::Send(r) => Turn::Pass(Step::Send(r)),
        Step::Sleep(at) => Turn::Pass(Step::Sleep(at)),
        Step::Call(never) => match never {},
        Step::Done(r) => Turn::Over(r),
    }
}

/// One round of commands, as a machine whose outcome is the round's results.
#[derive(Debug)]
pub struct Once {
    cmds: Option<Vec<Command>>,
    deadline: Deadline,
}

/// The machine of [`Once`].
pub type OnceMachine = RoundMachine<Once>;

impl Once {
    /// Sends `cmds` in one round within `deadline`.
    #[must_use]
    pub const fn machine(cmds: Vec<Command>, deadline: Deadline) -> OnceMachine {
        RoundMachine::new(Self { cmds: Some(cmds), deadline })
    }
}

impl Rounds for Once {
    type Output = Results;
    type Call = Infallible;
    type Answer = Infallible;

    fn deadline(&self) -> &Deadline {
        &self.deadline
    }

    fn first(&mut self, _cx: &mut Ctx<'_>) -> Result<Next<Results>, CacheError> {
        Ok(Next::Round(Exchange::new(self.cmds.take().unwrap_or_default())))
    }

    fn after_round(&mut self, _cx: &mut Ctx<'_>, results: Results) -> Result<Next<Results>, CacheError> {
        Ok(Next::Done(results))
    }
}
