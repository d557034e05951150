//! Walking a namespace's keys with `SCAN` on every primary, never replicas: the primaries come
//! from the client's topology snapshot (the cache learns the topology one way only), and are
//! scanned in parallel. [`ScanAll`] counts what matches (`estimated_size`), weighs it
//! (`weighted_size`: `MEMORY USAGE` of each key found) or unlinks it page by page
//! (`invalidate_all`); iteration pages through it one node at a time (see
//! [`iterate`](super::iterate)).
//!
//! Like any `SCAN`, this is not a snapshot: keys written meanwhile may or may not be seen, and
//! a slot migrating meanwhile can hide or repeat keys.
//!
//! **Durability of `invalidate_all`.** With [`Durability::Replicas`], each page's unlinks go on
//! the node's blocking lane ([`Cmd::blocking`]), one `UNLINK` per slot in one pipeline, followed
//! by a `WAIT` on the connection that ran the last of them ([`Cmd::after`]); the pipeline keeps
//! its commands for one node on one connection, so the `WAIT` covers the whole page (and, as
//! replication offsets only grow, everything that connection wrote before). A node whose
//! replicas fall short (or whose connection is gone before the `WAIT` could run there) is
//! noted; its remaining pages are still unlinked, without more `WAIT`s (the call's outcome is
//! decided, and each would cost the full timeout); every node still goes to its end, and the
//! call then fails with [`CacheError::NotDurable`] (unless a node failed: its error comes
//! first). The keys are gone from the primaries either way; retrying is safe.

use core::time::Duration;
use std::collections::BTreeSet;
use std::time::Instant;

use bytes::Bytes;

use crate::cache::durability::Durability;
use crate::cache::error::CacheError;
use crate::cache::plan;
use crate::client::{Cmd, Reply, Request, RequestError};
use crate::keys::Namespace;
use crate::node_addr::NodeAddr;
use crate::resp::Value;
use crate::slot::{Slot, key_slot};
use crate::topology::Topology;

use super::deadline::Deadline;
use super::machine::{Ctx, Input, Machine, Step, unexpected_input};

/// How long to wait before looking at the topology again when the client has none yet.
pub const TOPOLOGY_POLL: Duration = Duration::from_millis(10);

/// Keys asked of a node per `SCAN` page.
pub const PAGE: u32 = 1000;

/// Every distinct primary of `topology`, in shard order.
#[must_use]
pub fn primaries(topology: &Topology) -> Vec<NodeAddr> {
    let mut seen = BTreeSet::new();
    topology.primaries().filter(|n| seen.insert(n.addr.clone())).map(|n| n.addr.clone()).collect()
}

/// The primaries to scan, or the instant to look again (the client has no topology yet).
#[derive(Debug)]
pub enum Primaries {
    /// Scan these.
    Known(Vec<NodeAddr>),
    /// Sleep until then and ask again.
    Wait(Instant),
}

/// The primaries in `cx`'s topology snapshot.
///
/// # Errors
/// No topology yet and the deadline has passed.
pub fn primaries_of(cx: &Ctx<'_>, deadline: &Deadline) -> Result<Primaries, CacheError> {
    match cx.topology {
        Some(t) => Ok(Primaries::Known(primaries(t))),
        None => {
            deadline.remaining(cx.now)?;
            Ok(Primaries::Wait((cx.now + TOPOLOGY_POLL).min(deadline.at())))
        }
    }
}

/// `SCAN cursor MATCH pattern COUNT 1000` for one node.
///
/// # Errors
/// The deadline has passed.
pub fn scan_request(
    node: &NodeAddr,
    cursor: &Bytes,
    pattern: &[u8],
    now: Instant,
    deadline: &Deadline,
) -> Result<Request, CacheError> {
    let cmd = Cmd::new("SCAN").arg(cursor.clone()).arg("MATCH").arg(pattern.to_vec()).arg("COUNT").arg(PAGE);
    Ok(Request::node(node.clone(), cmd).with_timeout(deadline.remaining(now)?))
}

