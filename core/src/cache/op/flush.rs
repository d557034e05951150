//! `flush_all` and the other operations on the servers themselves rather than on a namespace's
//! keys: [`FlushAll`] (`FLUSHDB`), [`Maximum`] (`CONFIG GET maxmemory`) and [`SetMaximum`]
//! (`CONFIG SET maxmemory`), each one request addressed to **every primary** the client knows
//! (never replicas). `flush_all` and `set_maximum` are refused unless the provider allows them
//! (`allow_unsafe_flushdb`), before anything is sent.
//!
//! Every primary answers before the outcome is decided: the first primary's failure (in the
//! client's order) fails the operation, and the others may have applied the command by then.
//! The request carries what is left of the operation's deadline.

use core::fmt::Debug;

use crate::cache::error::CacheError;
use crate::client::{Cmd, Reply, Request, RequestError};
use crate::node_addr::NodeAddr;
use crate::resp::Value;
use crate::server_error::ServerError;

use super::deadline::Deadline;
use super::machine::{Ctx, Input, Machine, Step, unexpected_input};

/// One command for every primary, and how its answers make the outcome.
pub trait PerPrimary: Debug {
    /// The outcome.
    type Output;

    /// The command's name, for errors.
    fn name(&self) -> &'static str;

    /// The command.
    fn command(&self) -> Cmd;

    /// The outcome from every primary's reply (none is an error reply).
    ///
    /// # Errors
    /// A reply of another shape.
    fn outcome(&self, replies: Vec<(NodeAddr, Value)>) -> Result<Self::Output, CacheError>;
}

/// `FLUSHDB` on every primary: deletes every key of the cluster.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlushDb;

impl PerPrimary for FlushDb {
    type Output = ();

    fn name(&self) -> &'static str {
        "FLUSHDB"
    }

    fn command(&self) -> Cmd {
        Cmd::new("FLUSHDB")
    }

    fn outcome(&self, replies: Vec<(NodeAddr, Value)>) -> Result<(), CacheError> {
        replies.iter().try_for_each(|(_, v)| crate::cache::plan::read_ok("FLUSHDB", v))
    }
}

/// `CONFIG GET maxmemory` on every primary. The outcome is the memory limit of the cluster's
/// primaries as [`SetMaxMemory`] sets it: `None` when a primary has none (`maxmemory 0`: it
/// never evicts, so the cache is not bounded there), else the smallest limit (the primary
/// that fills first; every primary has the same one after `set_maximum`).
#[derive(Clone, Copy, Debug, Default)]
pub struct MaxMemory;

impl PerPrimary for MaxMemory {
    type Output = Option<u64>;

    fn name(&self) -> &'static str {
        "CONFIG GET"
    }

    fn command(&self) -> Cmd {
        Cmd::new("CONFIG").arg("GET").arg("maxmemory")
    }

    fn outcome(&self, replies: Vec<(NodeAddr, Value)>) -> Result<Option<u64>, CacheError> {
        let mut smallest: Option<u64> = None;
        for (_, v) in replies {
            match read_maxmemory(&v)? {
                0 => return Ok(None),
                limit => smallest = Some(smallest.map_or(limit, |s| s.min(limit))),
            }
        }
        Ok(smallest)
    }
}

/// The `maxmemory` value of a `CONFIG GET maxmemory` reply (an array of name and value under
/// RESP2, a map under RESP3).
///
/// # Errors
/// Another shape, or a value that is not a number of bytes.
pub fn read_maxmemory(v: &Value) -> Result<u64, CacheError> {
    let value = match v {
        Value::Array(parts) if parts.len() == 2 => parts.get(1),
        Value::Map(pairs) if pairs.len() == 1 => pairs.first().map(|(_, value)| value),
        _ => None,
    };
    value
        .and_then(Value::as_bytes)
        .and_then(|b| core::str::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| CacheError::UnexpectedReply { command: "CONFIG GET", got: format!("{v:?}") })
}

