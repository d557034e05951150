//! `search` and `query`: the matches over the whole cluster, sorted and paginated exactly.
//!
//! First the indexes are ensured ([`EnsureIndex`]). Then `FT.SEARCH` goes to every primary's
//! index, one request each **addressed to that primary**, asking for its first
//! `offset + limit` keys (`NOCONTENT`); the pages are merged here ([`reply::merge`]). An index
//! found missing (dropped behind the namespace's back, or its shard's slots moved) makes the
//! machine forget the known indexes and start over, once. Then `JSON.MGET` reads the page's
//! documents (split per slot by the client; documents deleted since are left out), and the tag
//! tokens they carry are checked ([`TokenCheck`]): entries made stale by a tag invalidation are
//! left out too.
//!
//! # Each key once, every document
//!
//! Each primary's index covers the documents that primary holds, so a page is exact only if
//! every primary holding documents answers, once. What a demanding caller expects of a page:
//! no key twice, no document missed because of the topology the client had, `offset`/`limit`
//! pages that neither overlap nor skip, and a `total` that counts each document once. So:
//!
//! - **one request per distinct primary, addressed to it** and not redirected (see
//!   [`fan_out`]): an answer proves that node serves its index's slot now, and no node answers
//!   for two homes. The old fan-out routed each index name by its slot and followed the
//!   redirects: after a failover, a `MOVED`-patched map listed the demoted primary (with the
//!   slots not yet redirected) and the promoted one (with the others) as two primaries, both
//!   requests reached the promoted node, and its two indexes both covered its documents: a page
//!   listed keys twice and the total counted them twice (93 pages over 400 simulated seeds);
//!   and a primary whose named slot had moved away was not asked at all;
//! - **a stale plan is planned again**: a primary that answers `MOVED` (it lost the slot: a
//!   failover, a resharding) or `ASK` (the slot is migrating away: its index is named by
//!   another of its slots), or that cannot be reached while the topology now names other
//!   primaries, sends the machine back to the index check with the client's topology (which the
//!   `MOVED` patched and a refresh replaces), after a poll interval, within the deadline;
//! - **the merge counts a key once** ([`reply::merge`]), for the moments when one document is
//!   on two primaries (a migration in flight); offsets stay exact.
//!
//! A primary the client's topology does not list at all (slots moved to a node added since its
//! last refresh, before any request met a `MOVED`) is not asked: the client's periodic refresh
//! and every `MOVED` bound that window. [`Variant::PerSlotFanOut`] keeps the old fan-out as a
//! test-only bug variant.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::cache::plan;
use crate::cache::search::query::{self, Filter, Knn, SortBy, SortOrder};
use crate::cache::search::refusal::{Refusal, not_supported};
use crate::cache::search::reply::{self, ShardPage};
use crate::cache::search::{IndexHome, SearchError};
use crate::client::{Cmd, Reply, Request, RequestError};
use crate::resp::Value;
use crate::slot::Slot;

use super::deadline::Deadline;
use super::exchange::{Exchange, Progress};
use super::fan_out::{self, Answer, Routing};
use super::fresh::TokenCheck;
use super::machine::{Ctx, Input, Machine, Step, unexpected_input};
use super::scope::Scope;
use super::search_index::{EnsureIndex, IndexNews, IndexSpec, KnownIndexes};

/// The page size when none is given.
pub const DEFAULT_LIMIT: usize = 10;

/// Test-only variants of real bugs, to show that the simulation catches them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Variant {
    /// The protocol as documented.
    #[default]
    Correct,
    /// The page's documents are returned without checking their tags' tokens: an entry whose
    /// tag was invalidated but whose document is still there (its delete was lost) is served.
    SkipTokenCheck,
    /// The old fan-out: one index per primary of the client's topology, each request routed by
    /// its index's slot with the redirects followed, and pages merged without counting a key
    /// once. After a failover a `MOVED`-patched topology sends two index names to one node, and
    /// a page lists keys twice.
    PerSlotFanOut,
}

/// What to search for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// Full-text words over the schema's TEXT fields (`search`), or `None` (`query`).
    pub text: Option<String>,
    /// Conditions on schema fields, all of which must hold.
    pub filters: Vec<Filter>,
    /// Sort by a sortable field.
    pub sort: Option<SortBy>,
    /// Nearest neighbours on a VECTOR field (cannot be combined with `sort`).
    pub knn: Option<Knn>,
    /// Results to skip over the whole cluster.
    pub offset: usize,
    /// Results to return; 0 means [`DEFAULT_LIMIT`].
    pub limit: usize,
}