/// The value of a one-command request's reply.
///
/// # Errors
/// The request failed (a timeout is the operation's), or the reply has another shape.
pub fn single(
    command: &'static str,
    reply: Result<Reply, RequestError>,
    deadline: &Deadline,
) -> Result<Value, CacheError> {
    match reply.map_err(|e| deadline.request_error(e))? {
        Reply::Value(v) => Ok(v),
        other => Err(CacheError::UnexpectedReply { command, got: format!("{other:?}") }),
    }
}

/// Reads a `SCAN` reply: the next cursor (`0` when the node is done) and the keys.
///
/// # Errors
/// A server error or another shape.
pub fn read_scan(v: Value) -> Result<(Bytes, Vec<Bytes>), CacheError> {
    let v = match v {
        Value::Error(e) => {
            return Err(CacheError::Request(RequestError::Server(crate::server_error::ServerError::new(e))));
        }
        v => v,
    };
    let Value::Array(mut parts) = v else {
        return Err(CacheError::UnexpectedReply { command: "SCAN", got: format!("{v:?}") });
    };
    let keys = parts.pop();
    let next = parts.pop();
    match (next, keys) {
        (Some(Value::Bulk(next)), Some(Value::Array(keys))) if parts.is_empty() => {
            Ok((next, keys.into_iter().filter_map(|k| k.as_bytes().cloned()).collect()))
        }
        (n, k) => Err(CacheError::UnexpectedReply { command: "SCAN", got: format!("{n:?} {k:?}") }),
    }
}

/// Whether a `SCAN` cursor says the node is done.
#[must_use]
pub fn is_last(cursor: &Bytes) -> bool {
    cursor.as_ref() == b"0"
}

/// What [`ScanAll`] does with the keys it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    /// Counts them.
    Count,
    /// Unlinks them, page by page, and counts what was unlinked.
    Unlink,
    /// Sums their `MEMORY USAGE` (bytes), asked page by page (a key gone meanwhile weighs 0).
    Weigh,
}

#[derive(Debug)]
struct NodeScan {
    addr: NodeAddr,
    cursor: Bytes,
    done: bool,
    error: Option<CacheError>,
}

#[derive(Debug)]
enum Sent {
    Scan(usize),
    /// The unlink or the weighing of a node's last page; for a durable unlink, the replicas
    /// its `WAIT` asks for.
    Page(usize, Option<u32>),
}

/// Scans every primary for each pattern in turn (the primaries of one pattern in parallel).
///
/// Each round sends, per node, its next `SCAN` page together with the `UNLINK` (or the
/// `MEMORY USAGE` pipeline) of the page it found last. A node that fails stops; the others go on to their end, and the first failed
/// node's error (in shard order) is the outcome, before any further pattern.
#[derive(Debug)]
pub struct ScanAll {
    patterns: Vec<Vec<u8>>,
    next_pattern: usize,
    sweep: Sweep,
    deadline: Deadline,
    nodes: Vec<NodeScan>,
    /// Pages found and not yet unlinked or weighed, by node.
    pages: Vec<(usize, Vec<Bytes>)>,
    sent: Vec<Sent>,
    waiting: bool,
    total: u64,
    /// How far unlinks must be acknowledged (`Primary` for counting and weighing).
    durability: Durability,
    /// Nodes (by address, across patterns) whose replicas fell short: (acknowledged, wanted).
    short: Vec<(NodeAddr, i64, i64)>,
}

impl ScanAll {
    /// Counts the keys matching `pattern` on every primary.
    #[must_use]
    pub fn count(pattern: Vec<u8>, deadline: Deadline) -> Self {
        Self::new(vec![pattern], Sweep::Count, deadline)
    }

    /// Unlinks the keys matching each of `patterns` on every primary; the outcome is how many
    /// were unlinked.
    #[must_use]
    pub const fn unlink(patterns: Vec<Vec<u8>>, deadline: Deadline) -> Self {
        Self::new(patterns, Sweep::Unlink, deadline)
    }

