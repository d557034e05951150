//! Iteration over a namespace (`keys`, `entries`, `values`), one page at a time: a
//! [`KeyCursor`] says where the walk is (which primary, its `SCAN` cursor), and [`NextPage`]
//! takes it one page further. It scans the current primary (going on to the next one when its
//! cursor comes back `0`) until a page has keys; for entries it then reads their values in one
//! `MGET` (split per slot by the client) and drops the ones a tag invalidation made stale
//! ([`TokenCheck`]). At most one page is held at a time.
//!
//! The primaries come from the topology snapshot when the walk starts. Every `SCAN` page, and
//! the reads of one page's values, gets its own time budget: a walk over a large cluster takes
//! as long as it takes, each request does not.

use core::time::Duration;
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::cache::plan;
use crate::client::{Reply, Request, RequestError};
use crate::node_addr::NodeAddr;
use crate::resp::Value;

use super::deadline::Deadline;
use super::exchange::{Exchange, Progress, Results};
use super::fresh::{TokenCheck, keep_fresh};
use super::machine::{Ctx, Input, Machine, Step, unexpected_input};
use super::scan::{Primaries, is_last, primaries_of, read_scan, scan_request, single};
use super::scope::Scope;

/// Where a walk over a namespace's keys is.
#[derive(Clone, Debug)]
pub struct KeyCursor {
    pattern: Vec<u8>,
    nodes: Option<Vec<NodeAddr>>,
    at: usize,
    cursor: Bytes,
}

impl KeyCursor {
    /// A walk over the keys matching `pattern`, not started.
    #[must_use]
    pub fn new(pattern: Vec<u8>) -> Self {
        Self { pattern, nodes: None, at: 0, cursor: Bytes::from_static(b"0") }
    }

    /// Whether every primary has been walked.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.nodes.as_ref().is_some_and(|n| self.at >= n.len())
    }

    /// Takes a `SCAN` reply's cursor: the same node again, or the next one.
    fn advance(&mut self, next: Bytes) {
        if is_last(&next) {
            self.at += 1;
            self.cursor = Bytes::from_static(b"0");
        } else {
            self.cursor = next;
        }
    }
}

/// One page of a walk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// The data keys found (never empty).
    pub keys: Vec<Bytes>,
    /// For entries: one per key, `None` for a key gone or stale since the scan. Empty when only
    /// keys were asked for.
    pub entries: Vec<Option<Entry>>,
    /// How many entries were stale (for the statistics).
    pub stale: u64,
}

/// The outcome of [`NextPage`]: the cursor moved on, and the page, or `None` at the end.
#[derive(Debug)]
pub struct Paged {
    /// Where the walk is now.
    pub cursor: KeyCursor,
    /// The page; `None` when every primary has been walked.
    pub page: Option<Page>,
}

#[derive(Debug)]
enum State {
    Idle,
    Waiting,
    Scanning(Deadline),
    Fetching {
        keys: Vec<Bytes>,
        deadline: Deadline,
    },
    Checking {
        keys: Vec<Bytes>,
        entries: Vec<Option<Entry>>,
        check: TokenCheck,
        round: Exchange,
        deadline: Deadline,
    },
    Over,
}

/// Test-only variants of real bugs, to show that the history checkers catch them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Variant {
    /// As documented.
    #[default]
    Correct,
    /// A page's entries are not checked against their tags' current tokens: an entry a tag
    /// invalidation made stale (and did not delete: a write that raced it, a clean-up that
    /// failed) is yielded, a stale hit.
    NoTokenCheck,
}

/// Takes a walk one page further.
#[derive(Debug)]
pub struct NextPage {
    scope: Arc<Scope>,
    cursor: KeyCursor,
    fetch: bool,
    op: &'static str,
    budget: Duration,
    /// The wait for a first topology, bounded by one budget from the start.
    wait: Option<Deadline>,
    state: State,
    variant: Variant,
}

