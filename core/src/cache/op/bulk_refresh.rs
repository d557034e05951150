//! `bulk_refresh`: read the entries (their tags), call the caller's loader once
//! ([`Step::Call`]), and store every value it returns in one write, each
//! with the tags its entry had (keys that were absent or stale, and values for keys it was
//! not asked for, untagged). If the read fails nothing is loaded.
//!
//! Each value is stored under its lease, as a single reload is (see [`super::load`]): the
//! tokens its entry's tags had when the entry was read, fresh, before the loader was called; a
//! value whose tag was invalidated meanwhile is not stored ([`Refreshed::superseded`]).

use core::time::Duration;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::envelope::TagToken;
use crate::cache::error::CacheError;
use crate::keys::EncodedKey;

use super::bulk_load::Item;
use super::child::{self, Turn};
use super::deadline::Deadline;
use super::load::{CallLoader, Variant};
use super::machine::{Ctx, Input, Machine, Step, unexpected_input};
use super::read_fresh::{ReadFresh, ReadFreshMachine, ReadMode, stale_count};
use super::scope::Scope;
use super::write::{Write, WriteEntries, WriteMachine};

/// The outcome.
#[derive(Debug, PartialEq, Eq)]
pub struct Refreshed<P> {
    /// What the caller kept of the load.
    pub loaded: P,
    /// Values not stored because an invalidation of one of their tags ran while they loaded.
    pub superseded: usize,
    /// Reads that met an entry a tag invalidation had made stale.
    pub stale: u64,
    /// Per value given to store, by encoded key: the tags it was to keep (its entry's when
    /// read; none for a key that was absent or stale), for checkers (a test-only variant may
    /// store otherwise).
    pub kept_tags: Vec<(Bytes, Vec<Bytes>)>,
}

enum State<P> {
    Read(ReadFreshMachine),
    Calling(HashMap<Bytes, Vec<TagToken>>),
    Store(WriteMachine, P, Vec<(Bytes, Vec<Bytes>)>),
    Over,
}

/// The `bulk_refresh` operation.
pub struct BulkRefresh<P> {
    scope: Arc<Scope>,
    keys: Vec<EncodedKey>,
    budget: Duration,
    stale: u64,
    state: State<P>,
    variant: Variant,
}

impl<P> core::fmt::Debug for BulkRefresh<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BulkRefresh").field("keys", &self.keys.len()).finish_non_exhaustive()
    }
}

impl<P> BulkRefresh<P> {
    /// Reloads `keys` of `scope`'s namespace; the read and the write each have `budget`.
    #[must_use]
    pub const fn new(scope: Arc<Scope>, keys: Vec<EncodedKey>, budget: Duration) -> Self {
        Self { scope, keys, budget, stale: 0, state: State::Over, variant: Variant::Correct }
    }

    /// The same reload with a test-only bug variant (the reload's: untagged, or stored
    /// with the tokens current at its store instead of its lease).
    #[doc(hidden)]
    #[must_use]
    pub const fn with_variant(mut self, variant: Variant) -> Self {
        self.variant = variant;
        self
    }

    fn done(
        &self,
        loaded: P,
        superseded: usize,
        kept_tags: Vec<(Bytes, Vec<Bytes>)>,
    ) -> Step<Refreshed<P>, CallLoader> {
        Step::Done(Ok(Refreshed { loaded, superseded, stale: self.stale, kept_tags }))
    }
}

