//! `bulk_get_with`: read many keys (one pipeline, plus one for their tags' tokens), hand the
//! misses to the caller's loader ([`Step::Call`]) and store what it returns
//! untagged in one write. A failure to store is reported, not an error: the values are still
//! returned.

use core::time::Duration;
use std::sync::Arc;

use crate::cache::envelope::Entry;
use crate::cache::error::CacheError;
use crate::keys::EncodedKey;

use super::child::{self, Turn};
use super::deadline::Deadline;
use super::load::Prepared;
use super::machine::{Ctx, Input, Machine, Step, unexpected_input};
use super::read_fresh::{ReadFresh, ReadFreshMachine, ReadMode, stale_count};
use super::scope::Scope;
use super::write::{Write, WriteEntries, WriteMachine};

/// One loaded value to store.
#[derive(Clone, Debug)]
pub struct Item {
    /// Its key.
    pub key: EncodedKey,
    /// The value, ready to store.
    pub prepared: Prepared,
}

/// The call: decode these hits (one per key asked, `None` for a miss) and load the misses.
#[derive(Debug)]
pub struct LoadMisses {
    /// The fresh entries read, in the keys' order.
    pub hits: Vec<Option<Entry>>,
}

/// The loader's answer: what the caller keeps, and the values to store (or why they cannot
/// be); an error fails the call.
pub type Answer<P> = Result<(P, Result<Vec<Item>, CacheError>), CacheError>;

/// The outcome.
#[derive(Debug)]
pub struct BulkLoaded<P> {
    /// The hits, when nothing was missing (no call was made).
    pub hits: Option<Vec<Option<Entry>>>,
    /// What the caller kept of the load.
    pub loaded: Option<P>,
    /// Why the loaded values could not all be stored.
    pub store_error: Option<CacheError>,
    /// Reads that met an entry a tag invalidation had made stale.
    pub stale: u64,
}

enum State<P> {
    Read(ReadFreshMachine),
    Calling,
    Store(WriteMachine, P),
    Over,
}

/// The `bulk_get_with` operation.
pub struct BulkLoad<P> {
    scope: Arc<Scope>,
    keys: Vec<EncodedKey>,
    budget: Duration,
    stale: u64,
    state: State<P>,
}

impl<P> core::fmt::Debug for BulkLoad<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BulkLoad").field("keys", &self.keys.len()).finish_non_exhaustive()
    }
}

impl<P> BulkLoad<P> {
    /// Reads `keys` of `scope`'s namespace and loads the misses; the read and the write each
    /// have `budget`.
    #[must_use]
    pub const fn new(scope: Arc<Scope>, keys: Vec<EncodedKey>, budget: Duration) -> Self {
        Self { scope, keys, budget, stale: 0, state: State::Over }
    }

    fn done(
        &self,
        hits: Option<Vec<Option<Entry>>>,
        loaded: Option<P>,
        store_error: Option<CacheError>,
    ) -> Step<BulkLoaded<P>, LoadMisses> {
        Step::Done(Ok(BulkLoaded { hits, loaded, store_error, stale: self.stale }))
    }
}

impl<P> Machine for BulkLoad<P> {
    type Output = BulkLoaded<P>;
    type Call = LoadMisses;
    type Answer = Answer<P>;