impl NextPage {
    /// The next page of keys; each request bounded by `budget` (reported as operation `op`).
    #[must_use]
    pub const fn keys(scope: Arc<Scope>, cursor: KeyCursor, op: &'static str, budget: Duration) -> Self {
        Self {
            scope,
            cursor,
            fetch: false,
            op,
            budget,
            wait: None,
            state: State::Idle,
            variant: Variant::Correct,
        }
    }

    /// The next page of keys with their entries.
    #[must_use]
    pub const fn entries(scope: Arc<Scope>, cursor: KeyCursor, op: &'static str, budget: Duration) -> Self {
        Self {
            scope,
            cursor,
            fetch: true,
            op,
            budget,
            wait: None,
            state: State::Idle,
            variant: Variant::Correct,
        }
    }

    /// The same page with a test-only bug variant.
    #[doc(hidden)]
    #[must_use]
    pub const fn with_variant(mut self, variant: Variant) -> Self {
        self.variant = variant;
        self
    }

    fn done(&mut self, page: Option<Page>) -> Step<Paged> {
        self.state = State::Over;
        let cursor = KeyCursor::new(Vec::new());
        Step::Done(Ok(Paged { cursor: std::mem::replace(&mut self.cursor, cursor), page }))
    }

    fn fail(&mut self, e: CacheError) -> Step<Paged> {
        self.state = State::Over;
        Step::Done(Err(e))
    }

    /// The next `SCAN` page, once the primaries are known.
    fn scan(&mut self, cx: &Ctx<'_>) -> Step<Paged> {
        if self.cursor.nodes.is_none() {
            let wait = *self.wait.get_or_insert_with(|| Deadline::new(cx.now, self.op, self.budget));
            match primaries_of(cx, &wait) {
                Err(e) => return self.fail(e),
                Ok(Primaries::Wait(at)) => {
                    self.state = State::Waiting;
                    return Step::Sleep(at);
                }
                Ok(Primaries::Known(nodes)) => self.cursor.nodes = Some(nodes),
            }
        }
        let Some(node) = self.cursor.nodes.as_ref().and_then(|n| n.get(self.cursor.at)) else {
            return self.done(None);
        };
        let deadline = Deadline::new(cx.now, self.op, self.budget);
        match scan_request(node, &self.cursor.cursor, &self.cursor.pattern, cx.now, &deadline) {
            Ok(req) => {
                self.state = State::Scanning(deadline);
                Step::Send(vec![req])
            }
            Err(e) => self.fail(e),
        }
    }

    fn scanned(
        &mut self,
        cx: &Ctx<'_>,
        deadline: &Deadline,
        reply: Result<Reply, RequestError>,
    ) -> Step<Paged> {
        let (next, keys) = match single("SCAN", reply, deadline).and_then(read_scan) {
            Ok(p) => p,
            Err(e) => return self.fail(e),
        };
        self.cursor.advance(next);
        if keys.is_empty() {
            return self.scan(cx);
        }
        if !self.fetch {
            return self.done(Some(Page { keys, entries: Vec::new(), stale: 0 }));
        }
        let deadline = Deadline::new(cx.now, self.op, self.budget);
        let read = self.scope.storage.read_many(keys.iter().cloned());
        match deadline.remaining(cx.now) {
            Ok(t) => {
                self.state = State::Fetching { keys, deadline };
                Step::Send(vec![Request::command(read).with_timeout(t)])
            }
            Err(e) => self.fail(e),
        }
    }

    /// The page's stored values, decoded.
    fn entries_of(&self, keys: &[Bytes], v: Value) -> Result<Vec<Option<Entry>>, CacheError> {
        let Value::Array(items) = v else {
            return Err(plan::read_stored(v)
                .err()
                .unwrap_or(CacheError::UnexpectedReply { command: "MGET", got: "not an array".into() }));
        };
        if items.len() != keys.len() {
            return Err(CacheError::UnexpectedReply {
                command: "MGET",
                got: format!("{} values for {} keys", items.len(), keys.len()),
            });
        }
        let storage = self.scope.storage;
        items.into_iter().map(|i| plan::read_stored(i)?.map(|s| storage.decode(&s)).transpose()).collect()
    }

