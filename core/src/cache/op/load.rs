//! A load: the value of one key produced by the caller's loader and stored.
//!
//! With a cluster lock, the lock first ([`AcquireLock`]): if another process stores the value
//! while this one waits, that value is the outcome; if the lock cannot be had (an error, the
//! wait running out), the load goes on without it. Then, for a miss, the key is read again (a
//! load that just finished, here or in the process that held the lock, may have stored it);
//! for a reload, the entry's tags are read (the reloaded value keeps them: stored untagged, it
//! would escape their invalidations; if that read fails nothing is loaded). Then the loader is
//! called ([`Step::Call`]), its value stored (a failure to store is a
//! warning: the value is still the outcome), and the lock released.
//!
//! A reload stores under a **lease**: the tokens the entry's tags had when it was read, fresh,
//! before the loader was called (the read's own token check proved them current). The stored
//! envelope carries those tokens, never the ones current at store time
//! ([`Write::lease`](super::write::Write::lease)), so a value loaded before an invalidation of
//! one of its tags is a miss for every read after that invalidation, whenever the store lands;
//! if the store's tag round already shows another token, nothing is stored
//! ([`Warning::Superseded`]).

use core::time::Duration;
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::envelope::{Entry, TagToken};
use crate::cache::error::CacheError;
use crate::keys::EncodedKey;

use super::child::{self, OnceMachine, Turn};
use super::deadline::Deadline;
use super::lock::{AcquireLock, Acquired, read_unlock, unlock};
use super::machine::{Ctx, Input, Machine, Step, unexpected_input};
use super::read_fresh::{ReadFresh, ReadFreshMachine, ReadMode};
use super::scope::Scope;
use super::write::{Write, WriteEntries, WriteMachine};

/// The error of a load whose loader (`what`) panicked or was dropped before answering.
#[must_use]
pub fn aborted(what: &str) -> CacheError {
    CacheError::LoaderAborted(format!("the {what} panicked or was dropped"))
}

/// Why a load runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadKind {
    /// A caller found nothing: the load reads again first.
    Miss,
    /// A reload of a present value (`refresh`, refresh-after): it always loads, keeping the
    /// entry's tags.
    Refresh,
}

/// A load's settings.
#[derive(Clone, Copy, Debug)]
pub struct LoadConfig {
    /// The budget of each read, store and release.
    pub op_timeout: Duration,
    /// Take the cluster lock for at most this long.
    pub lock_hold: Option<Duration>,
}

/// A loaded value ready to store.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Its envelope, without tags.
    pub entry: Entry,
    /// Its TTL in ms (`None`: no expiry).
    pub ttl_ms: Option<u64>,
    /// Its TTL instead when the key exists already (see [`Write::on_update`]).
    pub on_update: Option<Option<u64>>,
}

/// The call: run the loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallLoader;

/// The loader's answer; `P` is what the caller keeps (its typed value).
#[derive(Debug)]
pub enum Loaded<P> {
    /// The loader produced a value.
    Value {
        /// What the caller keeps.
        value: P,
        /// The value ready to store, or why it cannot be stored.
        store: Result<Prepared, CacheError>,
    },
    /// The loader failed.
    Failed(CacheError),
}

/// What a load ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum LoadResult<P> {
    /// The value was stored meanwhile (by another load): this fresh entry.
    Found(Entry),
    /// The loader's value.
    Loaded(P),
}

/// Something that went wrong without failing the load.
#[derive(Debug, PartialEq)]
pub enum Warning {
    /// The cluster lock could not be taken: the load went on without it.
    LockUnavailable(CacheError),
    /// The loaded value could not be stored (it is still the outcome).
    StoreFailed(CacheError),
    /// The cluster lock could not be released (it expires by itself).
    UnlockFailed(CacheError),
    /// The reloaded value was not stored: an invalidation of one of its tags ran after its
    /// lease was read, so it may predate that invalidation (it is still the outcome).
    Superseded,
}