    fn resume(&mut self, cx: &mut Ctx<'_>, input: Input<Answer<P>>) -> Step<BulkLoaded<P>, LoadMisses> {
        let mut input = input;
        loop {
            match (std::mem::replace(&mut self.state, State::Over), input) {
                (State::Over, Input::Start) => {
                    let d = Deadline::new(cx.now, "bulk_get", self.budget);
                    let keys = std::mem::take(&mut self.keys);
                    self.state =
                        State::Read(ReadFresh::machine(self.scope.clone(), keys, ReadMode::ACCESSED, d));
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
                        let hits: Vec<Option<Entry>> = found.into_iter().map(|f| f.into_fresh()).collect();
                        if hits.iter().all(Option::is_some) {
                            return self.done(Some(hits), None, None);
                        }
                        self.state = State::Calling;
                        return Step::Call(LoadMisses { hits });
                    }
                },
                (State::Calling, Input::Answer(answer)) => {
                    let (kept, items) = match answer {
                        Err(e) => return Step::Done(Err(e)),
                        Ok(a) => a,
                    };
                    let d = Deadline::new(cx.now, "bulk_set", self.budget);
                    let writes = items.map(|items| {
                        items
                            .into_iter()
                            .map(|i| Write {
                                key: i.key,
                                entry: i.prepared.entry,
                                ttl_ms: i.prepared.ttl_ms,
                                on_update: i.prepared.on_update,
                                tags: Vec::new(),
                                lease: None,
                            })
                            .collect::<Vec<_>>()
                    });
                    match writes {
                        Ok(w) if w.is_empty() => return self.done(None, Some(kept), None),
                        Ok(w) => match WriteEntries::machine(self.scope.clone(), w, d) {
                            Ok(m) => {
                                self.state = State::Store(m, kept);
                                input = Input::Start;
                            }
                            Err(e) => return self.done(None, Some(kept), Some(e)),
                        },
                        Err(e) => return self.done(None, Some(kept), Some(e)),
                    }
                }
                (State::Store(mut m, kept), i) => match child::resume(&mut m, cx, i) {
                    Turn::Pass(step) => {
                        self.state = State::Store(m, kept);
                        return step;
                    }
                    Turn::Over(r) => return self.done(None, Some(kept), r.err()),
                },
                (state, i) => {
                    self.state = state;
                    return unexpected_input("bulk_get_with", &i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::cache::op::testing::{Hand, pipeline, scope, server_error, stored};
    use crate::resp::Value;

    fn keys() -> Vec<EncodedKey> {
        vec![EncodedKey::new(Bytes::from_static(b"ns:a")), EncodedKey::new(Bytes::from_static(b"ns:b"))]
    }

    /// The misses go to the loader with the hits; a failed store is reported, not an error.
    #[test]
    fn misses_are_loaded_and_a_failed_store_is_reported() {
        let mut m = Hand::new(BulkLoad::new(scope(), keys(), Duration::from_secs(1)));
        let _read = pipeline(&m.start());
        let call = m.reply(vec![Ok(Value::Bulk(stored(b"1", &[]))), Ok(Value::Nil)]);
        let Step::Call(LoadMisses { hits }) = call else { panic!("{call:?}") };
        assert_eq!((hits[0].is_some(), hits[1].is_none()), (true, true));
        let prepared =
            Prepared { entry: Entry::plain(Bytes::from_static(b"2")), ttl_ms: None, on_update: None };
        let items = vec![Item { key: keys()[1].clone(), prepared }];
        let store = pipeline(&m.resume(Input::Answer(Ok(("loaded", Ok(items))))));
        assert_eq!(store.len(), 1);
        let done = m.reply(vec![Err(server_error("ERR oom"))]);
        let Step::Done(Ok(out)) = done else { panic!("{done:?}") };
        assert_eq!((out.loaded, out.hits.is_none()), (Some("loaded"), true));
        assert!(matches!(out.store_error, Some(CacheError::Request(_))), "{:?}", out.store_error);
    }

    /// Every key hit: no call.
    #[test]
    fn all_hits_call_nothing() {
        let mut m = Hand::new(BulkLoad::<()>::new(scope(), keys(), Duration::from_secs(1)));
        let _read = pipeline(&m.start());
        let hit = || Ok(Value::Bulk(stored(b"1", &[])));
        let done = m.reply(vec![hit(), hit()]);
        assert!(matches!(done, Step::Done(Ok(BulkLoaded { hits: Some(_), loaded: None, .. }))), "{done:?}");
    }
}