/// A page found.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// Matches over every shard (stale entries included).
    pub total: u64,
    /// The page's full data keys and entries, in order, without documents deleted since the
    /// search or made stale by a tag invalidation.
    pub items: Vec<(Bytes, Entry)>,
    /// How many of the page's entries were stale.
    pub stale: u64,
    /// The offset asked for.
    pub offset: usize,
    /// The limit used.
    pub limit: usize,
    /// What the search learnt about the indexes.
    pub news: IndexNews,
}

/// The query, checked and in the terms of the commands.
#[derive(Debug)]
struct Plan {
    query: String,
    sort: Option<SortBy>,
    knn: Option<Knn>,
    by_score: bool,
    sort_order: Option<SortOrder>,
    /// Results asked of every shard.
    window: usize,
    /// Results that can count at all (k with KNN).
    keep: usize,
    offset: usize,
    limit: usize,
}

impl Plan {
    fn new(spec: &IndexSpec, q: Query) -> Result<Self, SearchError> {
        let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit };
        let window = q
            .offset
            .checked_add(limit)
            .ok_or_else(|| SearchError::InvalidFilter("offset + limit overflows".into()))?;
        let query = query::build_query(&spec.schema, q.text.as_deref(), &q.filters)?;
        let by_score = q.text.as_deref().is_some_and(|t| !query::text_terms(t).is_empty()) && q.knn.is_none();
        if q.knn.is_some() && q.sort.is_some() {
            return Err(SearchError::InvalidFilter(
                "nearest-neighbour results are sorted by distance".into(),
            ));
        }
        // Per shard: its first `window` results; with KNN, at most k of them count.
        let (window, keep) = match &q.knn {
            Some(knn) => (window.min(knn.k), knn.k),
            None => (window, usize::MAX),
        };
        let sort_order =
            if q.knn.is_some() { Some(SortOrder::Asc) } else { q.sort.as_ref().map(|s| s.order) };
        let plan = Self {
            query,
            sort: q.sort,
            knn: q.knn,
            by_score,
            sort_order,
            window,
            keep,
            offset: q.offset,
            limit,
        };
        // Checked before any round trip.
        plan.command(spec, b"")?;
        Ok(plan)
    }

    fn command(&self, spec: &IndexSpec, index: &[u8]) -> Result<Cmd, SearchError> {
        match &self.knn {
            Some(knn) => query::knn_command(&spec.schema, index, &self.query, knn, self.window),
            None => query::search_command(
                &spec.schema,
                index,
                &self.query,
                self.sort.as_ref(),
                self.by_score,
                self.window,
            ),
        }
    }
}

#[derive(Debug)]
enum Phase {
    Ensure(EnsureIndex),
    Search {
        homes: Vec<IndexHome>,
    },
    /// Sleeping before planning again (the plan was stale).
    Replan,
    Read {
        total: u64,
        keys: Vec<Bytes>,
    },
    Fresh {
        total: u64,
        keys: Vec<Bytes>,
        entries: Vec<Option<Entry>>,
        check: TokenCheck,
        round: Exchange,
    },
    Over,
}

/// The `search` / `query` operation.
#[derive(Debug)]
pub struct SearchQuery {
    scope: Arc<Scope>,
    spec: Arc<IndexSpec>,
    known: KnownIndexes,
    deadline: Deadline,
    plan: Plan,
    phase: Phase,
    news: IndexNews,
    retried: bool,
    variant: Variant,
    /// Slots found migrating away: no index is named by them in this search.
    avoid: BTreeSet<Slot>,
}

type Stepped = Result<Step<Found>, CacheError>;

impl SearchQuery {
    /// Searches `scope`'s namespace, whose index is `spec` (the `known` indexes are not checked
    /// first).
    ///
    /// # Errors
    /// [`CacheError::Search`] with [`SearchError::InvalidFilter`] for a query that cannot be
    /// expressed exactly: checked before anything is sent.
    pub fn new(
        scope: Arc<Scope>,
        spec: Arc<IndexSpec>,
        known: KnownIndexes,
        deadline: Deadline,
        query: Query,
    ) -> Result<Self, CacheError> {
        let plan = Plan::new(&spec, query)?;
        Ok(Self {
            scope,
            spec,
            known,
            deadline,
            plan,
            phase: Phase::Over,
            news: IndexNews::default(),
            retried: false,
            variant: Variant::Correct,
            avoid: BTreeSet::new(),
        })
    }