/// `CONFIG SET maxmemory <bytes>` on every primary (`None`: `0`, no limit). Not persisted
/// (no `CONFIG REWRITE`): a restarted node comes back with its configuration file's value, and
/// a replica promoted later keeps its own.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetMaxMemory(pub Option<u64>);

impl PerPrimary for SetMaxMemory {
    type Output = ();

    fn name(&self) -> &'static str {
        "CONFIG SET"
    }

    fn command(&self) -> Cmd {
        Cmd::new("CONFIG").arg("SET").arg("maxmemory").arg(self.0.unwrap_or(0)).with_idempotent(true)
    }

    fn outcome(&self, replies: Vec<(NodeAddr, Value)>) -> Result<(), CacheError> {
        replies.iter().try_for_each(|(_, v)| crate::cache::plan::read_ok("CONFIG SET", v))
    }
}

/// Sends a [`PerPrimary`] command to every primary and reads the answers.
#[derive(Debug)]
pub struct EveryPrimary<P> {
    plan: P,
    deadline: Deadline,
    /// The refusal to give instead of sending anything (the operation is not allowed).
    refused: Option<CacheError>,
    sent: bool,
}

/// The `flush_all` operation: `FLUSHDB` on every primary.
pub type FlushAll = EveryPrimary<FlushDb>;
/// The `maximum` operation: `CONFIG GET maxmemory` on every primary.
pub type Maximum = EveryPrimary<MaxMemory>;
/// The `set_maximum` operation: `CONFIG SET maxmemory` on every primary.
pub type SetMaximum = EveryPrimary<SetMaxMemory>;

impl<P: PerPrimary> EveryPrimary<P> {
    /// `plan` on every primary, within `deadline`.
    #[must_use]
    pub const fn of(plan: P, deadline: Deadline) -> Self {
        Self { plan, deadline, refused: None, sent: false }
    }

    fn gated(allowed: bool, refused: CacheError, plan: P, deadline: Deadline) -> Self {
        Self { refused: (!allowed).then_some(refused), ..Self::of(plan, deadline) }
    }

    fn send(&mut self, cx: &Ctx<'_>) -> Step<P::Output> {
        match self.deadline.remaining(cx.now) {
            Err(e) => Step::Done(Err(e)),
            Ok(left) => {
                self.sent = true;
                Step::Send(vec![Request::all_primaries(self.plan.command()).with_timeout(left)])
            }
        }
    }

