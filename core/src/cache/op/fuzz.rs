//! Fuzz target body for the cache operations' step machines (re-exported by `crate::fuzzing`;
//! also run by the unit tests).
//!
//! The input is a [`Setup`] (the namespace's durability and sliding expiry, the client's
//! topology: none, one shard or three with replicas, and how the cluster answers) followed by
//! [`Op`]s: reads (plain, with TTLs, probes), writes with tags and leases, tag and key
//! invalidation, expiry, refresh marks, compare-and-set, compute, loads (miss and refresh, with
//! and without the lock), look-ups, iteration pages (keys and entries), scans (count, weigh,
//! unlink), lock acquisition, the eviction check, and `FLUSHDB`/`maxmemory` on every primary.
//! Each operation is one machine, driven to its end the way the async layer drives it: every
//! request of a `Send` gets a result drawn from the input (the right container or the wrong
//! one, a per-command value from a menu of plausible and implausible replies: nil, `OK`,
//! integers, stored entries with tags, tag tokens, scan pages, config pairs, RESP3 types no
//! command of the cache returns, and every kind of request error: timeouts, `MOVED`/`ASK`,
//! `TRYAGAIN`, `OOM`, lost connections, redirect loops); every round takes 1 to 256 ms, a
//! timed-out request 100 ms more; a `Sleep` moves time to its instant; a `Call` (the compute
//! function, the loader) is answered from the input too. When the input runs out, every
//! request times out.
//!
//! Checked for every machine: nothing panics; it reaches `Done` within [`MAX_STEPS`] resumes;
//! it never asks to send nothing or an empty pipeline (the client refuses those). In the two
//! strict modes of the setup, the outcome must be a failure: when every request fails
//! ([`Mode::AllFail`]), and when every reply is a RESP3 big number, a type none of the cache's
//! commands returns ([`Mode::AllGarbage`]). "A failure" is `Err`, or for the operations that
//! report failures inside an `Ok` outcome, that report: a load's `result` (or, when the loader
//! was called and its value returned, a warning that the store failed), the eviction check's
//! `error` or a primary's. With mixed replies nothing stronger holds soundly (a wrong reply to a best-effort
//! command may be rightly ignored), so nothing more is asserted there.

use core::time::Duration;
use std::sync::Arc;
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;

use crate::cache::durability::Durability;
use crate::cache::envelope::{Entry, TagToken};
use crate::cache::error::CacheError;
use crate::cache::eviction_class::EvictionClass;
use crate::cache::storage::Storage;
use crate::client::{ConnError, ConnErrorKind, Reply, Request, RequestError, RequestKind, TimeoutStage};
use crate::keys::{EncodedKey, Namespace};
use crate::resp::Value;
use crate::server_error::ServerError;
use crate::topology::{Node, Shard, SlotRange, Topology};
use crate::{NodeAddr, Slot};

use super::cas::{Cas, Change};
use super::compute::{Apply, ComputeEntry, Decision};
use super::deadline::Deadline;
use super::eviction::CheckEviction;
use super::expiry::ExpireEntry;
use super::flush::{FlushAll, Maximum, SetMaximum};
use super::invalidate::InvalidateKey;
use super::invalidate_tags::InvalidateTags;
use super::iterate::{KeyCursor, NextPage};
use super::load::{CallLoader, Load, LoadConfig, LoadKind, Loaded, Prepared, Warning};
use super::lock::AcquireLock;
use super::lookup::LookUp;
use super::machine::{Ctx, Entropy, Input, Machine, Step};
use super::read::ReadEntries;
use super::refresh_mark::MarkRefreshable;
use super::scan::ScanAll;
use super::scope::Scope;
use super::write::{Write, WriteEntries};

/// Most operations one input plays.
pub(crate) const MAX_OPS: usize = 64;

/// Most resumes one machine may take before it must be done.
pub(crate) const MAX_STEPS: usize = 20_000;

/// The keys operations use.
const KEYS: [&[u8]; 4] = [b"ns:a", b"ns:b", b"ns:{t}1", b"ns:user:1000"];