    fn fetched(
        &mut self,
        cx: &Ctx<'_>,
        keys: Vec<Bytes>,
        deadline: Deadline,
        reply: Result<Reply, RequestError>,
    ) -> Step<Paged> {
        let scope = &self.scope;
        let entries = match single("MGET", reply, &deadline)
            .and_then(|v| self.entries_of(&keys, v))
            .map_err(|e| scope.storage.error(&scope.name, e))
        {
            Ok(e) => e,
            Err(e) => return self.fail(e),
        };
        let check = TokenCheck::of(entries.iter().flatten());
        if check.is_empty() || self.variant == Variant::NoTokenCheck {
            return self.done(Some(Page { keys, entries, stale: 0 }));
        }
        let mut round = match check.round(&self.scope.ns) {
            Ok(r) => r,
            Err(e) => return self.fail(e),
        };
        match round.start(cx.now, &deadline) {
            Ok(Progress::Send(req)) => {
                self.state = State::Checking { keys, entries, check, round, deadline };
                Step::Send(vec![req])
            }
            Ok(Progress::Done(results)) => self.checked(keys, entries, &check, results),
            Err(e) => self.fail(e),
        }
    }

    fn checked(
        &mut self,
        keys: Vec<Bytes>,
        mut entries: Vec<Option<Entry>>,
        check: &TokenCheck,
        results: Results,
    ) -> Step<Paged> {
        match check.tokens(results) {
            Ok(current) => {
                let stale = keep_fresh(&mut entries, &current, |e| e);
                self.done(Some(Page { keys, entries, stale }))
            }
            Err(e) => self.fail(e),
        }
    }
}

