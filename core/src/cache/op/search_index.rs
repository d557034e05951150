//! `ensure_search_index`: every primary gets the namespace's index with its schema.
//!
//! Round 1: `FT.INFO` of each index not yet known to exist, one request per primary; an
//! existing index is compared with the schema (another schema is an error, never reused), and
//! one still indexing is polled like a new one (round 3).
//! Round 2: `FT.CREATE` where it is missing (an index another process created meanwhile is
//! compared in round 3). Round 3, repeated every
//! [`POLL_INTERVAL`](super::fan_out::POLL_INTERVAL) until the deadline:
//! `FT.INFO` of the new indexes, until each has indexed the documents that were already there.
//!
//! The homes come from the client's topology, one per distinct primary (see
//! [`index_homes`](crate::cache::search::index_homes)), and every request is addressed to its
//! primary, not redirected; a primary that answers `MOVED` or `ASK` (a failover, a resharding,
//! a stale or `MOVED`-patched map) makes the machine plan again from the topology, within the
//! deadline (see [`fan_out`]). Before the first topology the machine waits for
//! one, within the deadline. What it learns about which indexes exist is its output
//! ([`IndexNews`]), for the namespace's [`KnownIndexes`].

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::error::CacheError;
use crate::cache::search::refusal::{Refusal, not_supported};
use crate::cache::search::schema::is_indexing;
use crate::cache::search::{IndexHome, SearchError, SearchSchema, index_name};
use crate::client::{Cmd, Reply, RequestError};
use crate::resp::Value;
use crate::slot::Slot;

use super::deadline::Deadline;
use super::fan_out::{self, Answer, Elsewhere, Located, Routing};
use super::machine::{Ctx, Input, Machine, Step, unexpected_input};

/// A searchable namespace's index as the operations see it.
#[derive(Clone, Debug)]
pub struct IndexSpec {
    /// The schema.
    pub schema: SearchSchema,
    /// The configured prefix of index names.
    pub index_prefix: String,
    /// The namespace's data prefix (the index covers the keys under it).
    pub data_prefix: Vec<u8>,
}

impl IndexSpec {
    /// The name of the index held by the primary that owns `slot`.
    #[must_use]
    pub fn name(&self, slot: Slot) -> Vec<u8> {
        index_name(&self.index_prefix, &self.data_prefix, slot)
    }

    /// `FT.INFO` of the index on `slot`'s owner.
    #[must_use]
    pub fn info_cmd(&self, slot: Slot) -> Cmd {
        Cmd::new("FT.INFO").arg(Bytes::from(self.name(slot))).with_slot(slot)
    }

    /// `FT.CREATE` of the index on `slot`'s owner.
    ///
    /// # Errors
    /// An invalid schema.
    pub fn create_cmd(&self, slot: Slot) -> Result<Cmd, SearchError> {
        Ok(self.schema.create_command(&self.name(slot), &self.data_prefix)?.with_slot(slot))
    }

    /// `FT.DROPINDEX` of the index on `slot`'s owner (its documents stay).
    #[must_use]
    pub fn drop_cmd(&self, slot: Slot) -> Cmd {
        Cmd::new("FT.DROPINDEX").arg(Bytes::from(self.name(slot))).with_slot(slot)
    }

    /// Compares an `FT.INFO` reply with the schema.
    ///
    /// # Errors
    /// [`SearchError::SchemaMismatch`] or [`SearchError::Reply`].
    pub fn check(&self, info: &Value) -> Result<(), SearchError> {
        self.schema.check_info(info, &self.data_prefix)
    }
}

/// The indexes a namespace knows to exist with its schema (its searches skip checking them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownIndexes {
    names: BTreeSet<Vec<u8>>,
}

impl KnownIndexes {
    /// Whether the index `name` is known to exist.
    #[must_use]
    pub fn contains(&self, name: &[u8]) -> bool {
        self.names.contains(name)
    }

    /// Forgets every index (they are dropped, or one was found missing).
    pub fn clear(&mut self) {
        self.names.clear();
    }

    /// Takes in what an operation learnt.
    pub fn apply(&mut self, news: IndexNews) {
        if news.forget {
            self.names.clear();
        }
        self.names.extend(news.ready);
    }
}