/// The tags entries carry and invalidations name.
const TAGS: [&[u8]; 3] = [b"red", b"green", b"blue"];

/// Words for config-like replies.
const WORDS: [&str; 8] =
    ["maxmemory", "0", "1048576", "maxmemory-policy", "allkeys-lru", "volatile-ttl", "noeviction", "1"];

/// How the cluster answers.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Every reply drawn from the input.
    Mixed,
    /// Every request fails (its error drawn from the input).
    AllFail,
    /// Every reply, in the right container, is a RESP3 big number.
    AllGarbage,
}

/// The namespace and the client's topology.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Setup {
    /// Invalidations wait for a replica (else the primary only).
    pub(crate) replicas: bool,
    /// Sliding expiry (`expire_after_read`) of this many ms.
    pub(crate) slide: Option<u16>,
    /// No topology (0), one shard (1), three shards with replicas (2, 3).
    pub(crate) topology: u8,
    pub(crate) mode: Mode,
}

/// One operation.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Read `1 + n % 3` keys: plain (0), with TTLs (1), a probe (2).
    Read(u8, u8, u8),
    /// Write `1 + n % 3` entries with these tags (bit set over [`TAGS`]), a TTL, a lease.
    Write(u8, u8, u8, Option<u16>, bool),
    /// Invalidate `1 + n % 3` tags from the first.
    InvalidateTags(u8, u8),
    /// Invalidate a key.
    InvalidateKey(u8),
    /// Set a key's expiry.
    Expire(u8, u16),
    /// Mark a key for a reload in `ms`.
    MarkRefresh(u8, u16),
    /// Compare-and-set: if the key still holds what was read (or is absent), set it (with these
    /// tags) or delete it.
    Cas(u8, bool, bool, u8),
    /// Compute on a key, at most `1 + n % 4` attempts.
    Compute(u8, u8),
    /// Load a key: miss or refresh, with a lock held for `ms` or none.
    Load(u8, bool, Option<u16>),
    /// Look a key up.
    LookUp(u8),
    /// One page of an iteration: keys, or entries.
    Page(bool, u16),
    /// Scan every primary: count (0), weigh (1), unlink the namespace (2).
    Scan(u8),
    /// Take a key's lock for `ms`.
    Lock(u8, u16),
    /// Check eviction, refusing the classes of this bit set.
    Eviction(u8),
    /// `FLUSHDB` (0), `CONFIG GET maxmemory` (1), `CONFIG SET maxmemory` (2) on every primary,
    /// allowed or not.
    Primaries(u8, bool),
    /// Time passes.
    Advance(u16),
}

/// A per-command reply.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Val {
    /// The command failed (first: what an exhausted input yields).
    Fail(Fail),
    Nil,
    Ok,
    Int(i8),
    /// A short bulk string.
    Bulk([u8; 3], u8),
    /// A stored entry: payload byte, tags (bit set), token byte, refresh time.
    Stored(u8, u8, u8, Option<u16>),
    /// A tag token query's reply: one token per tag asked (`n % 4` of them), or nil tokens.
    Tokens(u8, u8, bool),
    /// A scan page: next cursor (0: the last), keys.
    ScanPage(u8, u8),
    /// A flat array of config words.
    Words([u8; 4], u8),
    /// An array of `n % 4` small integers.
    Ints(u8, i8),
    /// A type none of the cache's commands returns.
    Odd(u8),
}

/// How a request fails.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    Timeout,
    /// A server error: `MOVED`, `ASK`, `TRYAGAIN`, `ERR`, `NOSCRIPT`, `CLUSTERDOWN`, `OOM`,
    /// `WRONGTYPE`, `LOADING`, `READONLY` (`n % 10`).
    Server(u8),
    ConnectionLost,
    Unreachable,
    RedirectLoop,
    QueueFull,
}

/// How a whole request is answered.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// The request fails (first: what an exhausted input yields).
    Fail(Fail),
    /// The right container, one value per command (per primary).
    Right,
    /// The wrong container: a pipeline answered with one value, a command with a pipeline.
    Wrong,
    /// The right container with one value too many (or, for a single command, none at all:
    /// an empty pipeline).
    Extra,
    /// The right container with one value too few.
    Short,
}

