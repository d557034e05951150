//! One round of an operation: a pipeline of commands, sent again with its scripts' source
//! where a node does not have them cached (`NOSCRIPT`), within the operation's deadline.

use std::time::Instant;

use crate::cache::error::CacheError;
use crate::cache::plan;
use crate::client::{Reply, Request, RequestError};
use crate::resp::Value;
use crate::server_error::ServerErrorKind;

use super::deadline::Deadline;

pub use crate::cache::plan::Command;

/// The results of a round, one per command, in order.
pub type Results = Vec<Result<Value, RequestError>>;

/// What a round wants next.
#[derive(Debug)]
pub enum Progress {
    /// Send this request and hand its reply to [`Exchange::on_reply`].
    Send(Request),
    /// The round is over.
    Done(Results),
}

/// A round of commands in one pipeline (the commands for one node keep their order on one
/// connection; nodes are served in parallel).
///
/// A script the node does not know is sent again as `EVAL`, **together with every command
/// that follows it** ([`Cmd::after`](crate::client::Cmd::after)): a `WAIT` that follows a script must run after the
/// script's real execution, on its connection, or it acknowledges nothing.
#[derive(Debug)]
pub struct Exchange {
    cmds: Vec<Command>,
    results: Vec<Option<Result<Value, RequestError>>>,
    /// The commands of the request in flight (indices into `cmds`).
    sent: Vec<usize>,
    evals_sent: bool,
}

fn is_noscript(r: &Result<Value, RequestError>) -> bool {
    match r {
        Err(RequestError::Server(e)) => e.kind() == &ServerErrorKind::NoScript,
        Ok(v) => plan::is_noscript(v),
        Err(_) => false,
    }
}

impl Exchange {
    /// A round of these commands.
    #[must_use]
    pub fn new(cmds: Vec<Command>) -> Self {
        let results = cmds.iter().map(|_| None).collect();
        Self { cmds, results, sent: Vec::new(), evals_sent: false }
    }

    /// Starts the round.
    ///
    /// # Errors
    /// The deadline has passed.
    pub fn start(&mut self, now: Instant, deadline: &Deadline) -> Result<Progress, CacheError> {
        if self.cmds.is_empty() {
            return Ok(Progress::Done(Vec::new()));
        }
        let all: Vec<usize> = (0..self.cmds.len()).collect();
        let cmds = self.cmds.iter().map(|c| c.cmd.clone()).collect();
        self.sent = all;
        Ok(Progress::Send(Request::pipeline(cmds).with_timeout(deadline.remaining(now)?)))
    }

    /// Takes the reply to the request last sent.
    ///
    /// # Errors
    /// The whole request failed, a command timed out (the operation's budget is spent), or the
    /// deadline passed before a retry.
    pub fn on_reply(
        &mut self,
        now: Instant,
        deadline: &Deadline,
        reply: Result<Reply, RequestError>,
    ) -> Result<Progress, CacheError> {
        let got = match reply.map_err(|e| deadline.request_error(e))? {
            Reply::Pipeline(results) => results,
            other => {
                return Err(CacheError::UnexpectedReply { command: "pipeline", got: format!("{other:?}") });
            }
        };
        if got.len() != self.sent.len() {
            return Err(CacheError::UnexpectedReply {
                command: "pipeline",
                got: format!("{} results for {} commands", got.len(), self.sent.len()),
            });
        }
        for (&i, r) in self.sent.iter().zip(got) {
            self.results[i] = Some(r);
        }
        let retry: Vec<usize> = if self.evals_sent {
            Vec::new()
        } else {
            self.sent
                .iter()
                .copied()
                .filter(|&i| {
                    self.cmds[i].script.is_some() && self.results[i].as_ref().is_some_and(is_noscript)
                })
                .collect()
        };
        if !retry.is_empty() {
            self.evals_sent = true;
            return self.resend(now, deadline, &retry).map(Progress::Send);
        }
        let results: Results = self
            .results
            .iter_mut()
            .map(|r| {
                r.take().unwrap_or(Err(RequestError::Internal {
                    what: "a round ended without a result for every command",
                }))
            })
            .collect();
        // A command that timed out used up the operation's budget: the operation timed out.
        if results.iter().any(|r| matches!(r, Err(RequestError::Timeout { .. }))) {
            return Err(deadline.timeout_error());
        }
        Ok(Progress::Done(results))
    }

    /// The scripts of `retry` as `EVAL`, each followed by the commands that follow it.
    fn resend(&mut self, now: Instant, deadline: &Deadline, retry: &[usize]) -> Result<Request, CacheError> {
        let mut sent = Vec::new();
        let mut cmds = Vec::new();
        for &i in retry {
            let c = &self.cmds[i];
            let script = c.script.expect("filtered on scripts");
            let at = cmds.len();
            cmds.push(plan::as_eval(&c.cmd, script));
            sent.push(i);
            for (j, f) in self.cmds.iter().enumerate().filter(|(_, f)| f.cmd.follows() == Some(i)) {
                cmds.push(f.cmd.clone().after(at));
                sent.push(j);
            }
        }
        self.sent = sent;
        Ok(Request::pipeline(cmds).with_timeout(deadline.remaining(now)?))
    }
}