    fn on_reply(&self, reply: Result<Reply, RequestError>) -> Result<P::Output, CacheError> {
        let name = self.plan.name();
        let per = match reply.map_err(|e| self.deadline.request_error(e))? {
            Reply::PerNode(per) => per,
            other => return Err(CacheError::UnexpectedReply { command: name, got: format!("{other:?}") }),
        };
        if per.is_empty() {
            return Err(CacheError::UnexpectedReply { command: name, got: "no primary answered".into() });
        }
        let mut values = Vec::with_capacity(per.len());
        let mut first_error = None;
        for (node, r) in per {
            match r {
                Ok(Value::Error(e)) => {
                    first_error.get_or_insert_with(|| {
                        CacheError::Request(RequestError::Server(ServerError::new(e)))
                    });
                }
                Ok(v) => values.push((node, v)),
                Err(e) => {
                    first_error.get_or_insert_with(|| self.deadline.request_error(e));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => self.plan.outcome(values),
        }
    }
}

impl FlushAll {
    /// `FLUSHDB` on every primary within `deadline`, when `allowed` (the provider's
    /// `allow_unsafe_flushdb`); refused with [`CacheError::UnsafeFlush`] otherwise, before
    /// anything is sent.
    #[must_use]
    pub fn new(allowed: bool, deadline: Deadline) -> Self {
        Self::gated(allowed, CacheError::UnsafeFlush, FlushDb, deadline)
    }
}

impl Maximum {
    /// `CONFIG GET maxmemory` on every primary within `deadline`.
    #[must_use]
    pub const fn new(deadline: Deadline) -> Self {
        Self::of(MaxMemory, deadline)
    }
}

impl SetMaximum {
    /// `CONFIG SET maxmemory` on every primary within `deadline`, when `allowed` (the
    /// provider's `allow_unsafe_flushdb`: the limit is every application's); refused with
    /// [`CacheError::UnsafeSetMaximum`] otherwise, before anything is sent.
    #[must_use]
    pub fn new(allowed: bool, limit: Option<u64>, deadline: Deadline) -> Self {
        Self::gated(allowed, CacheError::UnsafeSetMaximum, SetMaxMemory(limit), deadline)
    }
}

impl<P: PerPrimary> Machine for EveryPrimary<P> {
    type Output = P::Output;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input) -> Step<P::Output> {
        match input {
            Input::Start if !self.sent => match self.refused.take() {
                Some(refused) => Step::Done(Err(refused)),
                None => self.send(cx),
            },
            Input::Replies(mut replies) if self.sent && replies.len() == 1 => {
                let reply = replies.pop().expect("one reply");
                Step::Done(self.on_reply(reply))
            }
            other => unexpected_input(self.plan.name(), &other),
        }
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;
    use std::time::Instant;

    use bytes::Bytes;

    use super::*;
    use crate::cache::op::fresh::tests::timed_out;
    use crate::cache::op::testing::{Hand, bulk, server_error, words};
    use crate::client::RequestKind;

    #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
    fn machine<P: PerPrimary>(plan: P) -> Hand<EveryPrimary<P>> {
        Hand::new(EveryPrimary::of(plan, Deadline::new(Instant::now(), "maximum", Duration::from_secs(1))))
    }

    fn sent<P: PerPrimary>(m: &mut Hand<EveryPrimary<P>>) -> Vec<String> {
        let Step::Send(reqs) = m.start() else { panic!("expected a send") };
        assert_eq!(reqs.len(), 1);
        assert!(reqs[0].timeout.is_some(), "carries the deadline");
        let RequestKind::AllPrimaries(c) = &reqs[0].kind else { panic!("{reqs:?}") };
        words(c)
    }

    fn node(port: u16) -> NodeAddr {
        NodeAddr::new("10.0.0.1", port)
    }

    fn per(replies: Vec<Result<Value, RequestError>>) -> Input {
        let per = replies.into_iter().enumerate().map(|(i, r)| (node(7000 + i as u16), r)).collect();
        Input::Replies(vec![Ok(Reply::PerNode(per))])
    }

    fn pair(n: &str) -> Value {
        Value::Array(vec![bulk(b"maxmemory"), bulk(n.as_bytes())])
    }

    fn done<T: Debug>(step: Step<T>) -> Result<T, CacheError> {
        match step {
            Step::Done(r) => r,
            other => panic!("expected an outcome, got {other:?}"),
        }
    }

    #[test]
    fn maximum_is_the_smallest_limit_and_none_when_a_primary_has_none() {
        let mut m = machine(MaxMemory);
        assert_eq!(sent(&mut m), ["CONFIG", "GET", "maxmemory"]);
        assert_eq!(done(m.resume(per(vec![Ok(pair("300")), Ok(pair("200"))]))).ok(), Some(Some(200)));
        let mut m = machine(MaxMemory);
        let _ = m.start();
        let map = Value::Map(vec![(bulk(b"maxmemory"), bulk(b"100"))]);
        assert_eq!(done(m.resume(per(vec![Ok(map), Ok(pair("0"))]))).ok(), Some(None), "RESP3 map");
        for bad in [Value::Int(3), pair("lots"), Value::Array(vec![])] {
            let mut m = machine(MaxMemory);
            let _ = m.start();
            let r = done(m.resume(per(vec![Ok(bad)])));
            assert!(matches!(r, Err(CacheError::UnexpectedReply { .. })), "{r:?}");
        }
    }

    #[test]
    fn set_maximum_sends_the_limit_and_needs_every_ok() {
        let mut m = machine(SetMaxMemory(Some(1 << 20)));
        assert_eq!(sent(&mut m), ["CONFIG", "SET", "maxmemory", "1048576"]);
        let ok = || Ok(Value::Simple(Bytes::from_static(b"OK")));
        assert!(done(m.resume(per(vec![ok(), ok()]))).is_ok());
        let mut m = machine(SetMaxMemory(None));
        assert_eq!(sent(&mut m)[3], "0");
        let r = done(m.resume(per(vec![ok(), Err(server_error("ERR denied"))])));
        assert!(matches!(r, Err(CacheError::Request(RequestError::Server(_)))), "{r:?}");
        let mut m = machine(FlushDb);
        assert_eq!(sent(&mut m), ["FLUSHDB"]);
        let r = done(m.resume(per(vec![Ok(Value::Error(Bytes::from_static(b"ERR no"))), ok()])));
        assert!(matches!(r, Err(CacheError::Request(RequestError::Server(_)))), "{r:?}");
    }

    /// `flush_all` and `set_maximum` are refused unless allowed, before anything is sent;
    /// `FLUSHDB` is one request to every primary.
    #[test]
    fn changes_to_the_whole_cluster_need_the_gate() {
        #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
        let d = Deadline::new(Instant::now(), "flush_all", Duration::from_secs(1));
        assert!(matches!(done(Hand::new(FlushAll::new(false, d)).start()), Err(CacheError::UnsafeFlush)));
        let refused = done(Hand::new(SetMaximum::new(false, Some(1), d)).start());
        assert!(matches!(refused, Err(CacheError::UnsafeSetMaximum)), "{refused:?}");
        let mut m = Hand::new(FlushAll::new(true, d));
        assert_eq!(sent(&mut m), ["FLUSHDB"]);
        let ok = || Ok(Value::Simple(Bytes::from_static(b"OK")));
        assert!(done(m.resume(per(vec![ok(), ok()]))).is_ok());
        let mut m = Hand::new(SetMaximum::new(true, None, d));
        assert_eq!(sent(&mut m), ["CONFIG", "SET", "maxmemory", "0"]);
        let mut m = Hand::new(Maximum::new(d));
        assert_eq!(sent(&mut m), ["CONFIG", "GET", "maxmemory"]);
    }

    #[test]
    fn a_failed_request_or_another_shape_fails_it() {
        let mut m = machine(FlushDb);
        let _ = m.start();
        let step = m.resume(Input::Replies(vec![Err(server_error("ERR down"))]));
        assert!(matches!(done(step), Err(CacheError::Request(_))));
        let mut m = machine(FlushDb);
        let _ = m.start();
        let step = m.resume(Input::Replies(vec![Ok(Reply::Value(Value::Nil))]));
        assert!(matches!(done(step), Err(CacheError::UnexpectedReply { .. })));
    }

    #[test]
    fn timeouts_and_nothing_answering() {
        let mut m = machine(FlushDb);
        let _ = m.start();
        let r = done(m.resume(per(vec![Err(timed_out())])));
        assert!(matches!(r, Err(CacheError::Timeout { op: "maximum", .. })), "{r:?}");
        let mut m = machine(FlushDb);
        let _ = m.start();
        assert!(matches!(done(m.resume(per(vec![]))), Err(CacheError::UnexpectedReply { .. })));
        let mut m = machine(FlushDb);
        m.now += Duration::from_secs(2);
        assert!(matches!(done(m.start()), Err(CacheError::Timeout { .. })), "nothing sent");
        let mut m = machine(FlushDb);
        assert!(matches!(done(m.resume(Input::Woke)), Err(CacheError::UnexpectedReply { .. })));
    }
}