/// What the function of a compute decides, or a loader returns.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decide {
    Keep,
    Delete,
    Set(Option<u16>),
    /// The function (loader) failed.
    Fail,
    /// The loader's value cannot be stored (an encoding error).
    Unstorable,
}

/// Deterministic randomness.
#[derive(Debug)]
struct Counter(u64);

impl Entropy for Counter {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            *b = (self.0 >> 56) as u8;
        }
    }
}

/// What the driver saw of one machine's run.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) steps: usize,
    pub(crate) requests: usize,
    pub(crate) calls: usize,
}

/// The cluster and the driver around the machines.
pub(crate) struct World<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    now: Instant,
    wall_ms: u64,
    entropy: Counter,
    topology: Option<Topology>,
    mode: Mode,
    scope: Arc<Scope>,
    /// Counters, for tests that check a scenario went where it meant to.
    pub(crate) ok: usize,
    pub(crate) failed: usize,
}

/// `cache_ops`: plays the input against the cache operations' machines and checks the
/// invariants in the module docs; panics when one breaks.
pub fn cache_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else { return };
    let mut world = World::new(&setup, &mut u);
    for _ in 0..MAX_OPS {
        if world.u.is_empty() {
            break;
        }
        let Ok(op) = Op::arbitrary(world.u) else { break };
        world.play(&op);
    }
}

/// A three-shard topology with a replica per shard (or one shard without).
fn topology(kind: u8) -> Option<Topology> {
    let slot = |n| Slot::new(n).expect("slot");
    let shard = |start, end, port: u16, replica: bool| Shard {
        slots: vec![SlotRange::new(slot(start), slot(end)).expect("range")],
        primary: Node::from_addr(NodeAddr::new("10.0.0.1", port)),
        replicas: if replica {
            vec![Node {
                role: crate::topology::Role::Replica,
                ..Node::from_addr(NodeAddr::new("10.0.0.2", port))
            }]
        } else {
            Vec::new()
        },
    };
    let shards = match kind % 4 {
        0 => return None,
        1 => vec![shard(0, 16383, 7000, false)],
        _ => {
            vec![shard(0, 5460, 7000, true), shard(5461, 10922, 7001, true), shard(10923, 16383, 7002, true)]
        }
    };
    Some(Topology::from_shards(shards).expect("a valid topology"))
}

fn key(i: u8) -> EncodedKey {
    EncodedKey::new(Bytes::from_static(KEYS[usize::from(i) % KEYS.len()]))
}

/// The tags of bit set `bits`.
fn tags(bits: u8) -> Vec<Bytes> {
    TAGS.iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, t)| Bytes::from_static(t))
        .collect()
}

fn token(b: u8) -> Bytes {
    Bytes::from(vec![b; 16])
}

fn server_error(text: &str) -> RequestError {
    RequestError::Server(ServerError::new(Bytes::copy_from_slice(text.as_bytes())))
}

impl Fail {
    fn error(self) -> RequestError {
        let addr = || NodeAddr::new("10.0.0.1", 7000);
        let conn = || ConnError::new(ConnErrorKind::Closed, "connection reset by peer");
        match self {
            Self::Timeout => RequestError::Timeout { stage: TimeoutStage::Reply, attempts: 1 },
            Self::Server(n) => server_error(
                [
                    "MOVED 1 10.0.0.1:7001",
                    "ASK 1 10.0.0.1:7002",
                    "TRYAGAIN Multiple keys request during rehashing of slot",
                    "ERR something went wrong",
                    "NOSCRIPT No matching script.",
                    "CLUSTERDOWN Hash slot not served",
                    "OOM command not allowed when used memory > 'maxmemory'.",
                    "WRONGTYPE Operation against a key holding the wrong kind of value",
                    "LOADING Valkey is loading the dataset in memory",
                    "READONLY You can't write against a read only replica.",
                ][usize::from(n % 10)],
            ),
            Self::ConnectionLost => RequestError::ConnectionLost { addr: addr(), error: conn() },
            Self::Unreachable => RequestError::Unreachable { addr: addr(), error: conn() },
            Self::RedirectLoop => RequestError::RedirectLoop { slot: Slot::new(1).expect("slot") },
            Self::QueueFull => RequestError::QueueFull { addr: addr() },
        }
    }
}