    /// This search with a bug variant (test-only).
    #[must_use]
    pub const fn with_variant(mut self, variant: Variant) -> Self {
        self.variant = variant;
        self
    }

    const fn routing(&self) -> Routing {
        match self.variant {
            Variant::PerSlotFanOut => Routing::BySlot,
            Variant::Correct | Variant::SkipTokenCheck => Routing::ToPrimary,
        }
    }

    /// A fresh index check, skipping the indexes known so far.
    fn ensure_again(&self, forget: bool) -> EnsureIndex {
        let mut known = self.known.clone();
        known.apply(self.news.clone());
        if forget {
            known.clear();
        }
        EnsureIndex::new(self.spec.clone(), known, self.deadline)
            .avoiding(self.avoid.clone())
            .routed(self.routing())
    }

    /// Runs the index check (a fresh one from `Start`) until it is done, then searches.
    fn ensure(&mut self, cx: &mut Ctx<'_>, mut m: EnsureIndex, input: Input) -> Stepped {
        match m.resume(cx, input) {
            Step::Done(Ok(ensured)) => {
                self.news.ready.extend(ensured.news.ready);
                self.search(cx, ensured.homes)
            }
            Step::Done(Err(e)) => Err(e),
            Step::Send(reqs) => {
                self.phase = Phase::Ensure(m);
                Ok(Step::Send(reqs))
            }
            Step::Sleep(at) => {
                self.phase = Phase::Ensure(m);
                Ok(Step::Sleep(at))
            }
            Step::Call(never) => match never {},
        }
    }

    fn search(&mut self, cx: &Ctx<'_>, homes: Vec<IndexHome>) -> Stepped {
        let cmds = homes
            .iter()
            .map(|h| Ok((h, self.plan.command(&self.spec, &self.spec.name(h.slot))?)))
            .collect::<Result<Vec<_>, SearchError>>()?;
        let reqs = fan_out::requests(cmds, self.routing(), cx.now, &self.deadline)?;
        self.phase = Phase::Search { homes };
        Ok(Step::Send(reqs))
    }

    fn after_search(
        &mut self,
        cx: &mut Ctx<'_>,
        homes: &[IndexHome],
        replies: Vec<Result<Reply, RequestError>>,
    ) -> Stepped {
        let with_sort_keys = self.plan.sort_order.is_some();
        let mut pages: Vec<ShardPage> = Vec::with_capacity(homes.len());
        let mut lost_index = false;
        let mut stale = false;
        for a in fan_out::answers(cx, replies, homes, &self.avoid, &self.deadline)? {
            match a {
                Answer::Value(v) => pages.push(reply::parse_search(&v, self.plan.by_score, with_sort_keys)?),
                Answer::Elsewhere(e) => {
                    stale = true;
                    self.avoid.extend(e.migrating);
                }
                Answer::Refused(m) => match Refusal::of(&m) {
                    Refusal::NoModule => return Err(not_supported()),
                    Refusal::NoIndex => lost_index = true,
                    Refusal::Exists | Refusal::Other(_) => return Err(SearchError::Server(m).into()),
                },
            }
        }
        if stale {
            // A primary no longer serves its index's slot: plan again from the topology.
            self.deadline.remaining(cx.now)?;
            self.phase = Phase::Replan;
            return Ok(Step::Sleep(fan_out::next_poll(cx.now, &self.deadline)));
        }
        if lost_index {
            if self.retried {
                return Err(SearchError::Server("search index missing after re-creating it".into()).into());
            }
            // Dropped behind our back (or the shard's slots moved): forget them all, create again.
            self.retried = true;
            let m = self.ensure_again(true);
            self.news = IndexNews { forget: true, ready: Vec::new() };
            return self.ensure(cx, m, Input::Start);
        }
        let p = &self.plan;
        let distinct = self.variant != Variant::PerSlotFanOut;
        let (total, hits) =
            reply::merge_with(pages, p.sort_order, p.by_score, 0, p.keep.min(p.window), distinct);
        let total = total.min(u64::try_from(p.keep).unwrap_or(u64::MAX));
        let keys: Vec<Bytes> = hits.into_iter().skip(p.offset).take(p.limit).map(|h| h.key).collect();
        if keys.is_empty() {
            return Ok(self.finish(total, Vec::new(), Vec::new(), 0));
        }
        let read = Request::command(self.scope.storage.read_many(keys.iter().cloned()))
            .with_timeout(self.deadline.remaining(cx.now)?);
        self.phase = Phase::Read { total, keys };
        Ok(Step::Send(vec![read]))
    }