impl Machine for NextPage {
    type Output = Paged;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input) -> Step<Paged> {
        match (std::mem::replace(&mut self.state, State::Over), input) {
            (State::Idle, Input::Start) | (State::Waiting, Input::Woke) => self.scan(cx),
            (State::Scanning(d), Input::Replies(mut r)) if r.len() == 1 => {
                self.scanned(cx, &d, r.pop().expect("one reply"))
            }
            (State::Fetching { keys, deadline }, Input::Replies(mut r)) if r.len() == 1 => {
                self.fetched(cx, keys, deadline, r.pop().expect("one reply"))
            }
            (State::Checking { keys, entries, check, mut round, deadline }, Input::Replies(mut r))
                if r.len() == 1 =>
            {
                match round.on_reply(cx.now, &deadline, r.pop().expect("one reply")) {
                    Ok(Progress::Send(req)) => {
                        self.state = State::Checking { keys, entries, check, round, deadline };
                        Step::Send(vec![req])
                    }
                    Ok(Progress::Done(results)) => self.checked(keys, entries, &check, results),
                    Err(e) => self.fail(e),
                }
            }
            (_, other) => unexpected_input("iterate", &other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::envelope::TagToken;
    use crate::cache::op::fresh::tests::{scope, timed_out, token};
    use crate::cache::op::scan::tests::{Driver, page, requests, topology};
    use crate::cache::op::testing::{bulk, server_error};
    #[cfg(feature = "search")]
    use crate::cache::storage::Storage;

    const BUDGET: Duration = Duration::from_secs(1);

    fn cursor() -> KeyCursor {
        KeyCursor::new(b"ns:*".to_vec())
    }

    fn paged(step: Step<Paged>) -> Paged {
        match step {
            Step::Done(Ok(p)) => p,
            other => panic!("expected a page, got {other:?}"),
        }
    }

    fn keys(p: &Paged) -> Vec<&[u8]> {
        p.page.as_ref().map(|p| p.keys.iter().map(AsRef::as_ref).collect()).unwrap_or_default()
    }

    /// Empty pages are skipped, a node's last page moves to the next node, the end is `None`.
    #[test]
    fn walks_each_primary_in_turn() {
        let mut m =
            Driver::new(NextPage::keys(scope(), cursor(), "scan", BUDGET), Some(topology(&[7000, 7001])));
        let r = requests(&m.resume(Input::Start));
        assert_eq!((r[0].0, r[0].1[1].as_str()), (Some(7000), "0"));
        let r = requests(&m.values(vec![Ok(page(b"12", &[]))]));
        assert_eq!((r[0].0, r[0].1[1].as_str()), (Some(7000), "12"), "an empty page: the same node again");
        let p = paged(m.values(vec![Ok(page(b"0", &[b"ns:a"]))]));
        assert_eq!(keys(&p), [b"ns:a"]);
        assert!(p.page.as_ref().is_some_and(|p| p.entries.is_empty()));
        // The next page starts on the second primary.
        let mut m = Driver::new(NextPage::keys(scope(), p.cursor, "scan", BUDGET), m.topology.take());
        let r = requests(&m.resume(Input::Start));
        assert_eq!((r[0].0, r[0].1[1].as_str()), (Some(7001), "0"));
        let p = paged(m.values(vec![Ok(page(b"0", &[]))]));
        assert!(p.page.is_none() && p.cursor.is_done());
        // A finished cursor sends nothing.
        let mut m = Driver::new(NextPage::keys(scope(), p.cursor, "scan", BUDGET), m.topology.take());
        assert!(paged(m.resume(Input::Start)).page.is_none());
    }

    fn tagged(payload: &'static [u8], tok: &'static [u8]) -> Value {
        let mut e = Entry::plain(Bytes::from_static(payload));
        e.tags = vec![TagToken { tag: Bytes::from_static(b"t"), token: Bytes::from_static(tok) }];
        bulk(&e.encode().expect("encodes"))
    }

    /// Values come in one MGET; a key gone meanwhile and a stale entry are left out.
    #[test]
    fn entries_are_read_and_checked() {
        let mut m =
            Driver::new(NextPage::entries(scope(), cursor(), "scan", BUDGET), Some(topology(&[7000])));
        let _ = m.resume(Input::Start);
        let r = requests(&m.values(vec![Ok(page(b"4", &[b"ns:a", b"ns:b", b"ns:c", b"ns:d"]))]));
        assert_eq!(r, [(None, ["MGET", "ns:a", "ns:b", "ns:c", "ns:d"].map(String::from).to_vec())]);
        let mget = Value::Array(vec![bulk(b"plain"), Value::Nil, tagged(b"1", b"x"), tagged(b"2", b"old")]);
        let check = crate::cache::op::testing::pipeline(&m.values(vec![Ok(mget)]));
        assert_eq!(check.len(), 1);
        let p = paged(m.resume(Input::Replies(vec![Ok(Reply::Pipeline(vec![Ok(token(b"x"))]))])));
        let page = p.page.expect("a page");
        let found: Vec<bool> = page.entries.iter().map(Option::is_some).collect();
        assert_eq!(found, [true, false, true, false]);
        assert_eq!(page.stale, 1);
        assert!(!p.cursor.is_done());
    }

    #[test]
    fn untagged_entries_need_no_check() {
        let mut m =
            Driver::new(NextPage::entries(scope(), cursor(), "scan", BUDGET), Some(topology(&[7000])));
        let _ = m.resume(Input::Start);
        let _ = m.values(vec![Ok(page(b"0", &[b"ns:a"]))]);
        let p = paged(m.values(vec![Ok(Value::Array(vec![bulk(b"v")]))]));
        assert_eq!(p.page.map(|p| p.entries.len()), Some(1));
        assert!(p.cursor.is_done());
    }

    #[cfg(feature = "search")]
    #[test]
    fn documents_are_read_with_json_mget() {
        let mut s = (*scope()).clone();
        s.storage = Storage::Document;
        let mut m =
            Driver::new(NextPage::entries(Arc::new(s), cursor(), "scan", BUDGET), Some(topology(&[7000])));
        let _ = m.resume(Input::Start);
        let r = requests(&m.values(vec![Ok(page(b"0", &[b"ns:a"]))]));
        assert_eq!(r[0].1, ["JSON.MGET", "ns:a", "$"]);
        let step = m.values(vec![Err(server_error("ERR unknown command 'JSON.MGET'"))]);
        assert!(matches!(step, Step::Done(Err(CacheError::SearchNotSupported(_)))), "{step:?}");
    }

    #[test]
    fn errors_end_the_page() {
        let start = |fetch: bool| {
            let p = if fetch {
                NextPage::entries(scope(), cursor(), "scan", BUDGET)
            } else {
                NextPage::keys(scope(), cursor(), "scan", BUDGET)
            };
            let mut m = Driver::new(p, Some(topology(&[7000])));
            let _ = m.resume(Input::Start);
            m
        };
        let err = |step: Step<Paged>| match step {
            Step::Done(Err(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        };
        let mut m = start(false);
        assert!(matches!(err(m.values(vec![Err(server_error("ERR x"))])), CacheError::Request(_)));
        let mut m = start(false);
        assert!(matches!(err(m.values(vec![Ok(Value::Nil)])), CacheError::UnexpectedReply { .. }));
        let mut m = start(false);
        assert!(matches!(err(m.values(vec![Err(timed_out())])), CacheError::Timeout { op: "scan", .. }));
        // MGET: fewer values than keys, a corrupt value, a token read that failed.
        let mut m = start(true);
        let _ = m.values(vec![Ok(page(b"0", &[b"ns:a", b"ns:b"]))]);
        assert!(matches!(
            err(m.values(vec![Ok(Value::Array(vec![Value::Nil]))])),
            CacheError::UnexpectedReply { command: "MGET", .. }
        ));
        let mut m = start(true);
        let _ = m.values(vec![Ok(page(b"0", &[b"ns:a"]))]);
        assert!(matches!(
            err(m.values(vec![Ok(Value::Array(vec![bulk(b"\x00x")]))])),
            CacheError::Corrupt { .. }
        ));
        let mut m = start(true);
        let _ = m.values(vec![Ok(page(b"0", &[b"ns:a"]))]);
        let _ = m.values(vec![Ok(Value::Array(vec![tagged(b"1", b"x")]))]);
        let step = m.resume(Input::Replies(vec![Ok(Reply::Pipeline(vec![Err(server_error("ERR y"))]))]));
        assert!(matches!(err(step), CacheError::Request(_)));
        // Out of turn.
        let mut m = start(false);
        assert!(matches!(err(m.resume(Input::Woke)), CacheError::UnexpectedReply { .. }));
    }

    /// No topology yet: it looks again shortly, within one budget.
    #[test]
    fn waits_for_a_topology() {
        let mut m = Driver::new(NextPage::keys(scope(), cursor(), "scan", BUDGET), None);
        assert!(matches!(m.resume(Input::Start), Step::Sleep(_)));
        m.now += BUDGET;
        assert!(matches!(m.resume(Input::Woke), Step::Done(Err(CacheError::Timeout { .. }))));
        let mut m = Driver::new(NextPage::keys(scope(), cursor(), "scan", BUDGET), None);
        let _ = m.resume(Input::Start);
        m.topology = Some(topology(&[7000]));
        assert_eq!(requests(&m.resume(Input::Woke)).len(), 1);
    }

    /// Each SCAN page has its own budget: a long walk over empty pages is no timeout.
    #[test]
    fn each_page_has_its_own_budget() {
        let mut m = Driver::new(NextPage::keys(scope(), cursor(), "scan", BUDGET), Some(topology(&[7000])));
        let _ = m.resume(Input::Start);
        for _ in 0..3 {
            m.now += BUDGET / 2 + Duration::from_millis(100);
            let Step::Send(reqs) = m.values(vec![Ok(page(b"9", &[]))]) else { panic!("another page") };
            assert_eq!(reqs[0].timeout, Some(BUDGET));
        }
    }
}