impl<P> Machine for BulkRefresh<P> {
    type Output = Refreshed<P>;
    type Call = CallLoader;
    type Answer = Result<(P, Vec<Item>), CacheError>;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input<Self::Answer>) -> Step<Refreshed<P>, CallLoader> {
        let mut input = input;
        loop {
            match (std::mem::replace(&mut self.state, State::Over), input) {
                (State::Over, Input::Start) => {
                    let d = Deadline::new(cx.now, "bulk_refresh", self.budget);
                    let keys = self.keys.clone();
                    self.state =
                        State::Read(ReadFresh::machine(self.scope.clone(), keys, ReadMode::SERVED, d));
                    input = Input::Start;
                }
                (State::Read(mut m), i) => match child::resume(&mut m, cx, i) {
                    Turn::Pass(step) => {
                        self.state = State::Read(m);
                        return step;
                    }
                    Turn::Over(Err(e)) => return Step::Done(Err(e)),
                    Turn::Over(Ok(found)) => {
                        self.stale = stale_count(&found);
                        let mut tags_of = HashMap::new();
                        for (k, f) in self.keys.iter().zip(found) {
                            // The lease: the fresh entry's tags and tokens, checked just now.
                            if let Some(e) = f.into_fresh().filter(|e| !e.tags.is_empty()) {
                                tags_of.insert(k.bytes().clone(), e.tags);
                            }
                        }
                        self.state = State::Calling(tags_of);
                        return Step::Call(CallLoader);
                    }
                },
                (State::Calling(tags_of), Input::Answer(answer)) => {
                    let (kept, items) = match answer {
                        Err(e) => return Step::Done(Err(e)),
                        Ok(a) => a,
                    };
                    if items.is_empty() {
                        return self.done(kept, 0, Vec::new());
                    }
                    let variant = self.variant;
                    let mut kept_tags = Vec::with_capacity(items.len());
                    let writes = items
                        .into_iter()
                        .map(|i| {
                            let lease = tags_of.get(i.key.bytes()).cloned();
                            let tags: Vec<Bytes> = lease.iter().flatten().map(|t| t.tag.clone()).collect();
                            kept_tags.push((i.key.bytes().clone(), tags.clone()));
                            let lease = lease.map(|l| l.into_iter().map(|t| t.token).collect());
                            let (tags, lease) = variant.store(tags, lease);
                            let p = i.prepared;
                            let (entry, ttl_ms, on_update) = (p.entry, p.ttl_ms, p.on_update);
                            Write { key: i.key, entry, ttl_ms, on_update, tags, lease }
                        })
                        .collect();
                    let d = Deadline::new(cx.now, "bulk_set", self.budget);
                    match WriteEntries::machine(self.scope.clone(), writes, d) {
                        Ok(m) => {
                            self.state = State::Store(m, kept, kept_tags);
                            input = Input::Start;
                        }
                        Err(e) => return Step::Done(Err(e)),
                    }
                }
                (State::Store(mut m, kept, kept_tags), i) => match child::resume(&mut m, cx, i) {
                    Turn::Pass(step) => {
                        self.state = State::Store(m, kept, kept_tags);
                        return step;
                    }
                    Turn::Over(Err(e)) => return Step::Done(Err(e)),
                    Turn::Over(Ok(stored)) => return self.done(kept, stored.superseded, kept_tags),
                },
                (state, i) => {
                    self.state = state;
                    return unexpected_input("bulk_refresh", &i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::envelope::Entry;
    use crate::cache::op::load::Prepared;
    use crate::cache::op::testing::{Hand, bulk, ok, pipeline, scope, stored, token_reply, words};
    use crate::resp::Value;

    fn item(k: &'static [u8]) -> Item {
        let prepared =
            Prepared { entry: Entry::plain(Bytes::from_static(b"new")), ttl_ms: None, on_update: None };
        Item { key: EncodedKey::new(Bytes::from_static(k)), prepared }
    }

    /// Each value keeps its entry's tags; absent keys and extra values are untagged; one write.
    #[test]
    fn values_keep_their_entries_tags() {
        let keys =
            vec![EncodedKey::new(Bytes::from_static(b"ns:a")), EncodedKey::new(Bytes::from_static(b"ns:b"))];
        let mut m = Hand::new(BulkRefresh::new(scope(), keys, Duration::from_secs(1)));
        let read = pipeline(&m.start());
        assert_eq!(read.len(), 2);
        let _tokens =
            pipeline(&m.reply(vec![Ok(Value::Bulk(stored(b"old", &[(b"t", b"a")]))), Ok(Value::Nil)]));
        assert!(matches!(m.reply(vec![Ok(token_reply(b"a"))]), Step::Call(CallLoader)));
        let items = vec![item(b"ns:a"), item(b"ns:b"), item(b"ns:extra")];
        let tag_write = pipeline(&m.resume(Input::Answer(Ok((3usize, items)))));
        assert_eq!(tag_write.len(), 1, "only ns:a is tagged");
        let w = words(&tag_write[0]);
        assert!(w[0] == "EVALSHA" && w.iter().any(|a| a == "ns:a"), "{w:?}");
        let store = pipeline(&m.reply(vec![Ok(bulk(b"a"))]));
        assert_eq!(store.len(), 3);
        let done = m.reply(vec![Ok(ok()), Ok(ok()), Ok(ok())]);
        let Step::Done(Ok(out)) = done else { panic!("{done:?}") };
        assert_eq!((out.loaded, out.superseded, out.stale), (3, 0, 0));
        let b = Bytes::from_static;
        assert_eq!(
            out.kept_tags,
            vec![(b(b"ns:a"), vec![b(b"t")]), (b(b"ns:b"), vec![]), (b(b"ns:extra"), vec![])],
            "the tags each value was to keep"
        );
    }

    /// A value whose tag was invalidated while the loader ran is not stored; the others are.
    #[test]
    fn a_value_whose_lease_was_superseded_is_not_stored() {
        let keys =
            vec![EncodedKey::new(Bytes::from_static(b"ns:a")), EncodedKey::new(Bytes::from_static(b"ns:b"))];
        let mut m = Hand::new(BulkRefresh::new(scope(), keys, Duration::from_secs(1)));
        let _read = pipeline(&m.start());
        let a = Ok(Value::Bulk(stored(b"old", &[(b"t", b"a")])));
        let b = Ok(Value::Bulk(stored(b"old", &[(b"u", b"x")])));
        let _tokens = pipeline(&m.reply(vec![a, b]));
        assert!(matches!(
            m.reply(vec![Ok(token_reply(b"a")), Ok(token_reply(b"x"))]),
            Step::Call(CallLoader)
        ));
        let items = vec![item(b"ns:a"), item(b"ns:b")];
        let tag_write = pipeline(&m.resume(Input::Answer(Ok((2usize, items)))));
        assert_eq!(tag_write.len(), 2);
        // t was invalidated meanwhile (its token is now c); u was not.
        let store = pipeline(&m.reply(vec![Ok(bulk(b"c")), Ok(bulk(b"x"))]));
        assert_eq!(store.len(), 1, "only ns:b");
        assert_eq!(words(&store[0])[1], "ns:b");
        let written = Entry::decode(&store[0].args()[2]).expect("an envelope");
        assert_eq!(written.tags[0].token.as_ref(), b"x", "the lease");
        let done = m.reply(vec![Ok(ok())]);
        assert!(
            matches!(done, Step::Done(Ok(Refreshed { loaded: 2, superseded: 1, stale: 0, .. }))),
            "{done:?}"
        );
    }

    /// The loader's error is the operation's.
    #[test]
    fn the_loader_s_error_is_the_outcome() {
        let mut m = Hand::new(BulkRefresh::<usize>::new(
            scope(),
            vec![EncodedKey::new(Bytes::from_static(b"ns:a"))],
            Duration::from_secs(1),
        ));
        let _read = pipeline(&m.start());
        assert!(matches!(m.reply(vec![Ok(Value::Nil)]), Step::Call(CallLoader)));
        let e = CacheError::loader("boom");
        let done = m.resume(Input::Answer(Err(e.clone())));
        assert!(matches!(done, Step::Done(Err(ref got)) if *got == e), "{done:?}");
    }
}
