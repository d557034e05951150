//! Reading every primary's eviction setup when the provider connects: `CONFIG GET
//! maxmemory-policy maxmemory` on every primary, and `INFO memory` (its `maxmemory_policy` and
//! `maxmemory` fields) on each primary whose `CONFIG` failed (managed services often disable
//! `CONFIG`). The outcome is an [`EvictionReport`]: each primary's policy, limit and
//! [`EvictionClass`].
//!
//! A setup that cannot be read is not an error: the primary is reported
//! [`EvictionClass::Unknown`], with the read's error. The outcome is an error only when a
//! primary's class is one the caller refuses ([`EvictionReport::check`]); refusing
//! [`EvictionClass::Unknown`] makes a setup that cannot be read refused too.

use crate::cache::error::CacheError;
use crate::cache::eviction::{
    EvictionClass, EvictionPolicy, EvictionReport, EvictionSource, PrimaryEviction,
};
use crate::client::{Cmd, Reply, Request, RequestError};
use crate::resp::Value;
use crate::server_error::ServerError;

use super::deadline::Deadline;
use super::machine::{Ctx, Input, Machine, Step, unexpected_input};

#[derive(Debug)]
enum Phase {
    Start,
    /// `CONFIG GET` sent to every primary.
    Config,
    /// `INFO memory` sent to these primaries (indices into the report), one request each.
    Info(Vec<usize>),
    Over,
}

/// The machine reading every primary's eviction setup (see the module's docs).
#[derive(Debug)]
pub struct CheckEviction {
    refuse: Vec<EvictionClass>,
    deadline: Deadline,
    phase: Phase,
    report: EvictionReport,
}

impl CheckEviction {
    /// Reads the setup within `deadline`; the outcome is refused if a primary's class is in
    /// `refuse`.
    #[must_use]
    pub const fn new(refuse: Vec<EvictionClass>, deadline: Deadline) -> Self {
        Self { refuse, deadline, phase: Phase::Start, report: EvictionReport::empty() }
    }

    fn finish(&mut self) -> Step<EvictionReport> {
        self.phase = Phase::Over;
        let report = core::mem::take(&mut self.report);
        Step::Done(report.check(&self.refuse).map(|()| report))
    }

    fn on_config(&mut self, cx: &Ctx<'_>, reply: Result<Reply, RequestError>) -> Step<EvictionReport> {
        let per = match reply {
            Ok(Reply::PerNode(per)) if !per.is_empty() => per,
            Ok(other) => {
                self.report.error =
                    Some(CacheError::UnexpectedReply { command: "CONFIG GET", got: format!("{other:?}") });
                return self.finish();
            }
            Err(e) => {
                self.report.error = Some(self.deadline.request_error(e));
                return self.finish();
            }
        };
        let mut fallback = Vec::new();
        for (addr, r) in per {
            let i = self.report.primaries.len();
            match r.map_err(|e| self.deadline.request_error(e)).and_then(read_config) {
                Ok((policy, maxmemory)) => {
                    self.report.primaries.push(PrimaryEviction::read(
                        addr,
                        policy,
                        maxmemory,
                        EvictionSource::Config,
                    ));
                }
                Err(e) => {
                    // Listed as unknown until `INFO` says otherwise.
                    self.report.primaries.push(PrimaryEviction::unknown(addr, e));
                    fallback.push(i);
                }
            }
        }
        if fallback.is_empty() {
            return self.finish();
        }
        let timeout = match self.deadline.remaining(cx.now) {
            Ok(t) => t,
            Err(e) => {
                for &i in &fallback {
                    self.report.primaries[i].error = Some(e.clone());
                }
                return self.finish();
            }
        };
        let requests = fallback
            .iter()
            .map(|&i| {
                let addr = self.report.primaries[i].addr.clone();
                Request::node(addr, Cmd::new("INFO").arg("memory")).with_timeout(timeout)
            })
            .collect();
        self.phase = Phase::Info(fallback);
        Step::Send(requests)
    }