/// What an operation learnt about the indexes, for [`KnownIndexes::apply`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexNews {
    /// An index the namespace knew was found missing: forget them all first.
    pub forget: bool,
    /// Indexes now known to exist with the schema.
    pub ready: Vec<Vec<u8>>,
}

/// The outcome of [`EnsureIndex`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ensured {
    /// The homes, one per primary, that the indexes were ensured on.
    pub homes: Vec<IndexHome>,
    /// What it learnt.
    pub news: IndexNews,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for a topology (or for a fresher one after a stale plan).
    Locate,
    /// `FT.INFO` of the indexes not known to exist is in flight.
    Info {
        missing: Vec<IndexHome>,
    },
    /// `FT.CREATE` is in flight.
    Create {
        create: Vec<IndexHome>,
        pending: Vec<IndexHome>,
    },
    /// `FT.INFO` of the new indexes is in flight.
    Poll {
        pending: Vec<IndexHome>,
    },
    /// Sleeping before polling again.
    Wait {
        pending: Vec<IndexHome>,
    },
    Over,
}

/// The `ensure_search_index` operation (also the first part of every search).
#[derive(Debug)]
pub struct EnsureIndex {
    spec: Arc<IndexSpec>,
    known: KnownIndexes,
    deadline: Deadline,
    phase: Phase,
    homes: Vec<IndexHome>,
    ready: Vec<Vec<u8>>,
    avoid: BTreeSet<Slot>,
    routing: Routing,
}

type Stepped = Result<Step<Ensured>, CacheError>;

/// A home's answer when its node still serves it: a value, or the server's refusal text.
type Reached = Result<Value, String>;

impl EnsureIndex {
    /// Ensures `spec`'s index on every primary, skipping the `known` ones.
    #[must_use]
    pub const fn new(spec: Arc<IndexSpec>, known: KnownIndexes, deadline: Deadline) -> Self {
        Self {
            spec,
            known,
            deadline,
            phase: Phase::Locate,
            homes: Vec::new(),
            ready: Vec::new(),
            avoid: BTreeSet::new(),
            routing: Routing::ToPrimary,
        }
    }

    /// Names no index by these slots (found migrating away by an earlier step).
    #[must_use]
    pub(crate) fn avoiding(mut self, avoid: BTreeSet<Slot>) -> Self {
        self.avoid = avoid;
        self
    }