    fn after_read(
        &mut self,
        cx: &Ctx<'_>,
        total: u64,
        keys: Vec<Bytes>,
        reply: Result<Reply, RequestError>,
    ) -> Stepped {
        let v = match reply.map_err(|e| self.deadline.request_error(e))? {
            Reply::Value(v) => v,
            other => {
                return Err(CacheError::UnexpectedReply { command: "JSON.MGET", got: format!("{other:?}") });
            }
        };
        let Value::Array(docs) = v else {
            return Err(CacheError::UnexpectedReply { command: "JSON.MGET", got: format!("{v:?}") });
        };
        if docs.len() != keys.len() {
            return Err(CacheError::UnexpectedReply {
                command: "JSON.MGET",
                got: format!("{} values", docs.len()),
            });
        }
        let storage = self.scope.storage;
        let entries = docs
            .into_iter()
            .map(|d| plan::read_stored(d)?.map(|b| storage.decode(&b)).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        if self.variant == Variant::SkipTokenCheck {
            return Ok(self.finish(total, keys, entries, 0));
        }
        let Some((check, mut round)) = TokenCheck::for_entries(&self.scope.ns, &entries)? else {
            return Ok(self.finish(total, keys, entries, 0));
        };
        match round.start(cx.now, &self.deadline)? {
            Progress::Send(req) => {
                self.phase = Phase::Fresh { total, keys, entries, check, round };
                Ok(Step::Send(vec![req]))
            }
            Progress::Done(results) => {
                let (entries, stale) = check.keep(entries, results)?;
                Ok(self.finish(total, keys, entries, stale))
            }
        }
    }

    fn finish(
        &mut self,
        total: u64,
        keys: Vec<Bytes>,
        entries: Vec<Option<Entry>>,
        stale: u64,
    ) -> Step<Found> {
        let items = keys.into_iter().zip(entries).filter_map(|(k, e)| e.map(|e| (k, e))).collect();
        Step::Done(Ok(Found {
            total,
            items,
            stale,
            offset: self.plan.offset,
            limit: self.plan.limit,
            news: std::mem::take(&mut self.news),
        }))
    }

    fn step(&mut self, cx: &mut Ctx<'_>, input: Input) -> Stepped {
        match (std::mem::replace(&mut self.phase, Phase::Over), input) {
            (Phase::Over, Input::Start) => {
                let m = EnsureIndex::new(self.spec.clone(), self.known.clone(), self.deadline)
                    .routed(self.routing());
                self.ensure(cx, m, Input::Start)
            }
            (Phase::Ensure(m), input @ (Input::Replies(_) | Input::Woke)) => self.ensure(cx, m, input),
            (Phase::Search { homes }, Input::Replies(r)) => self.after_search(cx, &homes, r),
            (Phase::Replan, Input::Woke) => {
                let m = self.ensure_again(false);
                self.ensure(cx, m, Input::Start)
            }
            (Phase::Read { total, keys }, Input::Replies(mut r)) if r.len() == 1 => {
                let reply = r.pop().unwrap_or(Err(RequestError::Closed));
                self.after_read(cx, total, keys, reply)
            }
            (Phase::Fresh { total, keys, entries, check, mut round }, Input::Replies(mut r))
                if r.len() == 1 =>
            {
                let reply = r.pop().unwrap_or(Err(RequestError::Closed));
                match round.on_reply(cx.now, &self.deadline, reply)? {
                    Progress::Send(req) => {
                        self.phase = Phase::Fresh { total, keys, entries, check, round };
                        Ok(Step::Send(vec![req]))
                    }
                    Progress::Done(results) => {
                        let (entries, stale) = check.keep(entries, results)?;
                        Ok(self.finish(total, keys, entries, stale))
                    }
                }
            }
            (_, input) => Ok(unexpected_input("search", &input)),
        }
    }
}

impl Machine for SearchQuery {
    type Output = Found;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input) -> Step<Found> {
        self.step(cx, input).unwrap_or_else(|e| Step::Done(Err(e)))
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::*;
    use crate::cache::durability::Durability;
    use crate::cache::op::search_index::tests::{deadline, info, name, slot, spec};
    use crate::cache::op::testing::{Hand, addressed, bulk, commands, pipeline, three_shards, values, words};
    use crate::cache::storage::Storage;
    use crate::keys::Namespace;

    fn scope() -> Arc<Scope> {
        Arc::new(Scope {
            ns: Namespace::new("users").expect("valid"),
            name: "users:".into(),
            storage: Storage::Document,
            max_value_size: 1 << 20,
            durability: Durability::Primary,
            expire_after_read_ms: None,
        })
    }

    fn all_known() -> KnownIndexes {
        let mut k = KnownIndexes::default();
        k.apply(IndexNews { forget: false, ready: vec![name(0), name(5461), name(10923)] });
        k
    }

    fn query(offset: usize, limit: usize) -> Query {
        Query { filters: vec![Filter::eq("role", "admin")], offset, limit, ..Query::default() }
    }

    fn machine(known: KnownIndexes, q: Query) -> Hand<SearchQuery> {
        let mut m =
            Hand::new(SearchQuery::new(scope(), spec(), known, deadline(10), q).expect("valid query"));
        m.topology = Some(three_shards());
        m
    }

    /// A shard's `FT.SEARCH … NOCONTENT` reply (RESP2): the total, then the keys.
    fn page(total: i64, keys: &[&str]) -> Value {
        let mut v = vec![Value::Int(total)];
        v.extend(keys.iter().map(|k| bulk(k.as_bytes())));
        Value::Array(v)
    }

    fn mget_reply(docs: &[Option<&str>]) -> Input {
        let docs = docs.iter().map(|d| d.map_or(Value::Nil, |d| bulk(d.as_bytes()))).collect();
        Input::Replies(vec![Ok(Reply::Value(Value::Array(docs)))])
    }

    /// `FT.SEARCH` goes to every primary's index, asking each for `offset + limit` keys; the
    /// pages are merged (shard order, then each shard's), the page's documents read with one
    /// `JSON.MGET`, and a tagged entry whose tag was invalidated is left out and counted.
    #[test]
    fn fans_out_merges_reads_and_drops_stale_entries() {
        let mut m = machine(all_known(), query(1, 3));
        let search = commands(&m.start());
        assert_eq!(search.len(), 3);
        for (c, n) in search.iter().zip([0, 5461, 10923]) {
            let w = words(c);
            assert_eq!(
                (w[0].as_str(), w[1].as_bytes(), c.slot()),
                ("FT.SEARCH", &name(n)[..], Some(slot(n)))
            );
            let limit = w.iter().position(|a| a == "LIMIT").expect("LIMIT");
            assert_eq!(w[limit + 1..limit + 3], ["0", "4"]);
        }
        let read = m.resume(values(vec![
            Ok(page(2, &["users:a", "users:b"])),
            Ok(page(3, &["users:c", "users:d", "users:e"])),
            Ok(page(0, &[])),
        ]));
        let read = commands(&read);
        assert_eq!(words(&read[0]), ["JSON.MGET", "users:b", "users:c", "users:d", "$"]);
        let tokens = m.resume(mget_reply(&[
            Some(r#"[{"role":"admin","n":2}]"#),
            Some(r#"[{"__slotcache":{"t":[["team","tok1"]]},"role":"admin"}]"#),
            // Deleted since the search.
            None,
        ]));
        let tokens = pipeline(&tokens);
        assert_eq!(words(&tokens[0])[0], "ZRANGEBYSCORE");
        let done = m.reply(vec![Ok(Value::Array(vec![bulk(b"\0tok2")]))]);
        let Step::Done(Ok(found)) = done else { panic!("{done:?}") };
        assert_eq!((found.total, found.stale, found.offset, found.limit), (5, 1, 1, 3));
        let keys: Vec<&[u8]> = found.items.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, [b"users:b".as_slice()]);
        assert_eq!(found.items[0].1.payload.as_ref(), br#"{"n":2,"role":"admin"}"#);
        assert_eq!(found.news, IndexNews::default());
    }

    /// An empty page reads nothing; untagged entries need no token round.
    #[test]
    fn short_cuts() {
        let mut m = machine(all_known(), query(0, 0));
        let _ = m.start();
        let done = m.resume(values(vec![Ok(page(0, &[])), Ok(page(0, &[])), Ok(page(0, &[]))]));
        assert!(
            matches!(done, Step::Done(Ok(Found { total: 0, limit: DEFAULT_LIMIT, ref items, .. })) if items.is_empty())
        );

        let mut m = machine(all_known(), query(0, 0));
        let _ = m.start();
        let _ = m.resume(values(vec![Ok(page(1, &["users:a"])), Ok(page(0, &[])), Ok(page(0, &[]))]));
        let done = m.resume(mget_reply(&[Some(r#"[{"role":"admin"}]"#)]));
        assert!(
            matches!(done, Step::Done(Ok(Found { total: 1, stale: 0, ref items, .. })) if items.len() == 1)
        );
    }

    /// Indexes not known to exist are ensured first; an index found missing by the search
    /// makes the machine forget them all and ensure again, once.
    #[test]
    fn a_missing_index_is_created_again_once() {
        let mut known = all_known();
        known.clear();
        known.apply(IndexNews { forget: false, ready: vec![name(0), name(5461)] });
        let mut m = machine(known, query(0, 10));
        let info_10923 = commands(&m.start());
        assert_eq!(words(&info_10923[0])[0], "FT.INFO");
        let search = m.resume(values(vec![Ok(info(0))]));
        assert_eq!(commands(&search).len(), 3);
        // The index on 5461 was dropped behind our back.
        let again = m.resume(values(vec![Ok(page(0, &[])), Err("Unknown index name"), Ok(page(0, &[]))]));
        assert_eq!(commands(&again).iter().map(|c| words(c)[0].clone()).collect::<Vec<_>>(), ["FT.INFO"; 3]);
        let create = m.resume(values(vec![Ok(info(0)), Err("Unknown index name"), Ok(info(0))]));
        assert_eq!(words(&commands(&create)[0])[0], "FT.CREATE");
        let poll = m.resume(values(vec![Ok(bulk(b"OK"))]));
        let search = m.resume(values(vec![Ok(info(0))]));
        let _ = poll;
        assert_eq!(commands(&search).len(), 3);
        let done = m.resume(values(vec![Ok(page(0, &[])), Ok(page(0, &[])), Ok(page(0, &[]))]));
        let Step::Done(Ok(found)) = done else { panic!("{done:?}") };
        assert_eq!(found.news, IndexNews { forget: true, ready: vec![name(0), name(10923), name(5461)] });

        // Missing again right after re-creating it: an error, not a loop.
        let mut m = machine(all_known(), query(0, 10));
        let _ = m.start();
        let _ = m.resume(values(vec![Ok(page(0, &[])), Err("Unknown index name"), Ok(page(0, &[]))]));
        let _ = m.resume(values(vec![Ok(info(0)), Ok(info(0)), Ok(info(0))]));
        let done = m.resume(values(vec![Ok(page(0, &[])), Err("Unknown index name"), Ok(page(0, &[]))]));
        assert!(matches!(done, Step::Done(Err(CacheError::Search(SearchError::Server(_))))), "{done:?}");
    }

    /// A node's refusal, a missing module, a malformed page and a timeout end the search with
    /// typed errors.
    #[test]
    fn node_errors_and_timeouts() {
        let run = |replies: Input| {
            let mut m = machine(all_known(), query(0, 10));
            let _ = m.start();
            m.resume(replies)
        };
        let done = run(values(vec![Ok(page(0, &[])), Err("ERR Syntax error"), Ok(page(0, &[]))]));
        assert!(matches!(done, Step::Done(Err(CacheError::Search(SearchError::Server(_))))), "{done:?}");
        let done =
            run(values(vec![Err("ERR unknown command 'FT.SEARCH'"), Ok(page(0, &[])), Ok(page(0, &[]))]));
        assert!(matches!(done, Step::Done(Err(CacheError::SearchNotSupported(_)))), "{done:?}");
        let done = run(values(vec![Ok(page(0, &[])), Ok(Value::Int(3)), Ok(page(0, &[]))]));
        assert!(matches!(done, Step::Done(Err(CacheError::Search(SearchError::Reply(_))))), "{done:?}");
        let timeout = RequestError::Timeout { stage: crate::client::TimeoutStage::Reply, attempts: 1 };
        let done = run(Input::Replies(vec![
            Ok(Reply::Value(page(0, &[]))),
            Err(timeout),
            Ok(Reply::Value(page(0, &[]))),
        ]));
        assert!(
            matches!(done, Step::Done(Err(CacheError::Timeout { op: "ensure_search_index", .. }))),
            "{done:?}"
        );

        // The deadline passed before the documents are read.
        let mut m = machine(all_known(), query(0, 10));
        let _ = m.start();
        m.now += Duration::from_secs(11);
        let done = m.resume(values(vec![Ok(page(1, &["users:a"])), Ok(page(0, &[])), Ok(page(0, &[]))]));
        assert!(matches!(done, Step::Done(Err(CacheError::Timeout { .. }))), "{done:?}");
    }

    /// Queries that cannot be expressed exactly are refused before anything is sent.
    #[test]
    fn invalid_queries_are_refused_up_front() {
        let new = |q: Query| SearchQuery::new(scope(), spec(), all_known(), deadline(10), q);
        let knn = Knn { field: "role".into(), k: 3, vector: vec![1.0] };
        let sort = SortBy { field: "role".into(), order: SortOrder::Asc };
        for q in [
            Query { offset: usize::MAX, ..query(0, 10) },
            Query { text: Some("hello".into()), ..query(0, 10) },
            Query { knn: Some(knn), sort: Some(sort.clone()), ..query(0, 10) },
            // Not sortable.
            Query { sort: Some(sort), ..query(0, 10) },
        ] {
            assert!(
                matches!(new(q.clone()), Err(CacheError::Search(SearchError::InvalidFilter(_)))),
                "{q:?}"
            );
        }
    }

    /// Each `FT.SEARCH` is addressed to its primary. One that answers `MOVED` (demoted by a
    /// failover) sends the search back to the index check with the refreshed topology after a
    /// poll interval; the page comes from the new plan, each key once.
    #[test]
    fn a_stale_plan_is_searched_again() {
        let mut m = machine(all_known(), query(0, 10));
        let search = m.start();
        assert_eq!(addressed(&search), [Some(7000), Some(7001), Some(7002)]);
        let wait = m.resume(values(vec![
            Ok(page(1, &["users:a"])),
            Err("MOVED 5461 10.0.0.1:7004"),
            Ok(page(0, &[])),
        ]));
        let Step::Sleep(at) = wait else { panic!("expected a sleep, got {wait:?}") };
        m.now = at;
        let mut t = three_shards();
        for n in 5461..=10922 {
            t.patch_slot(slot(n), crate::node_addr::NodeAddr::new("10.0.0.1", 7004)).expect("patched");
        }
        m.topology = Some(t);
        // The promoted replica has the index (replicated): known by name, searched at once.
        let search = m.resume(Input::Woke);
        assert_eq!(addressed(&search), [Some(7000), Some(7004), Some(7002)]);
        let read =
            m.resume(values(vec![Ok(page(1, &["users:a"])), Ok(page(1, &["users:b"])), Ok(page(0, &[]))]));
        assert_eq!(words(&commands(&read)[0]), ["JSON.MGET", "users:a", "users:b", "$"]);
        let done = m.resume(mget_reply(&[Some(r#"[{"role":"admin"}]"#), Some(r#"[{"role":"admin"}]"#)]));
        let Step::Done(Ok(found)) = done else { panic!("{done:?}") };
        assert_eq!((found.total, found.items.len()), (2, 2));
    }

    /// The old fan-out (a test-only variant) routes by slot and keeps a key listed twice; the
    /// correct merge lists it once.
    #[test]
    fn the_old_fan_out_keeps_duplicates() {
        let twice = || values(vec![Ok(page(1, &["users:a"])), Ok(page(1, &["users:a"])), Ok(page(0, &[]))]);
        let mut m = machine(all_known(), query(0, 10));
        m.machine = SearchQuery::new(scope(), spec(), all_known(), deadline(10), query(0, 10))
            .expect("valid")
            .with_variant(Variant::PerSlotFanOut);
        assert_eq!(addressed(&m.start()), [None, None, None]);
        let read = m.resume(twice());
        assert_eq!(words(&commands(&read)[0]), ["JSON.MGET", "users:a", "users:a", "$"]);

        let mut m = machine(all_known(), query(0, 10));
        let _ = m.start();
        let read = m.resume(twice());
        assert_eq!(words(&commands(&read)[0]), ["JSON.MGET", "users:a", "$"]);
    }
}