    fn on_info(
        &mut self,
        asked: &[usize],
        replies: Vec<Result<Reply, RequestError>>,
    ) -> Step<EvictionReport> {
        for (&i, reply) in asked.iter().zip(replies) {
            let read = match reply {
                Ok(Reply::Value(v)) => read_info(&v),
                Ok(other) => Err(CacheError::UnexpectedReply { command: "INFO", got: format!("{other:?}") }),
                Err(e) => Err(self.deadline.request_error(e)),
            };
            let p = &mut self.report.primaries[i];
            *p = match read {
                Ok((policy, maxmemory)) => {
                    PrimaryEviction::read(p.addr.clone(), policy, maxmemory, EvictionSource::Info)
                }
                Err(e) => PrimaryEviction::unknown(p.addr.clone(), e),
            };
        }
        self.finish()
    }
}

/// The policy and limit of a `CONFIG GET maxmemory-policy maxmemory` reply (name and value
/// pairs in an array under RESP2, a map under RESP3, in any order).
///
/// # Errors
/// An error reply, another shape, or either parameter missing or unreadable.
pub fn read_config(v: Value) -> Result<(EvictionPolicy, u64), CacheError> {
    let bad = |v: &Value| CacheError::UnexpectedReply { command: "CONFIG GET", got: format!("{v:?}") };
    let pairs: Vec<(&Value, &Value)> = match &v {
        Value::Error(e) => {
            return Err(CacheError::Request(RequestError::Server(ServerError::new(e.clone()))));
        }
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(flat) if flat.len() % 2 == 0 => flat.chunks(2).map(|kv| (&kv[0], &kv[1])).collect(),
        other => return Err(bad(other)),
    };
    let find = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
    };
    let policy = find("maxmemory-policy").map(EvictionPolicy::parse);
    let maxmemory = find("maxmemory").and_then(|m| m.trim().parse::<u64>().ok());
    match (policy, maxmemory) {
        (Some(p), Some(m)) => Ok((p, m)),
        _ => Err(bad(&v)),
    }
}

/// The policy and limit of an `INFO memory` reply (`maxmemory_policy:` and `maxmemory:` lines).
///
/// # Errors
/// An error reply, another shape, or either field missing or unreadable.
pub fn read_info(v: &Value) -> Result<(EvictionPolicy, u64), CacheError> {
    if let Value::Error(e) = v {
        return Err(CacheError::Request(RequestError::Server(ServerError::new(e.clone()))));
    }
    let bad = || CacheError::UnexpectedReply { command: "INFO", got: format!("{v:?}") };
    let text = v.as_bytes().map(|b| String::from_utf8_lossy(b)).ok_or_else(bad)?;
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(':'))).map(str::trim)
    };
    let policy = field("maxmemory_policy").filter(|p| !p.is_empty()).map(EvictionPolicy::parse);
    let maxmemory = field("maxmemory").and_then(|m| m.parse::<u64>().ok());
    match (policy, maxmemory) {
        (Some(p), Some(m)) => Ok((p, m)),
        _ => Err(bad()),
    }
}

impl Machine for CheckEviction {
    type Output = EvictionReport;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input) -> Step<EvictionReport> {
        match input {
            Input::Start if matches!(self.phase, Phase::Start) => match self.deadline.remaining(cx.now) {
                Ok(left) => {
                    self.phase = Phase::Config;
                    let cmd = Cmd::new("CONFIG").arg("GET").arg("maxmemory-policy").arg("maxmemory");
                    Step::Send(vec![Request::all_primaries(cmd).with_timeout(left)])
                }
                Err(e) => {
                    self.report.error = Some(e);
                    self.finish()
                }
            },
            Input::Replies(mut replies) if matches!(self.phase, Phase::Config) && replies.len() == 1 => {
                let reply = replies.pop().unwrap_or(Err(RequestError::Internal { what: "no reply" }));
                self.on_config(cx, reply)
            }
            Input::Replies(replies) if matches!(&self.phase, Phase::Info(a) if a.len() == replies.len()) => {
                let asked = match &self.phase {
                    Phase::Info(asked) => asked.clone(),
                    _ => Vec::new(),
                };
                self.on_info(&asked, replies)
            }
            other => unexpected_input("check_eviction", &other),
        }
    }
}

#[cfg(test)]
mod tests;