impl Val {
    fn value(&self) -> Result<Value, RequestError> {
        let bulk = |b: &[u8]| Value::Bulk(Bytes::copy_from_slice(b));
        Ok(match self {
            Self::Fail(f) => return Err(f.error()),
            Self::Nil => Value::Nil,
            Self::Ok => Value::Simple(Bytes::from_static(b"OK")),
            Self::Int(n) => Value::Int(i64::from(*n)),
            Self::Bulk(b, n) => bulk(&b[..usize::from(n % 4)]),
            Self::Stored(payload, bits, tok, refresh) => {
                let mut e = Entry::plain(Bytes::from(vec![*payload; 4]));
                e.tags = tags(*bits).into_iter().map(|tag| TagToken { tag, token: token(*tok) }).collect();
                e.refresh_at_ms = refresh.map(|ms| 1_700_000_000_000 + u64::from(ms));
                match e.encode() {
                    Ok(b) => Value::Bulk(b),
                    Err(_) => Value::Nil,
                }
            }
            Self::Tokens(n, tok, nil) => Value::Array(
                (0..n % 4)
                    .map(|_| if *nil { Value::Nil } else { bulk(&[&[0u8][..], &token(*tok)].concat()) })
                    .collect(),
            ),
            Self::ScanPage(cursor, n) => Value::Array(vec![
                bulk(cursor.to_string().as_bytes()),
                Value::Array((0..n % 4).map(|i| bulk(KEYS[usize::from(i)])).collect()),
            ]),
            Self::Words(w, n) => Value::Array(
                w.iter()
                    .take(usize::from(n % 5))
                    .map(|i| bulk(WORDS[usize::from(*i) % WORDS.len()].as_bytes()))
                    .collect(),
            ),
            Self::Ints(n, v) => Value::Array((0..n % 4).map(|_| Value::Int(i64::from(*v))).collect()),
            Self::Odd(n) => match n % 4 {
                0 => Value::BigNumber(Bytes::from_static(b"12345678901234567890")),
                1 => Value::Double(0.5),
                2 => Value::Bool(true),
                _ => Value::Map(vec![(Value::Nil, Value::Nil)]),
            },
        })
    }
}