    /// Routes the requests as `routing` says (the old fan-out is a test-only bug variant).
    #[must_use]
    pub(crate) const fn routed(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    fn send(&mut self, cx: &Ctx<'_>, cmds: Vec<(&IndexHome, Cmd)>, phase: Phase) -> Stepped {
        let reqs = fan_out::requests(cmds, self.routing, cx.now, &self.deadline)?;
        self.phase = phase;
        Ok(Step::Send(reqs))
    }

    fn done(&mut self) -> Stepped {
        let news = IndexNews { forget: false, ready: std::mem::take(&mut self.ready) };
        Ok(Step::Done(Ok(Ensured { homes: std::mem::take(&mut self.homes), news })))
    }

    fn locate(&mut self, cx: &Ctx<'_>) -> Stepped {
        let homes = match fan_out::locate(cx, &self.deadline, &self.avoid)? {
            Located::Wait(at) => {
                self.phase = Phase::Locate;
                return Ok(Step::Sleep(at));
            }
            Located::Homes(h) => h,
        };
        let missing: Vec<IndexHome> = homes
            .iter()
            .filter(|h| {
                !self.known.contains(&self.spec.name(h.slot)) && !self.ready.contains(&self.spec.name(h.slot))
            })
            .cloned()
            .collect();
        self.homes = homes;
        if missing.is_empty() {
            return self.done();
        }
        let cmds = missing.iter().map(|h| (h, self.spec.info_cmd(h.slot))).collect();
        self.send(cx, cmds, Phase::Info { missing: missing.clone() })
    }

    /// The plan was stale: look at the topology again after a poll interval.
    fn replan(&mut self, cx: &Ctx<'_>, stale: impl IntoIterator<Item = Elsewhere>) -> Stepped {
        self.avoid.extend(stale.into_iter().filter_map(|e| e.migrating));
        self.deadline.remaining(cx.now)?;
        self.phase = Phase::Locate;
        Ok(Step::Sleep(fan_out::next_poll(cx.now, &self.deadline)))
    }

    /// The answers of the homes still planned (`None` for one that was not), and why the plan
    /// was stale (empty when it was not).
    fn answers(
        &self,
        cx: &Ctx<'_>,
        replies: Vec<Result<Reply, RequestError>>,
        homes: &[IndexHome],
    ) -> Result<(Vec<Option<Reached>>, Vec<Elsewhere>), CacheError> {
        let mut out = Vec::with_capacity(homes.len());
        let mut stale = Vec::new();
        for a in fan_out::answers(cx, replies, homes, &self.avoid, &self.deadline)? {
            out.push(match a {
                Answer::Value(v) => Some(Ok(v)),
                Answer::Refused(m) => Some(Err(m)),
                Answer::Elsewhere(e) => {
                    stale.push(e);
                    None
                }
            });
        }
        Ok((out, stale))
    }

    /// Takes in an `FT.INFO` of an existing index: compared with the schema, then ready, or
    /// still indexing (`pending`).
    fn existing(
        &mut self,
        home: &IndexHome,
        info: &Value,
        pending: &mut Vec<IndexHome>,
    ) -> Result<(), CacheError> {
        // An index another process created may have another schema.
        self.spec.check(info)?;
        if is_indexing(info) {
            pending.push(home.clone());
        } else {
            self.ready.push(self.spec.name(home.slot));
        }
        Ok(())
    }

    fn after_info(
        &mut self,
        cx: &Ctx<'_>,
        missing: &[IndexHome],
        replies: Vec<Result<Reply, RequestError>>,
    ) -> Stepped {
        let (answers, stale) = self.answers(cx, replies, missing)?;
        let mut create = Vec::new();
        let mut pending = Vec::new();
        for (h, a) in missing.iter().zip(answers) {
            match a {
                None => {}
                Some(Ok(v)) => self.existing(h, &v, &mut pending)?,
                Some(Err(m)) => match Refusal::of(&m) {
                    Refusal::NoModule => return Err(not_supported()),
                    Refusal::NoIndex => create.push(h.clone()),
                    Refusal::Exists | Refusal::Other(_) => return Err(SearchError::Server(m).into()),
                },
            }
        }
        if !stale.is_empty() {
            return self.replan(cx, stale);
        }
        if create.is_empty() {
            return self.wait_for(cx, pending);
        }
        let cmds = create
            .iter()
            .map(|h| Ok((h, self.spec.create_cmd(h.slot)?)))
            .collect::<Result<Vec<_>, SearchError>>()?;
        let phase = Phase::Create { create: create.clone(), pending };
        self.send(cx, cmds, phase)
    }

    fn after_create(
        &mut self,
        cx: &Ctx<'_>,
        create: Vec<IndexHome>,
        mut pending: Vec<IndexHome>,
        replies: Vec<Result<Reply, RequestError>>,
    ) -> Stepped {
        let (answers, stale) = self.answers(cx, replies, &create)?;
        for a in answers.into_iter().flatten() {
            if let Err(m) = a {
                match Refusal::of(&m) {
                    Refusal::NoModule => return Err(not_supported()),
                    // Another process created it meanwhile: compared by the poll.
                    Refusal::Exists => {}
                    Refusal::NoIndex | Refusal::Other(_) => return Err(SearchError::Server(m).into()),
                }
            }
        }
        if !stale.is_empty() {
            // The indexes created are found by the next plan's `FT.INFO`.
            return self.replan(cx, stale);
        }
        pending.extend(create);
        self.poll(cx, pending)
    }

    fn poll(&mut self, cx: &Ctx<'_>, pending: Vec<IndexHome>) -> Stepped {
        let cmds = pending.iter().map(|h| (h, self.spec.info_cmd(h.slot))).collect();
        let phase = Phase::Poll { pending: pending.clone() };
        self.send(cx, cmds, phase)
    }

    /// Done when nothing is `pending`, else polls it again after a poll interval.
    fn wait_for(&mut self, cx: &Ctx<'_>, pending: Vec<IndexHome>) -> Stepped {
        if pending.is_empty() {
            return self.done();
        }
        self.deadline.remaining(cx.now)?;
        self.phase = Phase::Wait { pending };
        Ok(Step::Sleep(fan_out::next_poll(cx.now, &self.deadline)))
    }

    fn after_poll(
        &mut self,
        cx: &Ctx<'_>,
        pending: &[IndexHome],
        replies: Vec<Result<Reply, RequestError>>,
    ) -> Stepped {
        let (answers, stale) = self.answers(cx, replies, pending)?;
        let mut still = Vec::new();
        for (h, a) in pending.iter().zip(answers) {
            if let Some(a) = a {
                let v = a.map_err(SearchError::Server)?;
                self.existing(h, &v, &mut still)?;
            }
        }
        if !stale.is_empty() {
            return self.replan(cx, stale);
        }
        self.wait_for(cx, still)
    }

    fn step(&mut self, cx: &Ctx<'_>, input: Input) -> Stepped {
        match (std::mem::replace(&mut self.phase, Phase::Over), input) {
            (Phase::Locate, Input::Start | Input::Woke) => self.locate(cx),
            (Phase::Info { missing }, Input::Replies(r)) => self.after_info(cx, &missing, r),
            (Phase::Create { create, pending }, Input::Replies(r)) => {
                self.after_create(cx, create, pending, r)
            }
            (Phase::Poll { pending }, Input::Replies(r)) => self.after_poll(cx, &pending, r),
            (Phase::Wait { pending }, Input::Woke) => {
                self.deadline.remaining(cx.now)?;
                self.poll(cx, pending)
            }
            (_, input) => Ok(unexpected_input("ensure_search_index", &input)),
        }
    }
}

impl Machine for EnsureIndex {
    type Output = Ensured;
    type Call = core::convert::Infallible;
    type Answer = core::convert::Infallible;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input) -> Step<Ensured> {
        self.step(cx, input).unwrap_or_else(|e| Step::Done(Err(e)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use core::time::Duration;
    use std::time::Instant;

    use super::*;
    use crate::cache::op::testing::{Hand, addressed, commands, three_shards, values, words};

    pub(crate) fn s(x: &str) -> Value {
        Value::Simple(Bytes::copy_from_slice(x.as_bytes()))
    }

    pub(crate) fn spec() -> Arc<IndexSpec> {
        Arc::new(IndexSpec {
            schema: SearchSchema::new().tag("role", false),
            index_prefix: "index:".into(),
            data_prefix: b"users:".to_vec(),
        })
    }

    /// `FT.INFO` of an index on `$.role AS role TAG` over `prefix`, RESP3-shaped.
    pub(crate) fn info_of(ty: &str, prefix: &str, indexing: i64) -> Value {
        Value::Map(vec![
            (
                s("index_definition"),
                Value::Map(vec![(s("key_type"), s("JSON")), (s("prefixes"), Value::Array(vec![s(prefix)]))]),
            ),
            (
                s("attributes"),
                Value::Array(vec![Value::Map(vec![
                    (s("identifier"), s("$.role")),
                    (s("attribute"), s("role")),
                    (s("type"), s(ty)),
                    (s("flags"), Value::Array(vec![])),
                ])]),
            ),
            (s("indexing"), Value::Int(indexing)),
        ])
    }

    pub(crate) fn info(indexing: i64) -> Value {
        info_of("TAG", "users:", indexing)
    }

    pub(crate) fn slot(n: u16) -> Slot {
        Slot::new(n).expect("slot")
    }

    pub(crate) fn name(n: u16) -> Vec<u8> {
        spec().name(slot(n))
    }

    pub(crate) fn deadline(secs: u64) -> Deadline {
        #[allow(clippy::disallowed_methods)] // a test needs one real instant as its epoch
        let now = Instant::now();
        Deadline::new(now, "ensure_search_index", Duration::from_secs(secs))
    }

    fn machine(known: KnownIndexes) -> Hand<EnsureIndex> {
        let mut m = Hand::new(EnsureIndex::new(spec(), known, deadline(10)));
        m.topology = Some(three_shards());
        m
    }

    /// The commands' names and first arguments, and their slots.
    fn sent(step: &Step<Ensured>) -> Vec<(String, Vec<u8>, Option<u16>)> {
        commands(step)
            .iter()
            .map(|c| (words(c)[0].clone(), c.args()[1].to_vec(), c.slot().map(Slot::get)))
            .collect()
    }

    const UNKNOWN: &str = "Unknown index name";

    /// One index exists, two are missing: they are created, then polled until they have
    /// indexed what was there; the output names every index now known.
    #[test]
    fn missing_indexes_are_created_and_polled_until_indexed() {
        let mut m = machine(KnownIndexes::default());
        let first = m.start();
        assert_eq!(
            sent(&first),
            [
                ("FT.INFO".into(), name(0), Some(0)),
                ("FT.INFO".into(), name(5461), Some(5461)),
                ("FT.INFO".into(), name(10923), Some(10923)),
            ]
        );
        let create = m.resume(values(vec![Ok(info(0)), Err(UNKNOWN), Err(UNKNOWN)]));
        let c = commands(&create);
        assert_eq!(c.len(), 2);
        assert_eq!(
            words(&c[0])[..3],
            ["FT.CREATE".to_owned(), String::from_utf8_lossy(&name(5461)).into(), "ON".into()]
        );
        assert_eq!(c[1].slot(), Some(slot(10923)));
        // One created here, one by another process meanwhile.
        let poll = m.resume(values(vec![Ok(s("OK")), Err("Index already exists")]));
        assert_eq!(
            sent(&poll).iter().map(|(c, _, s)| (c.as_str(), *s)).collect::<Vec<_>>(),
            [("FT.INFO", Some(5461)), ("FT.INFO", Some(10923))]
        );
        let wait = m.resume(values(vec![Ok(info(1)), Ok(info(0))]));
        let Step::Sleep(at) = wait else { panic!("expected a sleep, got {wait:?}") };
        assert_eq!(at, m.now + Duration::from_millis(10));
        m.now = at;
        let again = m.resume(Input::Woke);
        assert_eq!(sent(&again), [("FT.INFO".into(), name(5461), Some(5461))]);
        let done = m.resume(values(vec![Ok(info(0))]));
        let Step::Done(Ok(ensured)) = done else { panic!("{done:?}") };
        assert_eq!(
            ensured.homes.iter().map(|h| h.slot).collect::<Vec<_>>(),
            [slot(0), slot(5461), slot(10923)]
        );
        assert_eq!(ensured.news, IndexNews { forget: false, ready: vec![name(0), name(10923), name(5461)] });
        let mut known = KnownIndexes::default();
        known.apply(ensured.news);
        assert!(known.contains(&name(0)) && known.contains(&name(5461)) && known.contains(&name(10923)));
    }

    /// Indexes known to exist are not checked again.
    #[test]
    fn known_indexes_are_skipped() {
        let mut known = KnownIndexes::default();
        known.apply(IndexNews { forget: false, ready: vec![name(0), name(10923)] });
        let mut m = machine(known.clone());
        assert_eq!(sent(&m.start()), [("FT.INFO".into(), name(5461), Some(5461))]);
        let done = m.resume(values(vec![Ok(info(0))]));
        assert!(
            matches!(done, Step::Done(Ok(Ensured { ref news, .. })) if news.ready == [name(5461)]),
            "{done:?}"
        );
        known.apply(IndexNews { forget: false, ready: vec![name(5461)] });
        let mut m = machine(known);
        assert!(matches!(m.start(), Step::Done(Ok(Ensured { ref news, .. })) if news.ready.is_empty()));
    }

    /// An index built with another schema (or another prefix) is an error, never reused; so is
    /// one that another process created with another schema while this one was creating it.
    #[test]
    fn an_index_with_another_schema_is_an_error() {
        let mut m = machine(KnownIndexes::default());
        let _ = m.start();
        let done = m.resume(values(vec![Ok(info(0)), Ok(info_of("NUMERIC", "users:", 0)), Err(UNKNOWN)]));
        assert!(
            matches!(done, Step::Done(Err(CacheError::Search(SearchError::SchemaMismatch(_))))),
            "{done:?}"
        );

        let mut m = machine(KnownIndexes::default());
        let _ = m.start();
        let _ = m.resume(values(vec![Ok(info(0)), Ok(info(0)), Err(UNKNOWN)]));
        let _ = m.resume(values(vec![Err("Index already exists")]));
        let done = m.resume(values(vec![Ok(info_of("TAG", "other:", 0))]));
        assert!(
            matches!(done, Step::Done(Err(CacheError::Search(SearchError::SchemaMismatch(_))))),
            "{done:?}"
        );
    }

    /// Without the module, `FT.INFO` (or `FT.CREATE`) is an unknown command.
    #[test]
    fn no_module_is_search_not_supported() {
        let unknown = "ERR unknown command 'FT.INFO', with args beginning with: 'index:users{0}'";
        let mut m = machine(KnownIndexes::default());
        let _ = m.start();
        let done = m.resume(values(vec![Err(UNKNOWN), Err(unknown), Err(unknown)]));
        assert!(matches!(done, Step::Done(Err(CacheError::SearchNotSupported(_)))), "{done:?}");

        let mut m = machine(KnownIndexes::default());
        let _ = m.start();
        let _ = m.resume(values(vec![Err(UNKNOWN), Ok(info(0)), Ok(info(0))]));
        let done = m.resume(values(vec![Err("ERR unknown command 'FT.CREATE'")]));
        assert!(matches!(done, Step::Done(Err(CacheError::SearchNotSupported(_)))), "{done:?}");
    }

    /// A node's other refusal is a server error; a node that cannot be reached fails the
    /// operation with the request's error.
    #[test]
    fn node_errors() {
        let mut m = machine(KnownIndexes::default());
        let _ = m.start();
        let done = m.resume(values(vec![Ok(info(0)), Err("ERR busy"), Ok(info(0))]));
        assert!(
            matches!(done, Step::Done(Err(CacheError::Search(SearchError::Server(ref m)))) if m == "ERR busy"),
            "{done:?}"
        );

        let mut m = machine(KnownIndexes::default());
        let _ = m.start();
        let lost = RequestError::Closed;
        let done =
            m.resume(Input::Replies(vec![Ok(Reply::Value(info(0))), Err(lost), Ok(Reply::Value(info(0)))]));
        assert!(matches!(done, Step::Done(Err(CacheError::Request(RequestError::Closed)))), "{done:?}");

        let mut m = machine(KnownIndexes::default());
        let _ = m.start();
        let done = m.resume(values(vec![Ok(info(0))]));
        assert!(matches!(done, Step::Done(Err(CacheError::UnexpectedReply { .. }))), "{done:?}");
    }

    /// An index that keeps indexing is polled until the deadline, then the operation times out;
    /// so does a request that timed out.
    #[test]
    fn polling_is_bounded_by_the_deadline() {
        let mut m = Hand::new(EnsureIndex::new(spec(), KnownIndexes::default(), deadline(1)));
        m.topology = Some(three_shards());
        let end = m.now + Duration::from_secs(1);
        let _ = m.start();
        let _ = m.resume(values(vec![Ok(info(0)), Ok(info(0)), Err(UNKNOWN)]));
        let mut step = m.resume(values(vec![Ok(s("OK"))]));
        let mut polls = 0;
        loop {
            match step {
                Step::Send(_) => {
                    polls += 1;
                    step = m.resume(values(vec![Ok(info(1))]));
                }
                Step::Sleep(at) => {
                    assert!(at <= end);
                    m.now = at;
                    step = m.resume(Input::Woke);
                }
                Step::Done(r) => {
                    assert!(
                        matches!(r, Err(CacheError::Timeout { op: "ensure_search_index", timeout_ms: 1000 })),
                        "{r:?}"
                    );
                    break;
                }
                Step::Call(never) => match never {},
            }
        }
        assert_eq!(polls, 100, "one poll per 10 ms for a second");

        let mut m = machine(KnownIndexes::default());
        let _ = m.start();
        let timeout = RequestError::Timeout { stage: crate::client::TimeoutStage::Reply, attempts: 1 };
        let done = m.resume(Input::Replies(vec![
            Ok(Reply::Value(info(0))),
            Err(timeout),
            Ok(Reply::Value(info(0))),
        ]));
        assert!(matches!(done, Step::Done(Err(CacheError::Timeout { .. }))), "{done:?}");
    }

    /// Before the client has a topology the machine waits for one, within the deadline.
    #[test]
    fn waits_for_a_topology() {
        let mut m = Hand::new(EnsureIndex::new(spec(), KnownIndexes::default(), deadline(1)));
        let Step::Sleep(at) = m.start() else { panic!("expected a sleep") };
        m.now = at;
        m.topology = Some(three_shards());
        assert_eq!(commands(&m.resume(Input::Woke)).len(), 3);

        let mut m = Hand::new(EnsureIndex::new(spec(), KnownIndexes::default(), deadline(1)));
        m.now += Duration::from_secs(2);
        assert!(matches!(m.start(), Step::Done(Err(CacheError::Timeout { .. }))));
    }

    /// One home per primary: each shard's lowest slot, sorted.
    #[test]
    fn one_home_per_primary_from_the_topology() {
        let homes = crate::cache::search::index_homes(&three_shards(), &BTreeSet::new());
        let got: Vec<(Slot, u16)> = homes.iter().map(|h| (h.slot, h.primary.port())).collect();
        assert_eq!(got, [(slot(0), 7000), (slot(5461), 7001), (slot(10923), 7002)]);
    }

    /// Every request is addressed to the primary of its home (not routed by slot).
    #[test]
    fn requests_are_addressed_to_each_primary() {
        let mut m = machine(KnownIndexes::default());
        let first = m.start();
        assert_eq!(addressed(&first), [Some(7000), Some(7001), Some(7002)]);
    }

    /// A primary that answers `MOVED` (demoted by a failover; the map was patched) makes the
    /// machine plan again from the topology after a poll interval; one that answers `ASK` (its
    /// slot is migrating away) gets its index named by another slot.
    #[test]
    fn a_stale_plan_is_planned_again() {
        let mut m = machine(KnownIndexes::default());
        let _ = m.start();
        let wait = m.resume(values(vec![Ok(info(0)), Err("MOVED 5461 10.0.0.1:7004"), Ok(info(0))]));
        let Step::Sleep(at) = wait else { panic!("expected a sleep, got {wait:?}") };
        assert_eq!(at, m.now + Duration::from_millis(10));
        m.now = at;
        // The refresh found the promoted replica.
        let mut t = three_shards();
        for n in 5461..=10922 {
            t.patch_slot(slot(n), crate::node_addr::NodeAddr::new("10.0.0.1", 7004)).expect("patched");
        }
        m.topology = Some(t);
        let again = m.resume(Input::Woke);
        assert_eq!(sent(&again), [("FT.INFO".into(), name(5461), Some(5461))], "the others are ready");
        assert_eq!(addressed(&again), [Some(7004)]);
        let done = m.resume(values(vec![Ok(info(0))]));
        let Step::Done(Ok(ensured)) = done else { panic!("{done:?}") };
        let ports: Vec<u16> = ensured.homes.iter().map(|h| h.primary.port()).collect();
        assert_eq!(ports, [7000, 7004, 7002]);
        assert_eq!(ensured.news.ready, [name(0), name(10923), name(5461)]);

        let mut m = machine(KnownIndexes::default());
        let _ = m.start();
        let wait = m.resume(values(vec![Err("ASK 0 10.0.0.1:7001"), Ok(info(0)), Ok(info(0))]));
        let Step::Sleep(at) = wait else { panic!("expected a sleep, got {wait:?}") };
        m.now = at;
        let again = m.resume(Input::Woke);
        assert_eq!(sent(&again), [("FT.INFO".into(), name(1), Some(1))]);
        assert_eq!(addressed(&again), [Some(7000)]);
    }

    /// The old fan-out (a test-only variant) routes by slot.
    #[test]
    fn the_old_fan_out_routes_by_slot() {
        let mut m = Hand::new(
            EnsureIndex::new(spec(), KnownIndexes::default(), deadline(10)).routed(Routing::BySlot),
        );
        m.topology = Some(three_shards());
        assert_eq!(addressed(&m.start()), [None, None, None]);
    }

    /// An existing index still indexing (another process just created it) is polled until it
    /// has indexed what was there, like a new one.
    #[test]
    fn an_existing_index_still_indexing_is_polled() {
        let mut m = machine(KnownIndexes::default());
        let _ = m.start();
        let wait = m.resume(values(vec![Ok(info(0)), Ok(info(1)), Ok(info(0))]));
        let Step::Sleep(at) = wait else { panic!("expected a sleep, got {wait:?}") };
        m.now = at;
        assert_eq!(sent(&m.resume(Input::Woke)), [("FT.INFO".into(), name(5461), Some(5461))]);
        let done = m.resume(values(vec![Ok(info(0))]));
        let Step::Done(Ok(ensured)) = done else { panic!("{done:?}") };
        assert_eq!(ensured.news.ready, [name(0), name(10923), name(5461)]);
    }
}
