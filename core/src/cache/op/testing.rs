//! Driving machines by hand in unit tests: a counting entropy source, a context, and helpers
//! that check what a machine asks for and feed it fabricated replies.

use std::time::Instant;

use bytes::Bytes;

use crate::client::{Cmd, Reply, Request, RequestError, RequestKind};
use crate::resp::Value;
use crate::topology::{Node, Shard, SlotRange, Topology};
use crate::{NodeAddr, Slot};

use super::machine::{Ctx, Entropy, Input, Machine, Step};

/// Deterministic "randomness": bytes counting up from a seed.
#[derive(Debug, Default)]
pub(crate) struct Counting(pub(crate) u8);

impl Entropy for Counting {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

/// A hand-driven machine with its clock and entropy.
pub(crate) struct Hand<M> {
    pub(crate) machine: M,
    pub(crate) now: Instant,
    pub(crate) wall_ms: u64,
    pub(crate) entropy: Counting,
    /// What the machine sees as the client's topology (`None` by default).
    pub(crate) topology: Option<Topology>,
}

impl<M: Machine> Hand<M> {
    #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
    pub(crate) fn new(machine: M) -> Self {
        Self {
            machine,
            now: Instant::now(),
            wall_ms: 1_700_000_000_000,
            entropy: Counting(0),
            topology: None,
        }
    }

    /// Resumes the machine with `input`.
    pub(crate) fn resume(&mut self, input: Input<M::Answer>) -> Step<M::Output, M::Call> {
        let mut cx = Ctx {
            now: self.now,
            wall_ms: self.wall_ms,
            entropy: &mut self.entropy,
            topology: self.topology.as_ref(),
        };
        self.machine.resume(&mut cx, input)
    }

    /// Starts the machine.
    pub(crate) fn start(&mut self) -> Step<M::Output, M::Call> {
        self.resume(Input::Start)
    }

    /// Answers the last `Send` (one pipeline request) with these per-command results.
    pub(crate) fn reply(&mut self, results: Vec<Result<Value, RequestError>>) -> Step<M::Output, M::Call> {
        self.resume(Input::Replies(vec![Ok(Reply::Pipeline(results))]))
    }
}

/// A topology of three shards without replicas: slots 0–5460, 5461–10922 and 10923–16383.
#[cfg_attr(not(feature = "search"), allow(dead_code, reason = "used by the search machines' tests"))]
pub(crate) fn three_shards() -> Topology {
    let slot = |n| Slot::new(n).expect("slot");
    let shard = |start, end, port| Shard {
        slots: vec![SlotRange::new(slot(start), slot(end)).expect("range")],
        primary: Node::from_addr(NodeAddr::new("10.0.0.1", port)),
        replicas: Vec::new(),
    };
    Topology::from_shards(vec![shard(10923, 16383, 7002), shard(0, 5460, 7000), shard(5461, 10922, 7001)])
        .expect("topology")
}

/// The single commands of a step that must be one request per command.
#[track_caller]
#[cfg_attr(not(feature = "search"), allow(dead_code, reason = "used by the search machines' tests"))]
pub(crate) fn commands<T: core::fmt::Debug, C: core::fmt::Debug>(step: &Step<T, C>) -> Vec<Cmd> {
    match step {
        Step::Send(reqs) => reqs
            .iter()
            .map(|r| match &r.kind {
                RequestKind::Command(c) | RequestKind::Node(_, c) => c.clone(),
                other => panic!("expected single commands, got {other:?}"),
            })
            .collect(),
        other => panic!("expected a Send, got {other:?}"),
    }
}

/// The node each request of a step is addressed to (`None` for one routed by its keys).
#[track_caller]
#[cfg_attr(not(feature = "search"), allow(dead_code, reason = "used by the search machines' tests"))]
pub(crate) fn addressed<T: core::fmt::Debug, C: core::fmt::Debug>(step: &Step<T, C>) -> Vec<Option<u16>> {
    match step {
        Step::Send(reqs) => reqs
            .iter()
            .map(|r| match &r.kind {
                RequestKind::Node(a, _) => Some(a.port()),
                _ => None,
            })
            .collect(),
        other => panic!("expected a Send, got {other:?}"),
    }
}

/// One reply per request: a value, or a server error with this text.
#[cfg_attr(not(feature = "search"), allow(dead_code, reason = "used by the search machines' tests"))]
pub(crate) fn values(replies: Vec<Result<Value, &str>>) -> Input<core::convert::Infallible> {
    Input::Replies(replies.into_iter().map(|r| r.map(Reply::Value).map_err(server_error)).collect())
}

/// The commands of a step that must be one pipeline request.
#[track_caller]
pub(crate) fn pipeline<T: core::fmt::Debug, C: core::fmt::Debug>(step: &Step<T, C>) -> Vec<Cmd> {
    match step {
        Step::Send(reqs) => match reqs.as_slice() {
            [Request { kind: RequestKind::Pipeline(cmds), .. }] => cmds.clone(),
            other => panic!("expected one pipeline, got {other:?}"),
        },
        other => panic!("expected a Send, got {other:?}"),
    }
}

/// A command's name and arguments as text (for assertions).
pub(crate) fn words(cmd: &Cmd) -> Vec<String> {
    cmd.args().iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// A bulk string reply.
pub(crate) fn bulk(s: &[u8]) -> Value {
    Value::Bulk(Bytes::copy_from_slice(s))
}

/// A server error reply, as the client reports it.
pub(crate) fn server_error(msg: &str) -> RequestError {
    RequestError::Server(crate::server_error::ServerError::new(Bytes::copy_from_slice(msg.as_bytes())))
}

/// A namespace `ns` storing envelopes, with primary durability.
pub(crate) fn scope() -> std::sync::Arc<super::scope::Scope> {
    std::sync::Arc::new(super::scope::Scope {
        ns: crate::keys::Namespace::new("ns").expect("valid"),
        name: "ns:".into(),
        storage: crate::cache::storage::Storage::Envelope,
        max_value_size: 1 << 20,
        durability: crate::cache::durability::Durability::Primary,
        expire_after_read_ms: None,
    })
}

/// The key `ns:k`.
pub(crate) fn key() -> crate::keys::EncodedKey {
    crate::keys::EncodedKey::new(Bytes::from_static(b"ns:k"))
}

/// A simple-string `OK`.
pub(crate) fn ok() -> Value {
    Value::Simple(Bytes::from_static(b"OK"))
}

/// The stored bytes of an entry holding `payload` with these tags and tokens.
pub(crate) fn stored(payload: &[u8], tags: &[(&[u8], &[u8])]) -> Bytes {
    let mut e = crate::cache::envelope::Entry::plain(Bytes::copy_from_slice(payload));
    e.tags = tags
        .iter()
        .map(|(t, tok)| crate::cache::envelope::TagToken {
            tag: Bytes::copy_from_slice(t),
            token: Bytes::copy_from_slice(tok),
        })
        .collect();
    e.encode().expect("encodes")
}

/// A tag token query's reply: the tag's token is `token`.
pub(crate) fn token_reply(token: &[u8]) -> Value {
    Value::Array(vec![Value::Bulk(Bytes::from([&[0u8][..], token].concat()))])
}

/// A step's sleep instant.
#[track_caller]
pub(crate) fn sleep<T: core::fmt::Debug, C: core::fmt::Debug>(step: &Step<T, C>) -> Instant {
    match step {
        Step::Sleep(at) => *at,
        other => panic!("expected a Sleep, got {other:?}"),
    }
}