    /// Sums the `MEMORY USAGE` of the keys matching `pattern` on every primary, in bytes.
    #[must_use]
    pub fn weigh(pattern: Vec<u8>, deadline: Deadline) -> Self {
        Self::new(vec![pattern], Sweep::Weigh, deadline)
    }

    /// Unlinks every key of namespace `ns` on every primary: its data keys, then its tag keys,
    /// then its reverse-index keys (`invalidate_all`), each page acknowledged by replicas as
    /// `durability` says (see the module's docs).
    #[must_use]
    pub fn unlink_namespace(ns: &Namespace, durability: Durability, deadline: Deadline) -> Self {
        let patterns = vec![ns.scan_pattern(), ns.tag_scan_pattern(), ns.reverse_scan_pattern()];
        Self { durability, ..Self::unlink(patterns, deadline) }
    }

    const fn new(patterns: Vec<Vec<u8>>, sweep: Sweep, deadline: Deadline) -> Self {
        Self {
            patterns,
            next_pattern: 0,
            sweep,
            deadline,
            nodes: Vec::new(),
            pages: Vec::new(),
            sent: Vec::new(),
            waiting: false,
            total: 0,
            durability: Durability::Primary,
            short: Vec::new(),
        }
    }

    /// The outcome once every pattern is done: the total, or `NotDurable` for the first node
    /// (in the order they fell short) whose replicas did not acknowledge.
    fn outcome(&self) -> Result<u64, CacheError> {
        match self.short.first() {
            Some((_, acked, wanted)) => Err(CacheError::NotDurable { acked: *acked, wanted: *wanted }),
            None => Ok(self.total),
        }
    }

    /// The `WAIT` a page of node `i` needs: replicas and timeout, or `None` (not an unlink,
    /// durability off, the shard lists no replica, or the node already fell short).
    fn wait_for(&self, cx: &Ctx<'_>, i: usize, slot: Slot) -> Option<(u32, u64)> {
        if self.sweep != Sweep::Unlink || self.short.iter().any(|(a, _, _)| *a == self.nodes[i].addr) {
            return None;
        }
        self.durability.wait_for(slot, cx.topology)
    }

    /// Starts the next pattern, once the primaries are known.
    fn next_pattern(&mut self, cx: &Ctx<'_>) -> Step<u64> {
        if self.next_pattern >= self.patterns.len() {
            return Step::Done(self.outcome());
        }
        match primaries_of(cx, &self.deadline) {
            Err(e) => Step::Done(Err(e)),
            Ok(Primaries::Wait(at)) => {
                self.waiting = true;
                Step::Sleep(at)
            }
            Ok(Primaries::Known(addrs)) => {
                self.next_pattern += 1;
                self.nodes = addrs
                    .into_iter()
                    .map(|addr| NodeScan { addr, cursor: Bytes::from_static(b"0"), done: false, error: None })
                    .collect();
                self.send(cx)
            }
        }
    }

    /// The next round: the pages to unlink or weigh and every live node's next page.
    fn send(&mut self, cx: &Ctx<'_>) -> Step<u64> {
        let mut requests = Vec::new();
        let mut sent = Vec::new();
        let timeout = match self.deadline.remaining(cx.now) {
            Ok(t) => t,
            Err(e) => return Step::Done(Err(e)),
        };
        for (i, keys) in std::mem::take(&mut self.pages) {
            let last_slot = keys.last().map_or_else(|| key_slot(b""), |k| key_slot(k));
            match self.wait_for(cx, i, last_slot) {
                Some((n, ms)) => {
                    requests.push(durable_unlink(keys, n, ms).with_timeout(timeout));
                    sent.push(Sent::Page(i, Some(n)));
                }
                None => {
                    requests.push(page_request(self.sweep, keys).with_timeout(timeout));
                    sent.push(Sent::Page(i, None));
                }
            }
        }
        let pattern = &self.patterns[self.next_pattern - 1];
        for (i, n) in self.nodes.iter().enumerate().filter(|(_, n)| !n.done) {
            match scan_request(&n.addr, &n.cursor, pattern, cx.now, &self.deadline) {
                Ok(r) => requests.push(r),
                Err(e) => return Step::Done(Err(e)),
            }
            sent.push(Sent::Scan(i));
        }
        if requests.is_empty() {
            // This pattern is done on every node.
            if let Some(e) = self.nodes.iter_mut().find_map(|n| n.error.take()) {
                return Step::Done(Err(e));
            }
            return self.next_pattern(cx);
        }
        self.sent = sent;
        Step::Send(requests)
    }

