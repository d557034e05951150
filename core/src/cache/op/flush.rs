//! `flush_all`: `FLUSHDB` on every primary, refused unless the provider allows it
//! (`allow_unsafe_flushdb`). One request addressed to every primary; the first node that
//! failed (in the client's order) fails the operation.

use core::convert::Infallible;

use crate::cache::error::CacheError;
use crate::client::{Cmd, Reply, Request, RequestError};

use super::machine::{Ctx, Input, Machine, Step, unexpected_input};

/// The `flush_all` operation.
#[derive(Debug)]
pub struct FlushAll {
    allowed: bool,
}

impl FlushAll {
    /// Flushes every primary, when `allowed`; refused with [`CacheError::UnsafeFlush`]
    /// otherwise, before anything is sent.
    #[must_use]
    pub const fn new(allowed: bool) -> Self {
        Self { allowed }
    }
}

/// The outcome of the one request: the first node's error, if any.
fn flushed(replies: Vec<Result<Reply, RequestError>>) -> Result<(), CacheError> {
    let [reply] = <[_; 1]>::try_from(replies).map_err(|r| CacheError::UnexpectedReply {
        command: "FLUSHDB",
        got: format!("{} replies for one request", r.len()),
    })?;
    match reply.map_err(CacheError::Request)? {
        Reply::PerNode(per) => {
            per.into_iter().try_for_each(|(_, r)| r.map(drop).map_err(CacheError::Request))
        }
        other => Err(CacheError::Request(RequestError::UnexpectedReply {
            expected: "a reply of the request's shape",
            got: format!("{other:?}"),
        })),
    }
}

impl Machine for FlushAll {
    type Output = ();
    type Call = Infallible;
    type Answer = Infallible;

    fn resume(&mut self, _cx: &mut Ctx<'_>, input: Input) -> Step<()> {
        match input {
            Input::Start if !self.allowed => Step::Done(Err(CacheError::UnsafeFlush)),
            Input::Start => Step::Send(vec![Request::all_primaries(Cmd::new("FLUSHDB"))]),
            Input::Replies(replies) => Step::Done(flushed(replies)),
            other => unexpected_input("flush_all", &other),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::cache::op::testing::{Hand, server_error};
    use crate::client::RequestKind;
    use crate::node_addr::NodeAddr;
    use crate::resp::Value;

    fn per_node(results: Vec<Result<Value, RequestError>>) -> Input {
        let per = (7000..).zip(results).map(|(port, r)| (NodeAddr::new("10.0.0.1", port), r));
        Input::Replies(vec![Ok(Reply::PerNode(per.collect()))])
    }

    fn done(step: Step<()>) -> Result<(), CacheError> {
        match step {
            Step::Done(r) => r,
            other => panic!("expected the outcome, got {other:?}"),
        }
    }

    #[test]
    fn refused_unless_allowed_before_anything_is_sent() {
        assert_eq!(done(Hand::new(FlushAll::new(false)).start()), Err(CacheError::UnsafeFlush));
    }

    #[test]
    fn one_flushdb_to_every_primary() {
        let mut h = Hand::new(FlushAll::new(true));
        let Step::Send(reqs) = h.start() else { panic!("a request") };
        assert_eq!(reqs.len(), 1);
        assert!(matches!(reqs[0].kind, RequestKind::AllPrimaries(_)), "{:?}", reqs[0]);
        let ok = || Ok(Value::Simple(Bytes::from_static(b"OK")));
        assert_eq!(done(h.resume(per_node(vec![ok(), ok()]))), Ok(()));
    }

    #[test]
    fn the_first_failed_node_fails_it() {
        let mut h = Hand::new(FlushAll::new(true));
        let _ = h.start();
        let step = h.resume(per_node(vec![
            Ok(Value::Simple(Bytes::from_static(b"OK"))),
            Err(server_error("ERR first")),
            Err(server_error("ERR second")),
        ]));
        let e = done(step).expect_err("a node failed");
        assert!(e.to_string().contains("first"), "{e}");
    }

    #[test]
    fn a_failed_request_or_another_shape_fails_it() {
        let mut h = Hand::new(FlushAll::new(true));
        let _ = h.start();
        let step = h.resume(Input::Replies(vec![Err(server_error("ERR down"))]));
        assert!(matches!(done(step), Err(CacheError::Request(_))));
        let mut h = Hand::new(FlushAll::new(true));
        let _ = h.start();
        let step = h.resume(Input::Replies(vec![Ok(Reply::Value(Value::Nil))]));
        assert!(matches!(done(step), Err(CacheError::Request(RequestError::UnexpectedReply { .. }))));
    }
}