/// Test-only variants of real bugs, to show that the simulation catches them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Variant {
    /// The protocol as documented.
    #[default]
    Correct,
    /// The old bug: a reload stores its value untagged, so it escapes the invalidations of
    /// the tags the entry had.
    ReloadUntagged,
    /// Bug A3: a reload stores its value with the tags' tokens current at store time, not the
    /// ones it started under (no lease), so a value loaded before an invalidation of one of
    /// its tags is stored fresh.
    TokensAtStore,
}

impl Variant {
    /// What a reload under this variant stores: its `tags` and its `lease` (the tokens it
    /// started under), or the bug's version of them.
    pub(crate) fn store<T, L>(self, tags: Vec<T>, lease: Option<L>) -> (Vec<T>, Option<L>) {
        match self {
            Self::ReloadUntagged => (Vec::new(), None),
            Self::TokensAtStore => (tags, None),
            Self::Correct => (tags, lease),
        }
    }
}

/// A load's outcome.
#[derive(Debug)]
pub struct LoadOutcome<P> {
    /// The value, or the loader's (or the tag read's) error.
    pub result: Result<LoadResult<P>, CacheError>,
    /// The tags a reload kept for the value it stored (the entry's when the reload started;
    /// empty for a load on a miss).
    pub kept_tags: Vec<Bytes>,
    /// What went wrong without failing the load.
    pub warnings: Vec<Warning>,
    /// Reads that met an entry a tag invalidation had made stale.
    pub stale: u64,
}

enum State {
    Lock(Box<AcquireLock>),
    Check(ReadFreshMachine),
    Tags(ReadFreshMachine),
    /// The loader runs; the lease its value is stored under (the entry's tags with the tokens
    /// they had, fresh, when it was read; empty for a load on a miss).
    Calling(Vec<TagToken>),
    Store(WriteMachine),
    Unlock(OnceMachine),
    Over,
}

/// The load of one key.
pub struct Load<P> {
    scope: Arc<Scope>,
    key: EncodedKey,
    kind: LoadKind,
    config: LoadConfig,
    token: Option<Bytes>,
    result: Option<Result<LoadResult<P>, CacheError>>,
    kept_tags: Vec<Bytes>,
    warnings: Vec<Warning>,
    stale: u64,
    state: State,
    variant: Variant,
}

impl<P> core::fmt::Debug for Load<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Load").field("key", &self.key).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl<P> Load<P> {
    /// Loads `key` of `scope`'s namespace.
    #[must_use]
    pub fn new(scope: Arc<Scope>, key: EncodedKey, kind: LoadKind, config: LoadConfig) -> Self {
        Self {
            scope,
            key,
            kind,
            config,
            token: None,
            result: None,
            kept_tags: Vec::new(),
            warnings: Vec::new(),
            stale: 0,
            state: State::Over,
            variant: Variant::Correct,
        }
    }

    /// The same load with a test-only bug variant.
    #[doc(hidden)]
    #[must_use]
    pub fn with_variant(mut self, variant: Variant) -> Self {
        self.variant = variant;
        self
    }

    fn deadline(&self, cx: &Ctx<'_>, op: &'static str) -> Deadline {
        Deadline::new(cx.now, op, self.config.op_timeout)
    }

    /// After the lock (taken or not): the read before loading.
    fn read(&self, cx: &Ctx<'_>) -> State {
        let (op, state): (_, fn(ReadFreshMachine) -> State) = match self.kind {
            LoadKind::Miss => ("get", State::Check),
            LoadKind::Refresh => ("refresh", State::Tags),
        };
        let keys = vec![self.key.clone()];
        state(ReadFresh::machine(self.scope.clone(), keys, ReadMode::SERVED, self.deadline(cx, op)))
    }

    /// The load is decided: release the lock if it is held, else end.
    fn finish(
        &mut self,
        cx: &Ctx<'_>,
        result: Result<LoadResult<P>, CacheError>,
    ) -> Option<Step<LoadOutcome<P>, CallLoader>> {
        self.result = Some(result);
        match self.token.take() {
            Some(token) => {
                self.state = State::Unlock(unlock(&self.key, token, self.deadline(cx, "unlock")));
                None
            }
            None => Some(self.done()),
        }
    }

    fn done(&mut self) -> Step<LoadOutcome<P>, CallLoader> {
        let result = self
            .result
            .take()
            .unwrap_or(Err(CacheError::UnexpectedReply { command: "load", got: "no result".into() }));
        Step::Done(Ok(LoadOutcome {
            result,
            kept_tags: std::mem::take(&mut self.kept_tags),
            warnings: std::mem::take(&mut self.warnings),
            stale: self.stale,
        }))
    }

    fn store(
        &mut self,
        cx: &Ctx<'_>,
        lease: Vec<TagToken>,
        answer: Loaded<P>,
    ) -> Option<Step<LoadOutcome<P>, CallLoader>> {
        let (value, store) = match answer {
            Loaded::Failed(e) => return self.finish(cx, Err(e)),
            Loaded::Value { value, store } => (value, store),
        };
        let (tags, tokens): (Vec<Bytes>, Vec<Bytes>) = lease.into_iter().map(|t| (t.tag, t.token)).unzip();
        self.kept_tags.clone_from(&tags);
        let (tags, lease) = self.variant.store(tags, Some(tokens));
        let write = store.and_then(|p| {
            let (key, entry, ttl_ms, on_update) = (self.key.clone(), p.entry, p.ttl_ms, p.on_update);
            let w = Write { key, entry, ttl_ms, on_update, tags, lease };
            WriteEntries::machine(self.scope.clone(), vec![w], self.deadline(cx, "set"))
        });
        match write {
            Ok(m) => {
                self.result = Some(Ok(LoadResult::Loaded(value)));
                self.state = State::Store(m);
                None
            }
            Err(e) => {
                self.warnings.push(Warning::StoreFailed(e));
                self.finish(cx, Ok(LoadResult::Loaded(value)))
            }
        }
    }
}