    fn fail(&mut self, i: usize, e: CacheError) {
        let n = &mut self.nodes[i];
        n.done = true;
        n.error.get_or_insert(e);
        self.pages.retain(|(j, _)| *j != i);
    }

    fn on_replies(&mut self, cx: &Ctx<'_>, replies: Vec<Result<Reply, RequestError>>) -> Step<u64> {
        if replies.len() != self.sent.len() {
            return Step::Done(Err(CacheError::UnexpectedReply {
                command: "SCAN",
                got: format!("{} replies for {} requests", replies.len(), self.sent.len()),
            }));
        }
        for (sent, reply) in std::mem::take(&mut self.sent).into_iter().zip(replies) {
            match sent {
                Sent::Scan(i) => match single("SCAN", reply, &self.deadline).and_then(read_scan) {
                    Ok((next, keys)) => {
                        let n = &mut self.nodes[i];
                        if n.error.is_some() {
                            continue;
                        }
                        n.done = is_last(&next);
                        n.cursor = next;
                        if !keys.is_empty() {
                            match self.sweep {
                                Sweep::Count => self.total += keys.len() as u64,
                                Sweep::Unlink | Sweep::Weigh => self.pages.push((i, keys)),
                            }
                        }
                    }
                    Err(e) => self.fail(i, e),
                },
                Sent::Page(i, None) => match read_page(self.sweep, reply, &self.deadline) {
                    Ok(n) => self.total = self.total.saturating_add(n),
                    Err(e) => self.fail(i, e),
                },
                Sent::Page(i, Some(want)) => match read_durable_unlink(reply, &self.deadline) {
                    Ok((n, acked)) => {
                        self.total = self.total.saturating_add(n);
                        let want = i64::from(want);
                        if acked < want {
                            self.short.push((self.nodes[i].addr.clone(), acked, want));
                        }
                    }
                    Err(e) => self.fail(i, e),
                },
            }
        }
        self.send(cx)
    }
}

/// The request for a page of keys: one `UNLINK` of them all (split per slot by the client), or
/// a pipeline of one `MEMORY USAGE key SAMPLES 0` per key (every element of a container
/// counted), on the primaries.
fn page_request(sweep: Sweep, keys: Vec<Bytes>) -> Request {
    if sweep == Sweep::Weigh {
        let cmds = keys
            .into_iter()
            .map(|k| Cmd::new("MEMORY").arg("USAGE").arg(k).arg("SAMPLES").arg(0u8).with_read_only(false))
            .collect();
        return Request::pipeline(cmds);
    }
    let mut cmd = Cmd::new("UNLINK");
    for k in keys {
        cmd.push_arg(k);
    }
    Request::command(cmd)
}

/// A page's unlinks that replicas must acknowledge: one `UNLINK` per slot (in the order the
/// slots first appear), all on the node's blocking lane, then `WAIT replicas timeout_ms` on the
/// connection that ran the last one. One pipeline keeps a node's commands on one connection,
/// so the `WAIT` follows every unlink of the page there.
fn durable_unlink(keys: Vec<Bytes>, replicas: u32, timeout_ms: u64) -> Request {
    let mut by_slot: Vec<(Slot, Cmd)> = Vec::new();
    for k in keys {
        let slot = key_slot(&k);
        match by_slot.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, cmd)) => cmd.push_arg(k),
            None => by_slot.push((slot, Cmd::new("UNLINK").arg(k))),
        }
    }
    let last = by_slot.last().map(|(s, _)| *s);
    let mut cmds: Vec<Cmd> = by_slot.into_iter().map(|(s, c)| c.with_slot(s).blocking()).collect();
    if let Some(slot) = last {
        let wait = Cmd::new("WAIT").arg(replicas).arg(timeout_ms).with_slot(slot).with_read_only(false);
        cmds.push(wait.after(cmds.len() - 1));
    }
    Request::pipeline(cmds)
}