impl<'a, 'b> World<'a, 'b> {
    pub(crate) fn new(setup: &Setup, u: &'a mut Unstructured<'b>) -> Self {
        // The one real instant: the origin of virtual time. Nothing below reads a clock.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let scope = Arc::new(Scope {
            ns: Namespace::new("ns").expect("valid"),
            name: "ns:".into(),
            storage: Storage::Envelope,
            max_value_size: 1 << 20,
            durability: if setup.replicas {
                Durability::Replicas { replicas: 1, timeout: Duration::from_millis(50) }
            } else {
                Durability::Primary
            },
            expire_after_read_ms: setup.slide.map(u64::from),
        });
        Self {
            u,
            now,
            wall_ms: 1_700_000_000_000,
            entropy: Counter(0),
            topology: topology(setup.topology),
            mode: setup.mode,
            scope,
            ok: 0,
            failed: 0,
        }
    }

    fn draw<T: for<'c> Arbitrary<'c>>(&mut self) -> Option<T> {
        T::arbitrary(self.u).ok()
    }

    /// A budget of 10 to 2,057 ms.
    fn deadline(&mut self, op: &'static str) -> Deadline {
        let ms: u16 = self.draw().unwrap_or(0);
        Deadline::new(self.now, op, Duration::from_millis(10 + u64::from(ms % 2048)))
    }

    /// One per-command reply.
    fn value(&mut self) -> Result<Value, RequestError> {
        match self.mode {
            Mode::AllFail => Err(self.draw::<Fail>().unwrap_or(Fail::Timeout).error()),
            Mode::AllGarbage => Ok(Value::BigNumber(Bytes::from_static(b"7"))),
            Mode::Mixed => self.draw::<Val>().unwrap_or(Val::Fail(Fail::Timeout)).value(),
        }
    }

    /// The result of one request.
    fn reply(&mut self, req: &Request) -> Result<Reply, RequestError> {
        let shape = match self.mode {
            Mode::AllFail => Shape::Fail(self.draw().unwrap_or(Fail::Timeout)),
            Mode::AllGarbage => Shape::Right,
            Mode::Mixed => self.draw().unwrap_or(Shape::Fail(Fail::Timeout)),
        };
        let primaries = self.topology.as_ref().map_or(0, |t| t.shards().len());
        let n = match &req.kind {
            RequestKind::Pipeline(cmds) => cmds.len(),
            RequestKind::AllPrimaries(_) => primaries,
            _ => 1,
        };
        let n = match shape {
            Shape::Fail(f) => return Err(f.error()),
            Shape::Right | Shape::Wrong => n,
            Shape::Extra => n + 1,
            Shape::Short => n.saturating_sub(1),
        };
        let values: Vec<Result<Value, RequestError>> = (0..n).map(|_| self.value()).collect();
        let wrong = shape == Shape::Wrong;
        Ok(match &req.kind {
            RequestKind::Pipeline(_) if wrong => {
                Reply::Value(values.into_iter().next().and_then(Result::ok).unwrap_or(Value::Nil))
            }
            RequestKind::Pipeline(_) => Reply::Pipeline(values),
            RequestKind::AllPrimaries(_) if !wrong => Reply::PerNode(
                values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (NodeAddr::new("10.0.0.1", 7000 + i as u16), v))
                    .collect(),
            ),
            _ if wrong || shape == Shape::Extra || shape == Shape::Short => Reply::Pipeline(values),
            _ => match values.into_iter().next() {
                Some(v) => Reply::Value(v?),
                None => Reply::Pipeline(Vec::new()),
            },
        })
    }

    /// Drives `m` to its end, answering its calls with `answer`.
    fn drive<M: Machine>(
        &mut self,
        mut m: M,
        mut answer: impl FnMut(&mut Self, M::Call) -> M::Answer,
    ) -> (Result<M::Output, CacheError>, Tally) {
        let mut tally = Tally::default();
        let mut input = Input::Start;
        while tally.steps < MAX_STEPS {
            tally.steps += 1;
            let mut cx = Ctx {
                now: self.now,
                wall_ms: self.wall_ms,
                entropy: &mut self.entropy,
                topology: self.topology.as_ref(),
            };
            input = match m.resume(&mut cx, input) {
                Step::Send(reqs) => {
                    assert!(!reqs.is_empty(), "a machine asked to send nothing");
                    for r in &reqs {
                        if let RequestKind::Pipeline(cmds) = &r.kind {
                            assert!(!cmds.is_empty(), "a machine asked for an empty pipeline");
                        }
                    }
                    tally.requests += reqs.len();
                    let replies: Vec<_> = reqs.iter().map(|r| self.reply(r)).collect();
                    let timed_out = replies.iter().any(|r| matches!(r, Err(RequestError::Timeout { .. })));
                    let ms = 1 + u64::from(self.draw::<u8>().unwrap_or(0)) + if timed_out { 100 } else { 0 };
                    self.advance(ms);
                    Input::Replies(replies)
                }
                Step::Sleep(at) => {
                    if at > self.now {
                        let ms = u64::try_from((at - self.now).as_millis()).unwrap_or(u64::MAX);
                        self.now = at;
                        self.wall_ms = self.wall_ms.saturating_add(ms);
                    }
                    Input::Woke
                }
                Step::Call(c) => {
                    tally.calls += 1;
                    Input::Answer(answer(self, c))
                }
                Step::Done(r) => {
                    if r.is_ok() {
                        self.ok += 1;
                    } else {
                        self.failed += 1;
                    }
                    return (r, tally);
                }
            };
        }
        panic!("a machine did not finish in {MAX_STEPS} steps ({tally:?})");
    }

    fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        self.wall_ms += ms;
    }

    /// Runs a machine that calls nothing; in a strict mode, its outcome must be an error.
    fn plain<M: Machine>(&mut self, what: &str, m: M)
    where
        M::Output: core::fmt::Debug,
    {
        let (r, tally) = self.drive(m, |_, _| unreachable!("this machine calls nothing"));
        self.strict(what, r.is_err(), &r, &tally);
    }

    /// In a strict mode, an operation that sent anything must have failed.
    fn strict(&self, what: &str, failed: bool, outcome: &dyn core::fmt::Debug, tally: &Tally) {
        if self.mode != Mode::Mixed && tally.requests > 0 {
            assert!(failed, "{what} succeeded although every reply was wrong ({:?}): {outcome:?}", self.mode);
        }
    }

    /// A loader's answer.
    fn loaded(&mut self) -> Loaded<()> {
        let entry = || Entry::plain(Bytes::from_static(b"loaded"));
        match self.draw().unwrap_or(Decide::Fail) {
            Decide::Keep | Decide::Delete => Loaded::Value {
                value: (),
                store: Ok(Prepared { entry: entry(), ttl_ms: None, on_update: None }),
            },
            Decide::Set(ttl) => Loaded::Value {
                value: (),
                store: Ok(Prepared { entry: entry(), ttl_ms: ttl.map(u64::from), on_update: Some(Some(5)) }),
            },
            Decide::Fail => Loaded::Failed(CacheError::LoaderAborted("the loader failed".into())),
            Decide::Unstorable => Loaded::Value {
                value: (),
                store: Err(CacheError::TooLarge { size: 2 << 20, limit: 1 << 20 }),
            },
        }
    }

    pub(crate) fn play(&mut self, op: &Op) {
        let scope = self.scope.clone();
        match *op {
            Op::Read(k, n, how) => {
                let keys = (0..=n % 3).map(|i| key(k.wrapping_add(i))).collect();
                let d = self.deadline("get");
                let m = match how % 3 {
                    0 => ReadEntries::machine(scope, keys, d),
                    1 => ReadEntries::with_ttl(scope, keys, d),
                    _ => ReadEntries::probe(scope, keys, d),
                };
                self.plain("read", m);
            }
            Op::Write(k, n, bits, ttl, lease) => {
                let writes = (0..=n % 3)
                    .map(|i| {
                        let tags = tags(bits.wrapping_add(i));
                        Write {
                            key: key(k.wrapping_add(i)),
                            entry: Entry::plain(Bytes::from_static(b"value")),
                            ttl_ms: ttl.map(u64::from),
                            on_update: None,
                            lease: lease.then(|| tags.iter().map(|_| token(1)).collect()),
                            tags,
                        }
                    })
                    .collect();
                let d = self.deadline("set");
                match WriteEntries::machine(scope, writes, d) {
                    Ok(m) => self.plain("write", m),
                    Err(e) => panic!("a valid write was refused: {e}"),
                }
            }
            Op::InvalidateTags(first, n) => {
                let tags = (0..=n % 3)
                    .map(|i| Bytes::from_static(TAGS[usize::from(first.wrapping_add(i)) % 3]))
                    .collect::<Vec<_>>();
                let mut tags = tags;
                tags.dedup();
                let d = self.deadline("invalidate_by_tags");
                self.plain("invalidate_by_tags", InvalidateTags::machine(scope, tags, d));
            }
            Op::InvalidateKey(k) => {
                let d = self.deadline("invalidate");
                self.plain("invalidate", InvalidateKey::machine(scope, key(k), d));
            }
            Op::Expire(k, ms) => {
                let d = self.deadline("expire");
                self.plain("expire", ExpireEntry::machine(scope, key(k), u64::from(ms) + 1, d));
            }
            Op::MarkRefresh(k, ms) => {
                let d = self.deadline("refresh_after");
                let m = MarkRefreshable::machine(scope, key(k), Duration::from_millis(u64::from(ms)), d);
                self.plain("refresh_after", m);
            }
            Op::Cas(k, absent, set, bits) => {
                let read = Val::Stored(1, bits, 1, None).value().ok().and_then(|v| match v {
                    Value::Bulk(b) => Some(b),
                    _ => None,
                });
                let change = if set {
                    Change::Set {
                        entry: Entry::plain(Bytes::from_static(b"new")),
                        ttl_ms: None,
                        tags: tags(bits),
                        expect: None,
                    }
                } else {
                    Change::Delete
                };
                let d = self.deadline("compare_and_set");
                let read = if absent { None } else { read.as_ref() };
                match Cas::machine(scope, key(k), read, change, d) {
                    Ok(m) => self.plain("compare_and_set", m),
                    Err(e) => panic!("a valid compare-and-set was refused: {e}"),
                }
            }
            Op::Compute(k, attempts) => {
                let d = self.deadline("compute");
                let m = ComputeEntry::<()>::new(scope, key(k), 1 + u32::from(attempts % 4), d);
                let (r, tally) = self.drive(m, |w, Apply { .. }| match w.draw().unwrap_or(Decide::Fail) {
                    Decide::Keep => Ok(Decision::Keep(())),
                    Decide::Delete => Ok(Decision::Delete),
                    Decide::Set(ttl) => Ok(Decision::Set {
                        entry: Entry::plain(Bytes::from_static(b"computed")),
                        ttl_ms: ttl.map(u64::from),
                        value: (),
                    }),
                    Decide::Fail | Decide::Unstorable => {
                        Err(CacheError::LoaderAborted("the function failed".into()))
                    }
                });
                self.strict("compute", r.is_err(), &r, &tally);
            }
            Op::Load(k, refresh, lock) => {
                let kind = if refresh { LoadKind::Refresh } else { LoadKind::Miss };
                let ms: u16 = self.draw().unwrap_or(0);
                let config = LoadConfig {
                    op_timeout: Duration::from_millis(10 + u64::from(ms % 2048)),
                    lock_hold: lock.map(|ms| Duration::from_millis(u64::from(ms))),
                };
                let m = Load::<()>::new(scope, key(k), kind, config);
                let (r, tally) = self.drive(m, |w, CallLoader| w.loaded());
                // A load that called its loader returns the value even when storing it failed:
                // then a warning says so.
                let failed = r.as_ref().map_or(true, |o| {
                    o.result.is_err() || o.warnings.iter().any(|w| matches!(w, Warning::StoreFailed(_)))
                });
                self.strict("load", failed, &r, &tally);
            }
            Op::LookUp(k) => {
                let d = self.deadline("get");
                self.plain("look-up", LookUp::new(scope, key(k), d));
            }
            Op::Page(entries, ms) => {
                let budget = Duration::from_millis(10 + u64::from(ms % 2048));
                let cursor = KeyCursor::new(b"ns:*".to_vec());
                let m = if entries {
                    NextPage::entries(scope, cursor, "entries", budget)
                } else {
                    NextPage::keys(scope, cursor, "keys", budget)
                };
                self.plain("iteration page", m);
            }
            Op::Scan(how) => {
                let d = self.deadline("scan");
                let m = match how % 3 {
                    0 => ScanAll::count(b"ns:*".to_vec(), d),
                    1 => ScanAll::weigh(b"ns:*".to_vec(), d),
                    _ => ScanAll::unlink_namespace(&scope.ns, scope.durability, d),
                };
                self.plain("scan", m);
            }
            Op::Lock(k, ms) => {
                let d = self.deadline("lock");
                let m = AcquireLock::new(
                    scope,
                    key(k),
                    Duration::from_millis(u64::from(ms)),
                    d,
                    Duration::from_millis(50),
                );
                self.plain("lock", m);
            }
            Op::Eviction(bits) => {
                let classes = [EvictionClass::Unlimited, EvictionClass::AllKeys];
                let refuse = classes
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, c)| *c)
                    .collect();
                let d = self.deadline("check_eviction");
                let (r, tally) = self.drive(CheckEviction::new(refuse, d), |_, c| match c {});
                let failed = r.as_ref().map_or(true, |report| {
                    report.error.is_some() || report.primaries.iter().any(|p| p.error.is_some())
                });
                self.strict("check_eviction", failed, &r, &tally);
            }
            Op::Primaries(what, allowed) => {
                let d = self.deadline("primaries");
                match what % 3 {
                    0 => self.plain("flush", FlushAll::new(allowed, d)),
                    1 => self.plain("maxmemory", Maximum::new(d)),
                    _ => self.plain("set maxmemory", SetMaximum::new(allowed, Some(1 << 20), d)),
                }
            }
            Op::Advance(ms) => self.advance(u64::from(ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation once, with small arguments.
    fn every_op() -> Vec<Op> {
        vec![
            Op::Read(0, 2, 0),
            Op::Read(1, 0, 1),
            Op::Read(2, 1, 2),
            Op::Write(0, 1, 3, Some(1000), false),
            Op::Write(1, 0, 7, None, true),
            Op::InvalidateTags(0, 2),
            Op::InvalidateKey(1),
            Op::Expire(2, 500),
            Op::MarkRefresh(3, 100),
            Op::Cas(0, false, true, 1),
            Op::Cas(1, true, false, 0),
            Op::Compute(2, 3),
            Op::Load(0, false, None),
            Op::Load(1, true, Some(200)),
            Op::LookUp(3),
            Op::Page(false, 100),
            Op::Page(true, 100),
            Op::Scan(0),
            Op::Scan(1),
            Op::Scan(2),
            Op::Lock(0, 300),
            Op::Eviction(3),
            Op::Primaries(0, true),
            Op::Primaries(1, false),
            Op::Primaries(2, true),
            Op::Advance(1000),
        ]
    }

    /// Plays every operation with replies drawn from `data`, returning (ok, failed).
    fn play_all(setup: &Setup, data: &[u8]) -> (usize, usize) {
        let mut u = Unstructured::new(data);
        let mut w = World::new(setup, &mut u);
        for op in every_op() {
            w.play(&op);
        }
        (w.ok, w.failed)
    }

    fn setup(mode: Mode, topology: u8) -> Setup {
        Setup { replicas: topology == 2, slide: (topology == 3).then_some(500), topology, mode }
    }

    #[test]
    fn strict_modes_fail_every_operation() {
        let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for mode in [Mode::AllFail, Mode::AllGarbage] {
            for topology in 0..4 {
                let (ok, failed) = play_all(&setup(mode, topology), &noise);
                assert!(failed > 0, "{mode:?} {topology}: ok {ok}, failed {failed}");
            }
        }
    }

    #[test]
    fn exhausted_input_times_out() {
        for topology in 0..4 {
            let (_, failed) = play_all(&setup(Mode::Mixed, topology), b"");
            assert!(failed > 0);
        }
    }

    #[test]
    fn mixed_replies_reach_success() {
        // Replies that are mostly `Right` containers of `OK`/integers/entries.
        let mut total_ok = 0;
        for seed in 0..64u32 {
            let data: Vec<u8> = (0..8192u32)
                .map(|i| (i.wrapping_add(seed).wrapping_mul(2_246_822_519) >> 11) as u8)
                .collect();
            for topology in 0..4 {
                let (ok, _) = play_all(&setup(Mode::Mixed, topology), &data);
                total_ok += ok;
            }
        }
        assert!(total_ok > 0, "no operation ever succeeded: the harness never reaches success paths");
    }

    #[test]
    fn cache_ops_takes_any_bytes() {
        cache_ops(b"");
        cache_ops(&[0xff; 64]);
        cache_ops(&[0; 300]);
        let data: Vec<u8> = (0..=255).chain((0..=255u8).rev()).collect();
        cache_ops(&data);
        for i in 0..32u8 {
            let data: Vec<u8> = (0..2048u32).map(|j| (j as u8).wrapping_mul(i | 1).wrapping_add(i)).collect();
            cache_ops(&data);
        }
    }
}