impl<P> Machine for Load<P> {
    type Output = LoadOutcome<P>;
    type Call = CallLoader;
    type Answer = Loaded<P>;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input<Loaded<P>>) -> Step<LoadOutcome<P>, CallLoader> {
        let mut input = input;
        loop {
            let step = match (std::mem::replace(&mut self.state, State::Over), input) {
                (State::Over, Input::Start) => {
                    self.state = match self.config.lock_hold {
                        Some(hold) => {
                            let d = Deadline::new(cx.now, "load_lock", hold + self.config.op_timeout);
                            State::Lock(Box::new(AcquireLock::new(
                                self.scope.clone(),
                                self.key.clone(),
                                hold,
                                d,
                                self.config.op_timeout,
                            )))
                        }
                        None => self.read(cx),
                    };
                    None
                }
                (State::Lock(mut m), i) => match child::resume(&mut *m, cx, i) {
                    Turn::Pass(step) => {
                        self.state = State::Lock(m);
                        return step;
                    }
                    Turn::Over(r) => {
                        self.stale += m.stale();
                        match r {
                            Ok(Acquired::Found(entry)) => {
                                self.result = Some(Ok(LoadResult::Found(entry)));
                                Some(self.done())
                            }
                            Ok(Acquired::Locked(token)) => {
                                self.token = Some(token);
                                self.state = self.read(cx);
                                None
                            }
                            Err(e) => {
                                self.warnings.push(Warning::LockUnavailable(e));
                                self.state = self.read(cx);
                                None
                            }
                        }
                    }
                },
                (State::Check(mut m), i) => match child::resume(&mut m, cx, i) {
                    Turn::Pass(step) => {
                        self.state = State::Check(m);
                        return step;
                    }
                    // A failed check just loads.
                    Turn::Over(r) => {
                        let found = r.ok().and_then(|f| f.into_iter().next()).unwrap_or_default();
                        self.stale += u64::from(found.is_stale());
                        match found.into_fresh() {
                            Some(entry) => self.finish(cx, Ok(LoadResult::Found(entry))),
                            None => {
                                self.state = State::Calling(Vec::new());
                                return Step::Call(CallLoader);
                            }
                        }
                    }
                },
                (State::Tags(mut m), i) => match child::resume(&mut m, cx, i) {
                    Turn::Pass(step) => {
                        self.state = State::Tags(m);
                        return step;
                    }
                    Turn::Over(Err(e)) => self.finish(cx, Err(e)),
                    Turn::Over(Ok(found)) => {
                        let found = found.into_iter().next().unwrap_or_default();
                        self.stale += u64::from(found.is_stale());
                        // The lease: the fresh entry's tags and tokens (the read checked them
                        // against the current tokens just now, before the loader is called).
                        let lease = found.into_fresh().map(|e| e.tags);
                        self.state = State::Calling(lease.unwrap_or_default());
                        return Step::Call(CallLoader);
                    }
                },
                (State::Calling(tags), Input::Answer(answer)) => self.store(cx, tags, answer),
                (State::Store(mut m), i) => match child::resume(&mut m, cx, i) {
                    Turn::Pass(step) => {
                        self.state = State::Store(m);
                        return step;
                    }
                    Turn::Over(r) => {
                        match r {
                            Err(e) => self.warnings.push(Warning::StoreFailed(e)),
                            Ok(stored) if stored.superseded > 0 => self.warnings.push(Warning::Superseded),
                            Ok(_) => {}
                        }
                        let result = self.result.take().unwrap_or(Err(CacheError::UnexpectedReply {
                            command: "load",
                            got: "no value".into(),
                        }));
                        self.finish(cx, result)
                    }
                },
                (State::Unlock(mut m), i) => match child::resume(&mut m, cx, i) {
                    Turn::Pass(step) => {
                        self.state = State::Unlock(m);
                        return step;
                    }
                    Turn::Over(r) => {
                        if let Err(e) = r.and_then(read_unlock) {
                            self.warnings.push(Warning::UnlockFailed(e));
                        }
                        Some(self.done())
                    }
                },
                (state, i) => {
                    self.state = state;
                    return unexpected_input("load", &i);
                }
            };
            match step {
                Some(step) => return step,
                None => input = Input::Start,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::op::testing::{Hand, key, ok, pipeline, scope, sleep, stored, words};
    use crate::resp::Value;

    const HOLD: Duration = Duration::from_secs(2);

    fn machine(kind: LoadKind, lock: bool) -> Hand<Load<u32>> {
        let config = LoadConfig { op_timeout: Duration::from_millis(500), lock_hold: lock.then_some(HOLD) };
        Hand::new(Load::new(scope(), key(), kind, config))
    }

    fn value(v: u32) -> Input<Loaded<u32>> {
        let entry = Entry::plain(Bytes::from(v.to_string()));
        Input::Answer(Loaded::Value {
            value: v,
            store: Ok(Prepared { entry, ttl_ms: Some(1000), on_update: None }),
        })
    }

    fn outcome(step: Step<LoadOutcome<u32>, CallLoader>) -> LoadOutcome<u32> {
        match step {
            Step::Done(Ok(o)) => o,
            other => panic!("expected an outcome, got {other:?}"),
        }
    }

    #[test]
    fn a_miss_checks_again_loads_and_stores() {
        let mut m = machine(LoadKind::Miss, false);
        let check = pipeline(&m.start());
        assert_eq!(words(&check[0]), ["GET", "ns:k"]);
        assert!(matches!(m.reply(vec![Ok(Value::Nil)]), Step::Call(CallLoader)));
        let store = pipeline(&m.resume(value(7)));
        assert_eq!(words(&store[0])[..2], ["SET", "ns:k"]);
        let out = outcome(m.reply(vec![Ok(ok())]));
        assert_eq!(out.result, Ok(LoadResult::Loaded(7)));
        assert!(out.warnings.is_empty());
    }

    /// The check finds what another load stored: no loader call.
    #[test]
    fn a_miss_found_on_the_check_does_not_load() {
        let mut m = machine(LoadKind::Miss, false);
        let _check = pipeline(&m.start());
        let out = outcome(m.reply(vec![Ok(Value::Bulk(stored(b"1", &[])))]));
        assert!(matches!(out.result, Ok(LoadResult::Found(_))), "{out:?}");
    }

    /// The loader's error comes back as it was, downcastable, and the lock is released.
    #[test]
    fn the_loader_s_error_keeps_its_source() {
        let mut m = machine(LoadKind::Miss, true);
        let _set = pipeline(&m.start());
        let _check = pipeline(&m.reply(vec![Ok(ok())]));
        assert!(matches!(m.reply(vec![Ok(Value::Nil)]), Step::Call(CallLoader)));
        let failed = CacheError::loader(std::io::Error::new(std::io::ErrorKind::NotFound, "db down"));
        let unlock = pipeline(&m.resume(Input::Answer(Loaded::Failed(failed.clone()))));
        assert_eq!(words(&unlock[0])[0], "EVALSHA");
        let out = outcome(m.reply(vec![Ok(Value::Int(1))]));
        assert_eq!(out.result, Err(failed), "the same shared error");
        let Err(CacheError::Loader(e)) = out.result else { unreachable!() };
        let io = e.downcast_ref::<std::io::Error>().expect("the loader's own type");
        assert_eq!((io.kind(), io.to_string()), (std::io::ErrorKind::NotFound, "db down".into()));
    }

    /// The lock is held by another process: poll (5 ms, then 10 ms) until it frees, then load,
    /// store and release it.
    #[test]
    fn a_held_lock_is_polled_until_it_frees() {
        let mut m = machine(LoadKind::Miss, true);
        let set = pipeline(&m.start());
        let w = words(&set[0]);
        assert_eq!(
            (w[0].as_str(), w[1].as_str(), &w[3..5]),
            ("SET", "lock:{ns:k}", &["NX".to_string(), "PX".to_string()][..])
        );
        assert_eq!(w[5], "2000");
        for pause in [5, 10] {
            let peek = pipeline(&m.reply(vec![Ok(Value::Nil)]));
            assert_eq!(words(&peek[0]), ["GET", "ns:k"]);
            let at = sleep(&m.reply(vec![Ok(Value::Nil)]));
            assert_eq!(at - m.now, Duration::from_millis(pause));
            m.now = at;
            let again = pipeline(&m.resume(Input::Woke));
            assert_eq!(words(&again[0])[2], w[2], "the same token");
        }
        let _check = pipeline(&m.reply(vec![Ok(ok())]));
        assert!(matches!(m.reply(vec![Ok(Value::Nil)]), Step::Call(CallLoader)));
        let _store = pipeline(&m.resume(value(3)));
        let unlock = pipeline(&m.reply(vec![Ok(ok())]));
        assert_eq!(words(&unlock[0])[4], w[2], "released with its token");
        let out = outcome(m.reply(vec![Ok(Value::Int(1))]));
        assert_eq!((out.result, out.warnings), (Ok(LoadResult::Loaded(3)), vec![]));
    }

    /// The holder stores the value while this one waits: that value, no load, no release.
    #[test]
    fn a_held_lock_ends_with_the_holder_s_value() {
        let mut m = machine(LoadKind::Miss, true);
        let _set = pipeline(&m.start());
        let _peek = pipeline(&m.reply(vec![Ok(Value::Nil)]));
        let out = outcome(m.reply(vec![Ok(Value::Bulk(stored(b"9", &[])))]));
        assert!(matches!(out.result, Ok(LoadResult::Found(_))), "{out:?}");
    }

    /// The lock stays held past the wait's deadline: the load goes on without it (a warning).
    #[test]
    fn a_lock_held_past_the_deadline_loads_without_it() {
        let mut m = machine(LoadKind::Miss, true);
        let _set = pipeline(&m.start());
        let _peek = pipeline(&m.reply(vec![Ok(Value::Nil)]));
        m.now += HOLD + Duration::from_millis(500);
        let check = pipeline(&m.reply(vec![Ok(Value::Nil)]));
        assert_eq!(words(&check[0]), ["GET", "ns:k"]);
        assert!(matches!(m.reply(vec![Ok(Value::Nil)]), Step::Call(CallLoader)));
        let _store = pipeline(&m.resume(value(1)));
        let out = outcome(m.reply(vec![Ok(ok())]));
        assert!(
            matches!(
                out.warnings.as_slice(),
                [Warning::LockUnavailable(CacheError::Timeout { op: "load_lock", .. })]
            ),
            "{:?}",
            out.warnings
        );
    }

    /// A reload keeps the entry's tags; a failure to store is a warning, the value still the
    /// outcome.
    #[test]
    fn a_reload_keeps_the_tags_and_survives_a_store_failure() {
        let mut m = machine(LoadKind::Refresh, false);
        let _read = pipeline(&m.start());
        let _tokens = pipeline(&m.reply(vec![Ok(Value::Bulk(stored(b"1", &[(b"t", b"a")])))]));
        let call = m.reply(vec![Ok(crate::cache::op::testing::token_reply(b"a"))]);
        assert!(matches!(call, Step::Call(CallLoader)));
        let tag_write = pipeline(&m.resume(value(2)));
        assert_eq!(words(&tag_write[0])[0], "EVALSHA", "the tag first");
        let out = outcome(m.reply(vec![Err(crate::cache::op::testing::server_error("ERR oom"))]));
        assert_eq!(out.result, Ok(LoadResult::Loaded(2)));
        assert!(matches!(out.warnings.as_slice(), [Warning::StoreFailed(_)]), "{:?}", out.warnings);
    }

    /// A reload stores under its lease: the token the entry carried when it was read (fresh),
    /// not the tag's token at store time. When the tag round shows another token (an
    /// invalidation ran while the loader did), nothing is stored. Bug A3's variant stores with
    /// the token current at store time: a value loaded before the invalidation, fresh.
    #[test]
    fn a_reload_stores_under_its_lease() {
        for (variant, current) in
            [(Variant::Correct, b"a"), (Variant::Correct, b"b"), (Variant::TokensAtStore, b"b")]
        {
            let config = LoadConfig { op_timeout: Duration::from_millis(500), lock_hold: None };
            let mut m = Hand::new(Load::new(scope(), key(), LoadKind::Refresh, config).with_variant(variant));
            let _read = pipeline(&m.start());
            let _tokens = pipeline(&m.reply(vec![Ok(Value::Bulk(stored(b"1", &[(b"t", b"a")])))]));
            let call = m.reply(vec![Ok(crate::cache::op::testing::token_reply(b"a"))]);
            assert!(matches!(call, Step::Call(CallLoader)));
            let _tag_write = pipeline(&m.resume(value(2)));
            // The invalidation ran while the loader did: the tag's token is now `current`.
            let step = m.reply(vec![Ok(crate::cache::op::testing::bulk(current))]);
            let superseded = variant == Variant::Correct && current == b"b";
            if superseded {
                let out = outcome(step);
                assert_eq!(out.result, Ok(LoadResult::Loaded(2)), "still the outcome");
                assert_eq!(out.warnings, vec![Warning::Superseded], "not stored");
                continue;
            }
            let set = pipeline(&step);
            let written = Entry::decode(&set[0].args()[2]).expect("an envelope");
            let want: &[u8] = if variant == Variant::Correct { b"a" } else { b"b" };
            assert_eq!(written.tags[0].token.as_ref(), want, "{variant:?}");
            let out = outcome(m.reply(vec![Ok(ok())]));
            assert_eq!(
                (out.result, out.kept_tags),
                (Ok(LoadResult::Loaded(2)), vec![Bytes::from_static(b"t")])
            );
        }
    }

    /// A reload whose tag read fails loads nothing.
    #[test]
    fn a_reload_whose_read_fails_loads_nothing() {
        let mut m = machine(LoadKind::Refresh, false);
        let _read = pipeline(&m.start());
        let out = outcome(m.reply(vec![Err(crate::cache::op::testing::server_error("ERR down"))]));
        assert!(matches!(out.result, Err(CacheError::Request(_))), "{out:?}");
    }

    /// The deadline passes between the read's two rounds: the operation's timeout.
    #[test]
    fn timeout() {
        let mut m = machine(LoadKind::Refresh, false);
        let _read = pipeline(&m.start());
        m.now += Duration::from_millis(500);
        let out = outcome(m.reply(vec![Ok(Value::Bulk(stored(b"1", &[(b"t", b"a")])))]));
        assert!(matches!(out.result, Err(CacheError::Timeout { op: "refresh", .. })), "{out:?}");
    }
}