/// Reads a [`durable_unlink`]'s reply: the keys unlinked and the replicas that acknowledged
/// (`0` when the connection was gone before the `WAIT` could run on it).
///
/// # Errors
/// The request failed, an `UNLINK` failed, or a reply of another shape.
fn read_durable_unlink(
    reply: Result<Reply, RequestError>,
    deadline: &Deadline,
) -> Result<(u64, i64), CacheError> {
    let mut results = match reply.map_err(|e| deadline.request_error(e))? {
        Reply::Pipeline(results) if !results.is_empty() => results,
        other => return Err(CacheError::UnexpectedReply { command: "UNLINK", got: format!("{other:?}") }),
    };
    let wait = results.pop().unwrap_or(Err(RequestError::Internal { what: "a WAIT without its reply" }));
    let mut unlinked = 0u64;
    for r in results {
        let v = r.map_err(|e| deadline.request_error(e))?;
        unlinked = unlinked.saturating_add(u64::try_from(plan::read_int("UNLINK", &v)?).unwrap_or(0));
    }
    let acked = match wait {
        Ok(v) => plan::read_int("WAIT", &v)?,
        // The connection that ran the unlinks is gone before the WAIT could run there:
        // nothing says a replica has them.
        Err(RequestError::ConnectionLost { .. } | RequestError::Skipped { .. }) => 0,
        Err(e) => return Err(deadline.request_error(e)),
    };
    Ok((unlinked, acked))
}

/// What a page's request amounts to: the keys unlinked, or the bytes they use.
fn read_page(
    sweep: Sweep,
    reply: Result<Reply, RequestError>,
    deadline: &Deadline,
) -> Result<u64, CacheError> {
    if sweep != Sweep::Weigh {
        let n = plan::read_int("UNLINK", &single("UNLINK", reply, deadline)?)?;
        return Ok(u64::try_from(n).unwrap_or(0));
    }
    let results = match reply.map_err(|e| deadline.request_error(e))? {
        Reply::Pipeline(results) => results,
        other => {
            return Err(CacheError::UnexpectedReply { command: "MEMORY USAGE", got: format!("{other:?}") });
        }
    };
    let mut bytes = 0u64;
    for r in results {
        match r.map_err(|e| deadline.request_error(e))? {
            // The key expired or was deleted since the scan found it.
            Value::Nil => {}
            v => {
                bytes = bytes.saturating_add(u64::try_from(plan::read_int("MEMORY USAGE", &v)?).unwrap_or(0))
            }
        }
    }
    Ok(bytes)
}

impl Machine for ScanAll {
    type Output = u64;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input) -> Step<u64> {
        match input {
            Input::Start if self.next_pattern == 0 && !self.waiting => self.next_pattern(cx),
            Input::Woke if self.waiting => {
                self.waiting = false;
                self.next_pattern(cx)
            }
            Input::Replies(replies) if !self.sent.is_empty() => self.on_replies(cx, replies),
            other => unexpected_input("scan", &other),
        }
    }
}

