//! Sending a cache operation's commands: one pipeline per step, `EVALSHA` falling back to
//! `EVAL` on `NOSCRIPT`, every step bounded by the operation's deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use slotcache_core::ServerErrorKind;
use slotcache_core::cache::plan;
use slotcache_core::cache::scripts::Script;
use slotcache_core::cache::{CacheError, SharedError};
use slotcache_core::client::{Cmd, Request, RequestError};

use crate::error::Error;
use crate::handle::Client;
use crate::runtime::Runtime;

/// One command of a step, with the script it calls (for the `EVAL` fallback).
#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) cmd: Cmd,
    pub(crate) script: Option<&'static Script>,
}

impl From<Cmd> for Step {
    fn from(cmd: Cmd) -> Self {
        Self { cmd, script: None }
    }
}

impl Step {
    pub(crate) const fn script(cmd: Cmd, script: &'static Script) -> Self {
        Self { cmd, script: Some(script) }
    }
}

pub(crate) use slotcache_core::cache::op::Deadline;

/// The provider's connection to the cluster, shared by every namespace.
#[derive(Clone, Debug)]
pub(crate) struct Exec {
    pub(crate) client: Client,
    pub(crate) rt: Arc<dyn Runtime>,
}

pub(crate) fn to_cache_error(e: Error) -> CacheError {
    match e {
        Error::Request(r) => CacheError::Request(r),
        Error::Submit(s) => CacheError::Submit(s),
        Error::Closed => CacheError::Closed,
        Error::Config(c) => CacheError::ClientConfig(c),
        Error::Tls(t) => CacheError::Tls(SharedError::new(t)),
    }
}

fn is_noscript(r: &Result<slotcache_core::Value, RequestError>) -> bool {
    match r {
        Err(RequestError::Server(e)) => e.kind() == &ServerErrorKind::NoScript,
        Ok(v) => plan::is_noscript(v),
        Err(_) => false,
    }
}

impl Exec {
    pub(crate) fn now(&self) -> Instant {
        self.rt.now()
    }

    /// Sends `steps` as one pipeline (commands for one node share a connection and keep their
    /// order); scripts the node does not know are sent again with their source.
    pub(crate) async fn run(
        &self,
        steps: Vec<Step>,
        deadline: &Deadline,
    ) -> Result<Vec<Result<slotcache_core::Value, RequestError>>, CacheError> {
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let cmds: Vec<Cmd> = steps.iter().map(|s| s.cmd.clone()).collect();
        let timeout = deadline.remaining(self.now())?;
        let mut results = self
            .client
            .pipeline_with_timeout(cmds, timeout)
            .await
            .map_err(|e| self.deadline_error(e, deadline))?;
        let retry: Vec<usize> =
            (0..results.len()).filter(|&i| steps[i].script.is_some() && is_noscript(&results[i])).collect();
        if !retry.is_empty() {
            let cmds: Vec<Cmd> = retry
                .iter()
                .map(|&i| plan::as_eval(&steps[i].cmd, steps[i].script.expect("filtered on scripts")))
                .collect();
            let timeout = deadline.remaining(self.now())?;
            let again = self
                .client
                .pipeline_with_timeout(cmds, timeout)
                .await
                .map_err(|e| self.deadline_error(e, deadline))?;
            for (i, r) in retry.into_iter().zip(again) {
                results[i] = r;
            }
        }
        // A command that timed out used up the operation's budget: the operation timed out.
        if results.iter().any(|r| matches!(r, Err(RequestError::Timeout { .. }))) {
            return Err(deadline.timeout_error());
        }
        Ok(results)
    }

    /// Sends one command (a multi-key command is split per slot and merged by the client).
    pub(crate) async fn one(
        &self,
        step: Step,
        deadline: &Deadline,
    ) -> Result<slotcache_core::Value, CacheError> {
        let send = |cmd: Cmd| async {
            let timeout = deadline.remaining(self.now())?;
            self.client
                .request(Request::command(cmd).with_timeout(timeout))
                .await
                .map_err(|e| self.deadline_error(e, deadline))
                .and_then(|r| {
                    r.into_value()
                        .ok_or(CacheError::UnexpectedReply { command: "request", got: "not a value".into() })
                })
        };
        match (send(step.cmd.clone()).await, step.script) {
            (Err(CacheError::Request(RequestError::Server(e))), Some(script))
                if e.kind() == &ServerErrorKind::NoScript =>
            {
                send(plan::as_eval(&step.cmd, script)).await
            }
            (r, _) => r,
        }
    }

    /// A request's error as the operation's: every request carries the operation's remaining
    /// budget as its timeout, so a request that timed out means the operation ran out of time
    /// (the client's timer may fire a moment before this clock says so).
    pub(crate) fn deadline_error(&self, e: Error, deadline: &Deadline) -> CacheError {
        if matches!(e, Error::Request(RequestError::Timeout { .. })) {
            return deadline.timeout_error();
        }
        to_cache_error(e)
    }

    /// Waits on the runtime.
    pub(crate) async fn sleep(&self, d: Duration) {
        self.rt.sleep_until(self.now() + d).await;
    }
}