#[cfg(test)]
mod durable_tests;

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Instant;

    use super::*;
    use crate::cache::op::fresh::tests::timed_out;
    use crate::cache::op::testing::{Counting, bulk, server_error};
    use crate::client::RequestKind;
    use crate::slot::Slot;
    use crate::topology::{Node, Shard, SlotRange};

    /// A topology of one primary per port, the slots split between them.
    pub(crate) fn topology(ports: &[u16]) -> Topology {
        let per = 16384 / u16::try_from(ports.len()).expect("few");
        let shards = ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let i = u16::try_from(i).expect("few");
                let range = SlotRange::new(
                    Slot::new(i * per).expect("slot"),
                    Slot::new(i * per + per - 1).expect("slot"),
                )
                .expect("range");
                Shard {
                    slots: vec![range],
                    primary: Node::from_addr(NodeAddr::new("127.0.0.1", *p)),
                    replicas: vec![],
                }
            })
            .collect();
        Topology::from_shards(shards).expect("valid")
    }

    /// Drives a machine by hand with a topology (or none).
    pub(crate) struct Driver<M> {
        pub(crate) machine: M,
        pub(crate) now: Instant,
        pub(crate) topology: Option<Topology>,
        entropy: Counting,
    }

    impl<M: Machine> Driver<M> {
        #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
        pub(crate) fn new(machine: M, topology: Option<Topology>) -> Self {
            Self { machine, now: Instant::now(), topology, entropy: Counting(0) }
        }

        pub(crate) fn resume(&mut self, input: Input<M::Answer>) -> Step<M::Output, M::Call> {
            let mut cx = Ctx {
                now: self.now,
                wall_ms: 1_700_000_000_000,
                entropy: &mut self.entropy,
                topology: self.topology.as_ref(),
            };
            self.machine.resume(&mut cx, input)
        }

        /// Answers the last `Send` with one value per request.
        pub(crate) fn values(
            &mut self,
            values: Vec<Result<Value, RequestError>>,
        ) -> Step<M::Output, M::Call> {
            self.resume(Input::Replies(values.into_iter().map(|v| v.map(Reply::Value)).collect()))
        }
    }

    /// The requests of a `Send`, as (node or `None`, words).
    pub(crate) fn requests<T: core::fmt::Debug, C: core::fmt::Debug>(
        step: &Step<T, C>,
    ) -> Vec<(Option<u16>, Vec<String>)> {
        let Step::Send(reqs) = step else { panic!("expected a Send, got {step:?}") };
        reqs.iter()
            .map(|r| match &r.kind {
                RequestKind::Node(a, c) => (Some(a.port()), crate::cache::op::testing::words(c)),
                RequestKind::Command(c) => (None, crate::cache::op::testing::words(c)),
                other => panic!("unexpected request {other:?}"),
            })
            .collect()
    }

    /// A `SCAN` reply.
    pub(crate) fn page(next: &[u8], keys: &[&[u8]]) -> Value {
        Value::Array(vec![bulk(next), Value::Array(keys.iter().map(|k| bulk(k)).collect())])
    }

    #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
    fn deadline() -> Deadline {
        Deadline::new(Instant::now(), "estimated_size", Duration::from_secs(5))
    }

    fn done(step: Step<u64>) -> Result<u64, CacheError> {
        match step {
            Step::Done(r) => r,
            other => panic!("expected an outcome, got {other:?}"),
        }
    }

    #[test]
    fn counts_every_primary_in_parallel_page_by_page() {
        let mut m = Driver::new(ScanAll::count(b"ns:*".to_vec(), deadline()), Some(topology(&[7000, 7001])));
        let first = requests(&m.resume(Input::Start));
        assert_eq!(first.len(), 2);
        assert_eq!(
            first[0],
            (Some(7000), ["SCAN", "0", "MATCH", "ns:*", "COUNT", "1000"].map(String::from).to_vec())
        );
        assert_eq!(first[1].0, Some(7001));
        let second =
            requests(&m.values(vec![Ok(page(b"17", &[b"ns:a", b"ns:b"])), Ok(page(b"0", &[b"ns:c"]))]));
        assert_eq!(second.len(), 1, "only the unfinished node: {second:?}");
        assert_eq!((second[0].0, second[0].1[1].as_str()), (Some(7000), "17"));
        assert_eq!(done(m.values(vec![Ok(page(b"0", &[]))])).ok(), Some(3));
    }

    #[test]
    fn unlinks_each_page_while_scanning_the_next_then_the_next_pattern() {
        let scan = ScanAll::unlink(vec![b"ns:*".to_vec(), b"tag:*".to_vec()], deadline());
        let mut m = Driver::new(scan, Some(topology(&[7000])));
        let _ = m.resume(Input::Start);
        let round = requests(&m.values(vec![Ok(page(b"5", &[b"ns:a", b"ns:b"]))]));
        assert_eq!(round[0], (None, ["UNLINK", "ns:a", "ns:b"].map(String::from).to_vec()));
        assert_eq!((round[1].0, round[1].1[1].as_str()), (Some(7000), "5"));
        let round = requests(&m.values(vec![Ok(Value::Int(2)), Ok(page(b"0", &[b"ns:c"]))]));
        assert_eq!(round, [(None, ["UNLINK", "ns:c"].map(String::from).to_vec())]);
        let round = requests(&m.values(vec![Ok(Value::Int(1))]));
        assert_eq!(round[0].1[3], "tag:*", "the second pattern: {round:?}");
        let round = requests(&m.values(vec![Ok(page(b"0", &[b"tag:x"]))]));
        assert_eq!(round, [(None, ["UNLINK", "tag:x"].map(String::from).to_vec())]);
        assert_eq!(done(m.values(vec![Ok(Value::Int(1))])).ok(), Some(4));
    }

    /// A namespace's data keys first, then its tag and reverse-index keys.
    #[test]
    fn a_namespace_is_its_data_tag_and_reverse_keys() {
        let ns = Namespace::new("ns").expect("valid");
        let scan = ScanAll::unlink_namespace(&ns, Durability::Primary, deadline());
        let mut m = Driver::new(scan, Some(topology(&[7000])));
        let mut patterns = vec![requests(&m.resume(Input::Start))[0].1[3].clone()];
        for _ in 0..2 {
            patterns.push(requests(&m.values(vec![Ok(page(b"0", &[]))]))[0].1[3].clone());
        }
        let expected = [ns.scan_pattern(), ns.tag_scan_pattern(), ns.reverse_scan_pattern()];
        assert_eq!(patterns, expected.map(|p| String::from_utf8(p).expect("text")));
        assert_eq!(done(m.values(vec![Ok(page(b"0", &[]))])).ok(), Some(0));
    }

    #[test]
    fn weighs_each_page_while_scanning_the_next() {
        let mut m = Driver::new(ScanAll::weigh(b"ns:*".to_vec(), deadline()), Some(topology(&[7000])));
        let _ = m.resume(Input::Start);
        let round = m.resume(Input::Replies(vec![Ok(Reply::Value(page(b"5", &[b"ns:a", b"ns:b"])))]));
        let Step::Send(reqs) = &round else { panic!("{round:?}") };
        let RequestKind::Pipeline(cmds) = &reqs[0].kind else { panic!("{reqs:?}") };
        let words: Vec<Vec<String>> = cmds.iter().map(crate::cache::op::testing::words).collect();
        assert_eq!(words[0], ["MEMORY", "USAGE", "ns:a", "SAMPLES", "0"]);
        assert_eq!(cmds[1].read_only_override(), Some(false), "on the primary");
        assert_eq!(requests(&Step::<u64>::Send(vec![reqs[1].clone()]))[0].1[1], "5");
        // ns:b went away meanwhile: it weighs nothing.
        let weighed = Reply::Pipeline(vec![Ok(Value::Int(72)), Ok(Value::Nil)]);
        let round = m.resume(Input::Replies(vec![Ok(weighed), Ok(Reply::Value(page(b"0", &[b"ns:c"])))]));
        assert!(matches!(&round, Step::Send(r) if r.len() == 1), "{round:?}");
        let r = done(m.resume(Input::Replies(vec![Ok(Reply::Pipeline(vec![Ok(Value::Int(8))]))])));
        assert_eq!(r.ok(), Some(80));
        // An error reply to one key fails the weighing.
        let mut m = Driver::new(ScanAll::weigh(b"ns:*".to_vec(), deadline()), Some(topology(&[7000])));
        let _ = m.resume(Input::Start);
        let _ = m.values(vec![Ok(page(b"0", &[b"ns:a"]))]);
        let r = done(m.resume(Input::Replies(vec![Ok(Reply::Pipeline(vec![Err(server_error("ERR x"))]))])));
        assert!(matches!(r, Err(CacheError::Request(RequestError::Server(_)))), "{r:?}");
    }

    #[test]
    fn a_failed_node_fails_the_scan_after_the_others_finish() {
        let mut m = Driver::new(ScanAll::count(b"ns:*".to_vec(), deadline()), Some(topology(&[7000, 7001])));
        let _ = m.resume(Input::Start);
        let next = requests(&m.values(vec![Err(server_error("ERR boom")), Ok(page(b"9", &[b"ns:a"]))]));
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].0, Some(7001));
        let r = done(m.values(vec![Ok(page(b"0", &[]))]));
        assert!(matches!(r, Err(CacheError::Request(RequestError::Server(_)))), "{r:?}");
    }

    #[test]
    fn malformed_scan_replies_are_errors() {
        for bad in [
            Value::Int(1),
            Value::Array(vec![bulk(b"0")]),
            Value::Array(vec![Value::Int(0), Value::Array(vec![])]),
        ] {
            let mut m = Driver::new(ScanAll::count(b"ns:*".to_vec(), deadline()), Some(topology(&[7000])));
            let _ = m.resume(Input::Start);
            let r = done(m.values(vec![Ok(bad)]));
            assert!(matches!(r, Err(CacheError::UnexpectedReply { command: "SCAN", .. })), "{r:?}");
        }
        let mut m = Driver::new(ScanAll::count(b"ns:*".to_vec(), deadline()), Some(topology(&[7000])));
        let _ = m.resume(Input::Start);
        let r = done(m.resume(Input::Replies(vec![Ok(Reply::Pipeline(vec![]))])));
        assert!(matches!(r, Err(CacheError::UnexpectedReply { .. })), "{r:?}");
    }

    #[test]
    fn a_timeout_is_the_operations() {
        let mut m = Driver::new(ScanAll::count(b"ns:*".to_vec(), deadline()), Some(topology(&[7000])));
        let _ = m.resume(Input::Start);
        let r = done(m.values(vec![Err(timed_out())]));
        assert!(matches!(r, Err(CacheError::Timeout { op: "estimated_size", .. })), "{r:?}");
        // The deadline passes between pages: nothing more is sent.
        let mut m = Driver::new(ScanAll::count(b"ns:*".to_vec(), deadline()), Some(topology(&[7000])));
        let _ = m.resume(Input::Start);
        m.now += Duration::from_secs(6);
        let r = done(m.values(vec![Ok(page(b"3", &[]))]));
        assert!(matches!(r, Err(CacheError::Timeout { .. })), "{r:?}");
    }

    /// No topology yet: it looks again shortly, until the deadline.
    #[test]
    fn waits_for_a_topology() {
        let mut m = Driver::new(ScanAll::count(b"ns:*".to_vec(), deadline()), None);
        let Step::Sleep(at) = m.resume(Input::Start) else { panic!("expected a sleep") };
        assert_eq!(at, m.now + TOPOLOGY_POLL);
        m.topology = Some(topology(&[7000]));
        assert_eq!(requests(&m.resume(Input::Woke)).len(), 1);
        let mut m = Driver::new(ScanAll::count(b"ns:*".to_vec(), deadline()), None);
        let _ = m.resume(Input::Start);
        m.now += Duration::from_secs(6);
        assert!(matches!(done(m.resume(Input::Woke)), Err(CacheError::Timeout { .. })));
    }

    #[test]
    fn primaries_are_distinct_in_shard_order() {
        let t = topology(&[7002, 7000, 7001]);
        let ports: Vec<u16> = primaries(&t).iter().map(NodeAddr::port).collect();
        assert_eq!(ports, [7002, 7000, 7001]);
    }

    #[test]
    fn input_out_of_turn_is_an_error() {
        let mut m = Driver::new(ScanAll::count(b"ns:*".to_vec(), deadline()), Some(topology(&[7000])));
        assert!(matches!(done(m.resume(Input::Woke)), Err(CacheError::UnexpectedReply { .. })));
    }
}
